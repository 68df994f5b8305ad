//! Messages with a compact binary encoding: the runtime half of `#[derive(Message)]`.
//!
//! # The wire format
//!
//! It is postcard's (v1), so a peer using serde + postcard reads and writes the same bytes:
//!
//! | type | encoding |
//! | --- | --- |
//! | `u8`, `i8` | one raw byte |
//! | `u16`..`u128`, `usize` | LEB128 varint (`usize` as `u64`) |
//! | `i16`..`i128`, `isize` | zigzag, then varint (`isize` as `i64`) |
//! | `f32`, `f64` | little-endian IEEE 754 |
//! | `bool` | one byte, 0 or 1 (anything else is an error) |
//! | `char` | as a one-character string |
//! | `String`, `Bytes` | varint length, then the bytes |
//! | `Vec`, `VecDeque`, sets | varint count, then the elements |
//! | `HashMap`, `BTreeMap` | varint count, then key, value, key, value... |
//! | `[T; N]`, tuples, structs | the elements or fields in order, no length |
//! | `Option<T>` | byte 0 (None) or 1 then the value |
//! | `()`, `PhantomData`, unit structs | nothing |
//! | enums | varint variant index (or explicit tag), then the variant's fields |
//! | `Duration` | `secs` (u64) then `nanos` (u32), as varints |
//! | `Ipv4Addr`, `Ipv6Addr` | 4 or 16 raw bytes |
//! | `IpAddr` | variant index (0 = V4, 1 = V6), then the address |
//! | `SocketAddrV4`/`V6` | the address, then the port (u16); `V6` drops flowinfo and scope id, as serde does |
//! | `SocketAddr` | variant index (0 = V4, 1 = V6), then the socket address |
//! | [`Delimited<T>`](Delimited) | varint length of `T`'s encoding, then it (a postcard byte string) |
//!
//! # Bounded decoding
//!
//! Decoding never panics and never allocates much more than the frame it reads: see
//! [`Reader`] for the limits. [`Message::from_bytes`] also rejects trailing bytes.
//!
//! # The derive
//!
//! `#[derive(Message)]` works on structs (named, tuple, unit) and enums (unit, tuple and struct
//! variants), generic ones included (it adds `T: Message` bounds). Attributes:
//!
//! * `#[message(tag = 7)]` on a variant: a stable variant index to put on the wire instead of
//!   its position. Tags must be unique. Without tags, variants are numbered 0, 1, 2... in
//!   order, as serde does; with tags, a postcard peer's enum must list variants so that its
//!   positions equal the tags.
//! * `#[message(max_len = 64)]` on a `String`, `Bytes`, `Vec`, `VecDeque`, set or map field:
//!   decoding fails when the length prefix exceeds it, before reading the contents. Encoding
//!   does **not** check it (encoding is infallible): a sender that exceeds it writes a message
//!   its peers reject, so validate such fields before sending.
//! * `#[message(crate = path)]` (or `crate = "path"`) on the type: where to find this crate
//!   when it is renamed or re-exported (default `::pea2pea`).
//!
//! and, for messages that change between versions of a protocol (next section),
//! `#[message(default)]` / `#[message(default = path)]` on trailing fields,
//! `#[message(extensible)]` and `#[message(reserved(2, 5))]` on the type, and
//! `#[message(other)]` on a catch-all variant.
//!
//! ```
//! use pea2pea::Message;
//! use bytes::Bytes;
//!
//! #[derive(Message, Debug, PartialEq)]
//! enum Chat {
//!     Hello { #[message(max_len = 32)] name: String },
//!     Say(String),
//!     Blob(Bytes),
//!     #[message(tag = 9)]
//!     Bye,
//! }
//!
//! let msg = Chat::Hello { name: "ann".into() };
//! let bytes = msg.to_bytes();
//! assert_eq!(&bytes[..], &[0, 3, b'a', b'n', b'n']);
//! assert_eq!(Chat::from_bytes(bytes).unwrap(), msg);
//! assert_eq!(&Chat::Bye.to_bytes()[..], &[9]);
//! ```

//!
//! # Evolving messages
//!
//! Peers of different versions of a protocol can keep talking when the messages were written
//! to grow. The attributes below extend postcard's format on the decoding side only: a value
//! encodes to exactly the bytes postcard gives the same declaration without them (a catch-all
//! writes back the bytes it received), and a type without them decodes exactly as before.
//!
//! * `#[message(default)]` on the last fields of a struct or variant (a run at the end,
//!   checked at compile time): a field that finds the value ended, because a peer of an older
//!   version did not write it, takes `Default::default()`, or the result of the function
//!   named by `#[message(default = path)]`. A field that has begun must be whole.
//! * `#[message(extensible)]` on a struct or enum: bytes after the last field it knows, which a
//!   peer of a newer version added, are skipped instead of failing the frame.
//! * `#[message(other)]` on the last variant of an enum, of the shape
//!   `Unknown { tag: u32, body: Bytes }` or `Unknown(u32, Bytes)`: an unknown tag decodes to it
//!   with the bytes after the tag, instead of failing the frame. Encoding it writes the tag and
//!   those bytes back, so a relay forwards messages it does not understand intact.
//! * `#[message(reserved(2, 5))]` on an enum: tags of removed variants, which no variant may
//!   take again (peers of the old version would read it as the removed one).
//!
//! "The value ended" needs a known end: the end of the frame for the outermost message, or the
//! end of a [`Delimited`] value, which is written after its length. So a type with any of
//! these attributes is *open-ended* ([`Message::OPEN_ENDED`]) and may only be the outermost
//! message of a frame, the last element of an outermost tuple, or sit in a `Delimited`; the
//! derive refuses it as a field (nest `Delimited<T>` instead), and sequences, maps, sets and
//! arrays refuse it as an element when their decoder is compiled.
//!
//! ```
//! use pea2pea::Message;
//! use bytes::Bytes;
//!
//! mod v1 {
//!     #[derive(pea2pea::Message, Debug, PartialEq)]
//!     #[message(extensible)]
//!     pub enum Chat {
//!         Hello { name: String },
//!         Say(String),
//!         #[message(other)]
//!         Unknown { tag: u32, body: bytes::Bytes },
//!     }
//! }
//!
//! mod v2 {
//!     #[derive(pea2pea::Message, Debug, PartialEq)]
//!     #[message(extensible)]
//!     pub enum Chat {
//!         Hello { name: String, #[message(default)] agent: Option<String> },
//!         Say(String),
//!         React(char), // new
//!         #[message(other)]
//!         Unknown { tag: u32, body: bytes::Bytes },
//!     }
//! }
//!
//! // An old peer's Hello reads as a new one with the default.
//! let old = v1::Chat::Hello { name: "ann".into() }.to_bytes();
//! let hello = v2::Chat::from_bytes(old).unwrap();
//! assert_eq!(hello, v2::Chat::Hello { name: "ann".into(), agent: None });
//!
//! // A new peer's Hello reads as an old one; its new variant reaches the catch-all.
//! let new = v2::Chat::Hello { name: "bob".into(), agent: Some("v2".into()) }.to_bytes();
//! assert_eq!(v1::Chat::from_bytes(new).unwrap(), v1::Chat::Hello { name: "bob".into() });
//! let react = v2::Chat::React('!').to_bytes();
//! let unknown = v1::Chat::from_bytes(react.clone()).unwrap();
//! // (the body is React's field: a char, written as a string of length 1)
//! assert_eq!(unknown, v1::Chat::Unknown { tag: 2, body: Bytes::from_static(&[1, b'!']) });
//! assert_eq!(unknown.to_bytes(), react); // forwarded intact
//! ```
//!
//! What else is safe to change, and what breaks peers, is tabled in the DSL guide
//! (`pea2pea-macros/DSL.md`, "Evolving a protocol").

mod delimited;
mod error;
mod impls;
mod reader;
mod schema;
mod wire;

use bytes::{Bytes, BytesMut};

pub use delimited::Delimited;
pub use error::{DecodeError, DecodeErrorKind};
pub use reader::{DEFAULT_MAX_DEPTH, MIN_ZERO_SIZED_BUDGET, PREALLOC_FACTOR, Reader};
pub use schema::{FieldSchema, Schema, SchemaFn, SchemaKind, VariantSchema, schema_of};
pub use wire::{
    fingerprint, put_varint_u64, put_varint_u128, unzigzag_i64, unzigzag_i128, varint_len_u64,
    varint_len_u128, zigzag_i64, zigzag_i128,
};

/// A value with a binary encoding in postcard's wire format and a bounded decoder.
///
/// Derive it with `#[derive(Message)]` (see the [module docs](self)), or implement it by hand
/// from the [`Reader`] primitives and the functions of this module.
///
/// ```
/// use pea2pea::Message;
///
/// let bytes = (7u8, -1i32, String::from("hi")).to_bytes();
/// assert_eq!(&bytes[..], &[7, 1, 2, b'h', b'i']);
/// let back = <(u8, i32, String)>::from_bytes(bytes).unwrap();
/// assert_eq!(back, (7, -1, "hi".into()));
/// ```
///
/// By hand, for a type whose encoding the derive does not write (here a version number kept
/// as a `u16` but sent as a `u64` varint, so that old peers still read it):
///
/// ```
/// use bytes::BytesMut;
/// use pea2pea::message::{
///     DecodeError, DecodeErrorKind, Message, Reader, put_varint_u64, varint_len_u64,
/// };
///
/// #[derive(Debug, PartialEq)]
/// struct Version(u16);
///
/// impl Message for Version {
///     const SHAPE: &'static str = "struct Version(u64)";
///
///     fn encoded_len(&self) -> usize {
///         varint_len_u64(self.0.into())
///     }
///
///     fn encode(&self, dst: &mut BytesMut) {
///         put_varint_u64(dst, self.0.into());
///     }
///
///     fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
///         let wide = u64::decode(src)?;
///         let narrow = u16::try_from(wide)
///             .map_err(|_| src.error(DecodeErrorKind::BadVarint, "Version"))?;
///         Ok(Version(narrow))
///     }
/// }
///
/// let bytes = Version(300).to_bytes();
/// assert_eq!(bytes.len(), Version(300).encoded_len());
/// assert_eq!(Version::from_slice(&bytes).unwrap(), Version(300));
/// assert!(Version::from_slice(&u64::MAX.to_bytes()).is_err());
/// assert!(Version::from_slice(&[0xac, 0x02, 0]).is_err()); // a trailing byte
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no wire encoding: it does not implement `pea2pea::Message`",
    label = "`{Self}` cannot be encoded in a message",
    note = "if `{Self}` is a type of yours, add `#[derive(pea2pea::Message)]` to it or implement `pea2pea::Message` for it by hand; otherwise use a type that has an encoding (integers, String, Bytes, Vec, Option, maps, tuples, Duration, IP and socket addresses...)",
    note = "a value that means something only in this process (an `Instant`, a handle, a channel) cannot be sent: send what the peer can use, e.g. a `Duration` (an age, a timeout, or a `SystemTime`'s `duration_since(UNIX_EPOCH)`)"
)]
pub trait Message: Sized {
    /// A description of the type's wire shape. The derive fills it with the type's declaration
    /// as written (name, fields or variants with their tags, field types in order, e.g.
    /// `struct Point { x: u32, y: u32 }`); primitives use their name (`u32`, `String`) and
    /// generic containers the name of the container (`Vec`, `Option`). The default is
    /// `"opaque"`.
    const SHAPE: &'static str = "opaque";

    /// A stable 64-bit hash of [`Message::SHAPE`] (FNV-1a, see [`fingerprint`]): two builds
    /// whose message declarations differ get different fingerprints.
    const FINGERPRINT: u64 = fingerprint(Self::SHAPE);

    /// A lower bound on the number of bytes any value of this type encodes to. Decoders use it
    /// to reject element counts that cannot fit in a frame before allocating. `0` (the default,
    /// always safe) makes sequences of this type draw on the frame's zero-sized budget instead.
    const MIN_LEN: usize = 0;

    /// Whether the decoder needs to know where the value ends: `true` for a derived type with
    /// `#[message(default)]` fields, `#[message(extensible)]` or a `#[message(other)]`
    /// variant, and for containers of such types (`Option<T>`, `Vec<T>`...). An open-ended
    /// value must be the outermost message of its frame, or sit in a [`Delimited`]; the derive
    /// checks its fields at compile time, and `Vec`, maps, sets, arrays and tuples check their
    /// elements when their decoder is compiled. Hand-written decoders that nest values should
    /// do the same.
    const OPEN_ENDED: bool = false;

    /// The type's declared structure, for comparing versions of a protocol: see [`Schema`].
    /// The default describes the type by its [`SHAPE`](Message::SHAPE) alone.
    const SCHEMA: &'static Schema = &Schema::opaque(Self::SHAPE);

    /// The exact number of bytes [`Message::encode`] appends.
    fn encoded_len(&self) -> usize;

    /// Appends the encoding of `self` to `dst`.
    fn encode(&self, dst: &mut BytesMut);

    /// Decodes one value from the front of `src`, advancing it.
    fn decode(src: &mut Reader) -> Result<Self, DecodeError>;

    /// Encodes `self` into a fresh buffer of exactly the right size.
    fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Decodes a whole frame; bytes left over after the value are an error. `Bytes` fields
    /// are zero-copy slices of `frame`.
    fn from_bytes(frame: Bytes) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(&frame);
        let value = Self::decode(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }

    /// Decodes a whole frame from borrowed bytes; bytes left over after the value are an
    /// error. `Bytes` fields are copied out of `frame` (use [`from_bytes`](Message::from_bytes)
    /// to share them).
    fn from_slice(frame: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::from_slice(frame);
        let value = Self::decode(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }

    /// The encoded length of a slice of values (without its count); `u8` overrides it.
    #[doc(hidden)]
    fn __slice_len(items: &[Self]) -> usize {
        items.iter().map(Self::encoded_len).sum()
    }

    /// Encodes a slice of values (without its count); `u8` overrides it with one copy.
    #[doc(hidden)]
    fn __encode_slice(items: &[Self], dst: &mut BytesMut) {
        for item in items {
            item.encode(dst);
        }
    }

    /// Decodes `len` values into a vector; `u8` overrides it with one copy.
    #[doc(hidden)]
    fn __decode_vec(src: &mut Reader, len: usize) -> Result<Vec<Self>, DecodeError> {
        let mut out = Vec::with_capacity(src.capacity_for::<Self>(len));
        for _ in 0..len {
            out.push(Self::decode(src)?);
        }
        Ok(out)
    }
}

/// Marks the types whose encoding starts with a varint length (strings, byte strings,
/// sequences, sets and maps): the types `#[message(max_len = ...)]` applies to.
#[diagnostic::on_unimplemented(
    message = "`#[message(max_len = ...)]` does not apply to `{Self}`",
    label = "`{Self}` has no length prefix",
    note = "max_len applies to String, Bytes, Vec, VecDeque, sets and maps; remove the attribute from this field"
)]
pub trait LengthPrefixed: Message {}
