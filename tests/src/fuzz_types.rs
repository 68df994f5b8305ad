//! Derived message types and the properties that the fuzz targets (fuzz/, which includes this
//! file by path) and the proptest suite (tests/tests/fuzz_props.rs) check on arbitrary input.
//!
//! The properties:
//! * decoding never panics, whatever the bytes;
//! * whatever decodes re-encodes to bytes that decode to the same value, with `encoded_len`
//!   telling their exact length, and re-encoding that is a fixpoint;
//! * for types without maps or sets, the re-encoding is the input itself, or strictly shorter:
//!   the decoder accepts overlong varints (as postcard does), which re-encode canonically.
//!   Maps and sets are not byte-exact: a `HashMap` re-encodes in its own iteration order, and a
//!   `BTreeMap` or set sorts and dedups its keys;
//! * the frame codec yields the same messages, the same error and the same leftover, however
//!   the byte stream is cut into chunks.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt::Debug,
};

use bytes::{Bytes, BytesMut};
use pea2pea::{Message, codec::MessageCodec, message::Delimited};
use tokio_util::codec::Decoder;

/// An enum with unit, tuple and struct variants, recursion through `Vec` and `Box`, a map, and
/// a `max_len` field.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum Envelope {
    Ping,
    Data(u32, Bytes),
    Text {
        from: String,
        body: Option<String>,
    },
    Batch(Vec<Envelope>),
    Nested(Box<Envelope>),
    Table(HashMap<String, Vec<u16>>),
    Mixed {
        id: u64,
        delta: i64,
        flags: Vec<bool>,
        pair: (u8, char),
        #[message(max_len = 8)]
        tags: Vec<String>,
    },
}

/// A struct of nested containers: `Vec`, `Option`, `String`, `Bytes`, `HashMap`, `BTreeMap`,
/// a set, and zero-sized elements.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct Record {
    pub id: u128,
    pub name: String,
    pub blobs: Vec<Bytes>,
    pub index: HashMap<u16, Option<Vec<u8>>>,
    pub sorted: BTreeMap<String, i32>,
    pub seen: BTreeSet<u32>,
    pub units: Vec<()>,
}

/// A recursive type through `Vec` and `Option<Box<_>>`.
#[derive(Message, Debug, Clone, PartialEq)]
pub struct Tree {
    pub value: i32,
    pub children: Vec<Tree>,
    pub next: Option<Box<Tree>>,
}

/// An enum without maps or sets, so its encoding is canonical.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum Command {
    Get {
        key: String,
    },
    Put(String, Bytes),
    Del(Vec<String>),
    Seq(Vec<Option<u64>>),
    Both(Box<Command>, Box<Command>),
    #[message(tag = 9)]
    Stop,
}

/// An evolvable enum: defaulted trailing fields, bytes after the known fields skipped
/// (`extensible`), a catch-all that keeps unknown variants' bytes, and open-ended values nested
/// through length prefixes.
#[derive(Message, Debug, Clone, PartialEq)]
#[message(extensible)]
pub enum Evolving {
    Hello {
        name: String,
        #[message(default)]
        agent: Option<String>,
        #[message(default)]
        seen: Vec<u64>,
    },
    Batch(Vec<Delimited<Evolving>>),
    Pair(Delimited<Command>, Box<Delimited<Evolving>>),
    #[message(other)]
    Unknown {
        tag: u32,
        body: Bytes,
    },
}

/// Checks the decoder properties of an evolvable `T` without maps or sets on `data`: those of
/// [`check_decoder`], and re-encoding is a fixpoint, although the first re-encoding may be
/// longer than the input (absent defaulted fields are written) or shorter (skipped bytes).
pub fn check_evolvable_decoder<T: Message + PartialEq + Debug>(data: &[u8]) -> bool {
    if !check_decoder::<T>(data, false) {
        return false;
    }
    let encoded = T::from_bytes(Bytes::copy_from_slice(data))
        .expect("decoded once")
        .to_bytes();
    let again = T::from_bytes(encoded.clone()).expect("re-decodes");
    assert_eq!(again.to_bytes(), encoded, "re-encoding is not a fixpoint");
    true
}

/// Checks the decoder properties of `T` on `data`; `canonical` says that `T` has no maps or
/// sets. Returns whether `data` decoded.
pub fn check_decoder<T: Message + PartialEq + Debug>(data: &[u8], canonical: bool) -> bool {
    let Ok(value) = T::from_bytes(Bytes::copy_from_slice(data)) else {
        return false;
    };
    let encoded = value.to_bytes();
    assert_eq!(
        encoded.len(),
        value.encoded_len(),
        "encoded_len of {value:?}"
    );
    let again = T::from_bytes(encoded.clone())
        .unwrap_or_else(|e| panic!("the re-encoding of {value:?} does not decode: {e}"));
    assert_eq!(again, value, "decode(encode(v)) != v");
    if canonical {
        assert!(
            encoded[..] == data[..] || encoded.len() < data.len(),
            "{value:?} decoded from {data:02x?} re-encodes to {:02x?}",
            &encoded[..]
        );
        assert_eq!(again.to_bytes(), encoded, "re-encoding is not a fixpoint");
    }
    true
}

/// How a frame stream ended.
#[derive(Debug, PartialEq)]
pub enum End {
    /// An error (its text), after the messages before it.
    Error(String),
    /// No error; this many bytes of an incomplete frame were left.
    Pending(usize),
}

/// Feeds `chunks` one after another to `codec`, decoding as much as possible after each, as
/// the engine's read loop does; returns the messages and how the stream ended.
pub fn decode_stream<T: Message>(mut codec: MessageCodec<T>, chunks: &[&[u8]]) -> (Vec<T>, End) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(message)) => out.push(message),
                Ok(None) => break,
                Err(e) => return (out, End::Error(e.to_string())),
            }
        }
    }
    (out, End::Pending(buf.len()))
}

/// Cuts `data` into chunks at the given sizes (each taken modulo what is left, plus one); the
/// last chunk is the rest.
pub fn cut<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = data;
    for size in sizes {
        if rest.is_empty() {
            break;
        }
        let n = size % rest.len() + 1;
        let (head, tail) = rest.split_at(n);
        chunks.push(head);
        rest = tail;
    }
    if !rest.is_empty() {
        chunks.push(rest);
    }
    chunks
}

/// The codecs the frame properties run with: 1-, 2- and 4-byte headers, small and default
/// maximum frames, both byte orders.
pub fn codecs<T>() -> Vec<MessageCodec<T>> {
    vec![
        MessageCodec::new().length_width(1),
        MessageCodec::new().length_width(2).max_frame_len(300),
        MessageCodec::new().length_width(2).little_endian(),
        MessageCodec::new(),
    ]
}

/// Checks the frame codec properties for `T` on `data` cut at `sizes`: chunking changes
/// nothing, and every decoded message passes the decoder properties.
pub fn check_codec<T: Message + PartialEq + Debug>(data: &[u8], sizes: &[usize]) -> usize {
    let chunks = cut(data, sizes);
    let mut decoded = 0;
    for codec in codecs::<T>() {
        let whole = decode_stream(codec.clone(), &[data]);
        let chunked = decode_stream(codec.clone(), &chunks);
        assert_eq!(whole, chunked, "{codec:?}: chunking changed the outcome");
        for message in &whole.0 {
            let again = T::from_bytes(message.to_bytes()).expect("a decoded message re-decodes");
            assert_eq!(&again, message);
        }
        decoded += whole.0.len();
    }
    decoded
}

/// Splits a fuzz input into chunk sizes (the first byte says how many, one byte each) and the
/// byte stream.
pub fn split_fuzz_input(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let n = (n as usize % 16).min(rest.len());
    let (sizes, stream) = rest.split_at(n);
    (sizes.iter().map(|&s| s as usize).collect(), stream)
}
