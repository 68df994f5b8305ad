//! Helpers that `#[derive(Message)]`'s generated code calls. Not public API.

pub use bytes::BytesMut;

use super::{DecodeError, DecodeErrorKind, LengthPrefixed, Reader};

/// Names a field (`"Type.field"`) in the path of a decoding error.
#[inline]
pub fn within<T>(result: Result<T, DecodeError>, step: &'static str) -> Result<T, DecodeError> {
    result.map_err(|e| e.within(step))
}

/// Checks a `#[message(max_len = ...)]` field's length prefix before it is decoded.
#[inline]
pub fn check_max_len<T: LengthPrefixed>(
    src: &mut Reader,
    max: usize,
    step: &'static str,
) -> Result<(), DecodeError> {
    src.check_max_len(max, T::SHAPE).map_err(|e| e.within(step))
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
