//! `Option`, `Box` and `Arc`: an optional value and transparent wrappers.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};

use super::container_schema;
use crate::message::{DecodeError, DecodeErrorKind, LengthPrefixed, Message, Reader, Schema};

impl<T: Message> Message for Option<T> {
    const SHAPE: &'static str = "Option";
    const MIN_LEN: usize = 1;
    const OPEN_ENDED: bool = T::OPEN_ENDED;
    const SCHEMA: &'static Schema = container_schema!("Option", T);

    #[inline]
    fn encoded_len(&self) -> usize {
        1 + self.as_ref().map_or(0, T::encoded_len)
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        match self {
            None => dst.put_u8(0),
            Some(v) => {
                dst.put_u8(1);
                v.encode(dst);
            }
        }
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        match src.read_u8("Option")? {
            0 => Ok(None),
            1 => T::decode(src).map(Some),
            b => {
                let at = src.offset() - 1;
                Err(DecodeError::new(
                    DecodeErrorKind::InvalidOptionTag(b),
                    "Option",
                    at,
                ))
            }
        }
    }
}

/// Wrappers encode exactly as what they wrap.
macro_rules! transparent {
    ($($ptr:ident),*) => {$(
        impl<T: Message> Message for $ptr<T> {
            const SHAPE: &'static str = T::SHAPE;
            const MIN_LEN: usize = T::MIN_LEN;
            const OPEN_ENDED: bool = T::OPEN_ENDED;
            const SCHEMA: &'static Schema = T::SCHEMA;

            #[inline]
            fn encoded_len(&self) -> usize {
                T::encoded_len(self)
            }

            #[inline]
            fn encode(&self, dst: &mut BytesMut) {
                T::encode(self, dst)
            }

            #[inline]
            fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
                T::decode(src).map($ptr::new)
            }
        }

        impl<T: LengthPrefixed> LengthPrefixed for $ptr<T> {}
    )*};
}

transparent!(Box, Arc);
