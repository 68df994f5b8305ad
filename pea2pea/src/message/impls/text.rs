//! Strings and byte strings: a varint length, then the bytes.

use bytes::{Bytes, BytesMut};

use crate::message::{
    DecodeError, DecodeErrorKind, LengthPrefixed, Message, Reader, put_varint_u64, varint_len_u64,
};

impl Message for String {
    const SHAPE: &'static str = "String";
    const MIN_LEN: usize = 1;

    #[inline]
    fn encoded_len(&self) -> usize {
        varint_len_u64(self.len() as u64) + self.len()
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, self.len() as u64);
        dst.extend_from_slice(self.as_bytes());
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        let len = src.read_byte_len("String")?;
        let start = src.offset();
        match std::str::from_utf8(src.read_slice(len, "String")?) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(DecodeError::new(
                DecodeErrorKind::InvalidUtf8,
                "String",
                start + e.valid_up_to(),
            )),
        }
    }
}

impl LengthPrefixed for String {}

/// A `Bytes` field decodes as a zero-copy slice of the frame.
impl Message for Bytes {
    const SHAPE: &'static str = "Bytes";
    const MIN_LEN: usize = 1;

    #[inline]
    fn encoded_len(&self) -> usize {
        varint_len_u64(self.len() as u64) + self.len()
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, self.len() as u64);
        dst.extend_from_slice(self);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        let len = src.read_byte_len("Bytes")?;
        src.read_bytes(len, "Bytes")
    }
}

impl LengthPrefixed for Bytes {}
