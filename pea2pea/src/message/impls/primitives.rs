//! Numbers, `bool`, `char`, `()` and `PhantomData`.

use std::marker::PhantomData;

use bytes::{BufMut, BytesMut};

use crate::message::{
    DecodeError, DecodeErrorKind, Message, Reader, put_varint_u64, put_varint_u128, unzigzag_i64,
    unzigzag_i128, varint_len_u64, varint_len_u128, zigzag_i64, zigzag_i128,
};

impl Message for u8 {
    const SHAPE: &'static str = "u8";
    const MIN_LEN: usize = 1;

    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(*self);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        src.read_u8("u8")
    }

    fn __slice_len(items: &[Self]) -> usize {
        items.len()
    }

    fn __encode_slice(items: &[Self], dst: &mut BytesMut) {
        dst.extend_from_slice(items);
    }

    fn __decode_vec(src: &mut Reader, len: usize) -> Result<Vec<Self>, DecodeError> {
        Ok(src.read_slice(len, "u8")?.to_vec())
    }
}

impl Message for i8 {
    const SHAPE: &'static str = "i8";
    const MIN_LEN: usize = 1;

    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        dst.put_i8(*self);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        src.read_u8("i8").map(|b| b as i8)
    }
}

/// Unsigned integers wider than a byte: a varint of their value.
macro_rules! unsigned {
    ($($ty:ty => $read:ident),*) => {$(
        impl Message for $ty {
            const SHAPE: &'static str = stringify!($ty);
            const MIN_LEN: usize = 1;

            #[inline]
            fn encoded_len(&self) -> usize {
                varint_len_u64(*self as u64)
            }

            #[inline]
            fn encode(&self, dst: &mut BytesMut) {
                put_varint_u64(dst, *self as u64);
            }

            #[inline]
            fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
                src.$read(stringify!($ty)).map(|v| v as $ty)
            }
        }
    )*};
}

unsigned!(u16 => read_varint_u16, u32 => read_varint_u32, u64 => read_varint_u64);

/// Signed integers wider than a byte: a varint of their zigzag.
macro_rules! signed {
    ($($ty:ty => $read:ident),*) => {$(
        impl Message for $ty {
            const SHAPE: &'static str = stringify!($ty);
            const MIN_LEN: usize = 1;

            #[inline]
            fn encoded_len(&self) -> usize {
                varint_len_u64(zigzag_i64(*self as i64))
            }

            #[inline]
            fn encode(&self, dst: &mut BytesMut) {
                put_varint_u64(dst, zigzag_i64(*self as i64));
            }

            #[inline]
            fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
                // The zigzag of an iN fits in uN, so the cast back is exact.
                src.$read(stringify!($ty)).map(|v| unzigzag_i64(v as u64) as $ty)
            }
        }
    )*};
}

signed!(i16 => read_varint_u16, i32 => read_varint_u32, i64 => read_varint_u64);

impl Message for usize {
    const SHAPE: &'static str = "usize";
    const MIN_LEN: usize = 1;

    #[inline]
    fn encoded_len(&self) -> usize {
        varint_len_u64(*self as u64)
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, *self as u64);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        let start = src.offset();
        let v = src.read_varint_u64("usize")?;
        usize::try_from(v).map_err(|_| {
            DecodeError::new(
                DecodeErrorKind::Invalid("value does not fit in usize"),
                "usize",
                start,
            )
        })
    }
}

impl Message for isize {
    const SHAPE: &'static str = "isize";
    const MIN_LEN: usize = 1;

    #[inline]
    fn encoded_len(&self) -> usize {
        varint_len_u64(zigzag_i64(*self as i64))
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, zigzag_i64(*self as i64));
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        let start = src.offset();
        let v = unzigzag_i64(src.read_varint_u64("isize")?);
        isize::try_from(v).map_err(|_| {
            DecodeError::new(
                DecodeErrorKind::Invalid("value does not fit in isize"),
                "isize",
                start,
            )
        })
    }
}

impl Message for u128 {
    const SHAPE: &'static str = "u128";
    const MIN_LEN: usize = 1;

    fn encoded_len(&self) -> usize {
        varint_len_u128(*self)
    }

    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u128(dst, *self);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        src.read_varint_u128("u128")
    }
}

impl Message for i128 {
    const SHAPE: &'static str = "i128";
    const MIN_LEN: usize = 1;

    fn encoded_len(&self) -> usize {
        varint_len_u128(zigzag_i128(*self))
    }

    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u128(dst, zigzag_i128(*self));
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        src.read_varint_u128("i128").map(unzigzag_i128)
    }
}

/// Floats: their IEEE 754 bits, little-endian.
macro_rules! float {
    ($($ty:ty => $n:literal),*) => {$(
        impl Message for $ty {
            const SHAPE: &'static str = stringify!($ty);
            const MIN_LEN: usize = $n;

            #[inline]
            fn encoded_len(&self) -> usize {
                $n
            }

            #[inline]
            fn encode(&self, dst: &mut BytesMut) {
                dst.extend_from_slice(&self.to_le_bytes());
            }

            #[inline]
            fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
                src.read_array::<$n>(stringify!($ty)).map(<$ty>::from_le_bytes)
            }
        }
    )*};
}

float!(f32 => 4, f64 => 8);

impl Message for bool {
    const SHAPE: &'static str = "bool";
    const MIN_LEN: usize = 1;

    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        dst.put_u8(u8::from(*self));
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        match src.read_u8("bool")? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::new(
                DecodeErrorKind::InvalidBool(b),
                "bool",
                src.offset() - 1,
            )),
        }
    }
}

impl Message for char {
    const SHAPE: &'static str = "char";
    const MIN_LEN: usize = 2;

    fn encoded_len(&self) -> usize {
        1 + self.len_utf8()
    }

    fn encode(&self, dst: &mut BytesMut) {
        let mut buf = [0u8; 4];
        let s = self.encode_utf8(&mut buf);
        dst.put_u8(s.len() as u8);
        dst.extend_from_slice(s.as_bytes());
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        let start = src.offset();
        let len = src.read_byte_len("char")?;
        let invalid = || DecodeError::new(DecodeErrorKind::InvalidChar, "char", start);
        if !(1..=4).contains(&len) {
            return Err(invalid());
        }
        let s = std::str::from_utf8(src.read_slice(len, "char")?).map_err(|_| invalid())?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(invalid()),
        }
    }
}

impl Message for () {
    const SHAPE: &'static str = "()";
    const MIN_LEN: usize = 0;

    fn encoded_len(&self) -> usize {
        0
    }

    fn encode(&self, _: &mut BytesMut) {}

    #[inline]
    fn decode(_: &mut Reader) -> Result<Self, DecodeError> {
        Ok(())
    }
}

impl<T: ?Sized> Message for PhantomData<T> {
    const SHAPE: &'static str = "PhantomData";
    const MIN_LEN: usize = 0;

    fn encoded_len(&self) -> usize {
        0
    }

    fn encode(&self, _: &mut BytesMut) {}

    #[inline]
    fn decode(_: &mut Reader) -> Result<Self, DecodeError> {
        Ok(PhantomData)
    }
}
