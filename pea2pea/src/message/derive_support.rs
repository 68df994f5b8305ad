//! Helpers that `#[derive(Message)]`'s generated code calls. Not public API.

pub use bytes::BytesMut;

use super::{DecodeError, DecodeErrorKind, LengthPrefixed, Message, Reader};

/// Decodes a field, naming it (`"Type.field"`) in the error's path.
#[inline]
pub fn field<T: Message>(src: &mut Reader, step: &'static str) -> Result<T, DecodeError> {
    T::decode(src).map_err(|e| e.within(step))
}

/// Decodes a `#[message(max_len = ...)]` field: the length prefix is checked first.
#[inline]
pub fn field_max_len<T: LengthPrefixed>(
    src: &mut Reader,
    max: usize,
    step: &'static str,
) -> Result<T, DecodeError> {
    src.check_max_len(max, T::SHAPE)
        .map_err(|e| e.within(step))?;
    field(src, step)
}

/// The error for a variant tag the enum does not have.
#[cold]
pub fn unknown_variant(tag: u32, ty: &'static str, at: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::UnknownVariant(tag), ty, at)
}

/// Folds the fingerprints of a generic type's parameters into its own.
pub const fn mix(mut hash: u64, params: &[u64]) -> u64 {
    let mut i = 0;
    while i < params.len() {
        hash = (hash ^ params[i])
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(29);
        i += 1;
    }
    hash
}
