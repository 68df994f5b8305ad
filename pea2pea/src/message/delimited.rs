//! [`Delimited`]: a value preceded by its length, so that its decoder knows where it ends.

use std::ops::{Deref, DerefMut};

use bytes::BytesMut;

use super::{
    DecodeError, LengthPrefixed, Message, Reader, Schema, SchemaKind, put_varint_u64, schema_of,
    varint_len_u64,
};

/// A value written as its encoded length (a varint), then its encoding: the way to nest an
/// *open-ended* message (one with `#[message(default)]` fields, `#[message(extensible)]`, or a
/// `#[message(other)]` variant) inside another message, a `Vec`, a map or a tuple.
///
/// An open-ended message learns where it ends from the end of what encloses it: the frame, or
/// the length of a `Delimited`. Anywhere else that end is unknown, so the derive refuses an
/// open-ended field type unless it is wrapped in a `Delimited` (see
/// [`Message::OPEN_ENDED`]). The value inside must fill the whole length: bytes left over are
/// an error, unless the type itself is `#[message(extensible)]`.
///
/// For a postcard peer, a `Delimited<T>` is a byte string (`serde_bytes`) holding the postcard
/// encoding of `T`.
///
/// ```
/// use pea2pea::{Message, message::Delimited};
///
/// #[derive(Message, Debug, PartialEq)]
/// struct Profile {
///     name: String,
///     #[message(default)]
///     bio: Option<String>, // added in version 2
/// }
///
/// #[derive(Message, Debug, PartialEq)]
/// struct Roster {
///     members: Vec<Delimited<Profile>>,
///     channel: String,
/// }
///
/// // A version-1 roster: each profile has its name only (length 4, then "ann").
/// let v1 = [1, 4, 3, b'a', b'n', b'n', 2, b'#', b'p'];
/// let roster = Roster::from_slice(&v1).unwrap();
/// assert_eq!(roster.members[0].bio, None);
/// assert_eq!(roster.channel, "#p");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Delimited<T>(pub T);

impl<T> Delimited<T> {
    /// The value inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Delimited<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> Deref for Delimited<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Delimited<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Message> Message for Delimited<T> {
    const SHAPE: &'static str = "Delimited";
    const SCHEMA: &'static Schema = &Schema {
        name: "Delimited",
        kind: SchemaKind::Opaque,
        params: &[schema_of::<T>],
    };
    const MIN_LEN: usize = 1;

    #[inline]
    fn encoded_len(&self) -> usize {
        let len = self.0.encoded_len();
        varint_len_u64(len as u64) + len
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, self.0.encoded_len() as u64);
        self.0.encode(dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        let len = src.read_byte_len("Delimited")?;
        src.read_limited(len, "Delimited", T::decode).map(Self)
    }
}

/// `#[message(max_len = ...)]` bounds the encoded length of the value inside.
impl<T: Message> LengthPrefixed for Delimited<T> {}
