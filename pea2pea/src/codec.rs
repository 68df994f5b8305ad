//! Framing for [`Message`] types: a length-delimited tokio-util codec.
//!
//! Each frame is a length header (1, 2, 4 or 8 bytes; big-endian by default) followed by that
//! many bytes holding exactly one encoded message. The decoder checks the header against the
//! maximum frame size ([`DEFAULT_MAX_FRAME_LEN`], 1 MiB, unless set) before it buffers the
//! body, so a peer cannot make it reserve more; the encoder refuses to write an oversize frame.
//!
//! ```
//! use bytes::BytesMut;
//! use pea2pea::{Message, codec::{Encoded, MessageCodec}};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! #[derive(Message, Debug, PartialEq, Clone)]
//! struct Ping(u64);
//!
//! let mut codec = MessageCodec::<Ping>::new().max_frame_len(1024);
//! let mut wire = BytesMut::new();
//! codec.encode(Ping(7), &mut wire).unwrap();
//! assert_eq!(&wire[..], &[0, 0, 0, 1, 7]);
//!
//! // Encode once, write the same bytes to many peers.
//! let shared = Encoded::new(&Ping(8));
//! codec.encode(shared.clone(), &mut wire).unwrap();
//!
//! assert_eq!(codec.decode(&mut wire).unwrap(), Some(Ping(7)));
//! assert_eq!(codec.decode(&mut wire).unwrap(), Some(Ping(8)));
//! assert_eq!(codec.decode(&mut wire).unwrap(), None);
//! ```

use std::{fmt, io, marker::PhantomData};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::Message;

/// The maximum frame size (the body, without its header) when none is set: 1 MiB.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1024 * 1024;

/// A length-delimited codec that decodes `In` and encodes `Out` (both [`Message`]s).
///
/// Defaults: a 4-byte big-endian length header and a [`DEFAULT_MAX_FRAME_LEN`] limit. The
/// builder methods set the header and the limit for both directions; a peer must use the
/// same header:
///
/// ```
/// use bytes::BytesMut;
/// use pea2pea::codec::MessageCodec;
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = MessageCodec::<String>::new()
///     .length_width(2) // at most 65 535 bytes a frame, whatever max_frame_len says
///     .little_endian()
///     .max_frame_len(1_000);
/// assert_eq!(codec.max_len(), 1_000);
///
/// let mut wire = BytesMut::new();
/// codec.encode("hi".to_string(), &mut wire).unwrap();
/// assert_eq!(&wire[..], &[3, 0, 2, b'h', b'i']); // header 3 (LE), then the string
///
/// let too_long = "x".repeat(1_000); // 1 002 bytes encoded: over the limit
/// assert!(codec.encode(too_long, &mut BytesMut::new()).is_err());
/// assert_eq!(MessageCodec::<String>::new().length_width(1).max_len(), 255);
/// ```
pub struct MessageCodec<In, Out = In> {
    width: usize,
    little_endian: bool,
    max_frame_len: usize,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> MessageCodec<In, Out> {
    /// A codec with the defaults: 4-byte big-endian lengths, 1 MiB maximum frame.
    pub fn new() -> Self {
        Self {
            width: 4,
            little_endian: false,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            _types: PhantomData,
        }
    }

    /// Sets the maximum size of a frame's body, in bytes, for both directions. It is also
    /// capped by what the length header can express.
    pub fn max_frame_len(mut self, max: usize) -> Self {
        self.max_frame_len = max;
        self
    }

    /// Sets the width of the length header: 1, 2, 4 or 8 bytes (other values leave it
    /// unchanged, and debug builds panic, since that is a programming error).
    pub fn length_width(mut self, width: usize) -> Self {
        debug_assert!(
            matches!(width, 1 | 2 | 4 | 8),
            "length width must be 1, 2, 4 or 8"
        );
        if matches!(width, 1 | 2 | 4 | 8) {
            self.width = width;
        }
        self
    }

    /// Writes and reads the length header little-endian.
    pub fn little_endian(mut self) -> Self {
        self.little_endian = true;
        self
    }

    /// Writes and reads the length header big-endian (the default).
    pub fn big_endian(mut self) -> Self {
        self.little_endian = false;
        self
    }

    /// The effective maximum frame size: the one set, capped by the header width.
    pub fn max_len(&self) -> usize {
        let header_max = match self.width {
            8 => u64::MAX,
            w => (1u64 << (8 * w)) - 1,
        };
        self.max_frame_len
            .min(usize::try_from(header_max).unwrap_or(usize::MAX))
    }

    fn read_header(&self, src: &[u8]) -> u64 {
        let mut buf = [0u8; 8];
        if self.little_endian {
            buf[..self.width].copy_from_slice(&src[..self.width]);
            u64::from_le_bytes(buf)
        } else {
            buf[8 - self.width..].copy_from_slice(&src[..self.width]);
            u64::from_be_bytes(buf)
        }
    }

    /// Appends the header for a body of `len` bytes, after checking it against the maximum.
    fn put_header(&self, len: usize, dst: &mut BytesMut) -> io::Result<()> {
        let max = self.max_len();
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot send a frame of {len} bytes: the maximum frame size is {max} bytes"
                ),
            ));
        }
        let len = len as u64;
        let bytes = if self.little_endian {
            len.to_le_bytes()
        } else {
            len.to_be_bytes()
        };
        if self.little_endian {
            dst.put_slice(&bytes[..self.width]);
        } else {
            dst.put_slice(&bytes[8 - self.width..]);
        }
        Ok(())
    }
}

impl<In, Out> Default for MessageCodec<In, Out> {
    fn default() -> Self {
        Self::new()
    }
}

impl<In, Out> Clone for MessageCodec<In, Out> {
    fn clone(&self) -> Self {
        Self {
            _types: PhantomData,
            ..*self
        }
    }
}

impl<In, Out> fmt::Debug for MessageCodec<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageCodec")
            .field("length_width", &self.width)
            .field("little_endian", &self.little_endian)
            .field("max_frame_len", &self.max_frame_len)
            .finish()
    }
}

impl<In: Message, Out> Decoder for MessageCodec<In, Out> {
    type Item = In;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<In>> {
        if src.len() < self.width {
            return Ok(None);
        }
        let declared = self.read_header(src);
        let max = self.max_len();
        if declared > max as u64 {
            // Checked before buffering the body: a lying header costs nothing.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "peer declared a frame of {declared} bytes: the maximum frame size is {max} bytes"
                ),
            ));
        }
        let total = self.width + declared as usize;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(self.width);
        // The frame becomes shared `Bytes`: `Bytes` fields are slices of it, not copies.
        let frame = src.split_to(declared as usize).freeze();
        In::from_bytes(frame).map(Some).map_err(io::Error::from)
    }
}

impl<In, Out: Message> Encoder<Out> for MessageCodec<In, Out> {
    type Error = io::Error;

    fn encode(&mut self, msg: Out, dst: &mut BytesMut) -> io::Result<()> {
        let len = msg.encoded_len();
        self.put_header(len, dst)?;
        dst.reserve(len);
        msg.encode(dst);
        Ok(())
    }
}

impl<In, Out: Message> Encoder<Encoded<Out>> for MessageCodec<In, Out> {
    type Error = io::Error;

    fn encode(&mut self, msg: Encoded<Out>, dst: &mut BytesMut) -> io::Result<()> {
        self.put_header(msg.bytes.len(), dst)?;
        dst.extend_from_slice(&msg.bytes);
        Ok(())
    }
}

impl<In, Out: Message> Encoder<Outgoing<Out>> for MessageCodec<In, Out> {
    type Error = io::Error;

    fn encode(&mut self, msg: Outgoing<Out>, dst: &mut BytesMut) -> io::Result<()> {
        match msg {
            Outgoing::Message(msg) => self.encode(msg, dst),
            Outgoing::Encoded(msg) => self.encode(msg, dst),
        }
    }
}

/// A message encoded once, to be sent to many peers without encoding it again; cloning it
/// clones a reference-counted buffer. It holds the body only: each codec adds its own header.
///
/// ```
/// use pea2pea::codec::Encoded;
///
/// let hello = Encoded::new(&String::from("hi"));
/// assert_eq!(hello.as_bytes(), &[2, b'h', b'i'][..]);
/// ```
pub struct Encoded<M> {
    bytes: Bytes,
    _type: PhantomData<fn() -> M>,
}

impl<M: Message> Encoded<M> {
    /// Encodes `msg` now.
    pub fn new(msg: &M) -> Self {
        Self {
            bytes: msg.to_bytes(),
            _type: PhantomData,
        }
    }
}

impl<M> Encoded<M> {
    /// The encoded message (without a length header).
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The encoded message as shared bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

impl<M> Clone for Encoded<M> {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            _type: PhantomData,
        }
    }
}

impl<M> fmt::Debug for Encoded<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Encoded").field(&self.bytes).finish()
    }
}

/// What a node writes: a message to encode, or one that is already encoded. A node whose
/// `Writing::Message` is `Outgoing<M>` accepts both (`.into()` makes either):
///
/// ```
/// use bytes::BytesMut;
/// use pea2pea::codec::{Encoded, MessageCodec, Outgoing};
/// use tokio_util::codec::Encoder;
///
/// let mut codec = MessageCodec::<u32>::new();
/// let (mut now, mut once) = (BytesMut::new(), BytesMut::new());
/// codec.encode(Outgoing::from(7u32), &mut now).unwrap();
/// codec.encode(Outgoing::from(Encoded::new(&7u32)), &mut once).unwrap();
/// assert_eq!(now, once);
/// ```
#[derive(Debug, Clone)]
pub enum Outgoing<M> {
    /// A message, encoded when it is written.
    Message(M),
    /// A message encoded earlier, written as is.
    Encoded(Encoded<M>),
}

impl<M> From<M> for Outgoing<M> {
    fn from(msg: M) -> Self {
        Outgoing::Message(msg)
    }
}

impl<M> From<Encoded<M>> for Outgoing<M> {
    fn from(msg: Encoded<M>) -> Self {
        Outgoing::Encoded(msg)
    }
}
