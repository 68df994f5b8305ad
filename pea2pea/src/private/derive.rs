//! Everything `#[derive(Message)]`'s generated code names: its helpers, and the public items
//! it uses, re-exported. Not public API.

use bytes::Bytes;
pub use bytes::BytesMut;

use crate::message::{DecodeErrorKind, LengthPrefixed};
// the public items the generated code names too, so that it names one path only
pub use crate::message::{
    DecodeError, FieldSchema, Message, Reader, Schema, SchemaKind, VariantSchema, fingerprint,
    put_varint_u64, schema_of, varint_len_u64,
};

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

/// The first field of a `#[message(other)]` variant: the unknown tag.
#[diagnostic::on_unimplemented(
    message = "the first field of a `#[message(other)]` variant holds the unknown variant's tag, so it must be a `u32`, not `{Self}`",
    label = "expected `u32`",
    note = "a catch-all variant has the shape `Unknown {{ tag: u32, body: Bytes }}` or `Unknown(u32, Bytes)`"
)]
pub trait CatchAllTag {
    /// The tag as read from the wire.
    fn from_tag(tag: u32) -> Self;
    /// The tag to write back.
    fn tag(&self) -> u32;
}

#[diagnostic::do_not_recommend]
impl CatchAllTag for u32 {
    #[inline]
    fn from_tag(tag: u32) -> Self {
        tag
    }

    #[inline]
    fn tag(&self) -> u32 {
        *self
    }
}

/// The second field of a `#[message(other)]` variant: the unknown variant's body.
#[diagnostic::on_unimplemented(
    message = "the second field of a `#[message(other)]` variant holds the unknown variant's bytes, so it must be `bytes::Bytes`, not `{Self}`",
    label = "expected `Bytes`",
    note = "a catch-all variant has the shape `Unknown {{ tag: u32, body: Bytes }}` or `Unknown(u32, Bytes)`"
)]
pub trait CatchAllBody {
    /// The body as read from the wire.
    fn from_body(body: Bytes) -> Self;
    /// The body to write back.
    fn body(&self) -> &[u8];
}

#[diagnostic::do_not_recommend]
impl CatchAllBody for Bytes {
    #[inline]
    fn from_body(body: Bytes) -> Self {
        body
    }

    #[inline]
    fn body(&self) -> &[u8] {
        self
    }
}

/// The value of an absent `#[message(default)]` field: `Default::default()`, through a trait
/// of our own so that a type without `Default` gets an error that names the attribute.
#[diagnostic::on_unimplemented(
    message = "`#[message(default)]` fills an absent field with `Default::default()`, but `{Self}` does not implement `Default`",
    label = "`{Self}` has no `Default`",
    note = "derive or implement `Default` for `{Self}`, or name a function that makes the value: `#[message(default = path::to::function)]`"
)]
pub trait DefaultField: Sized {
    /// `Default::default()`.
    fn default_field() -> Self;
}

#[diagnostic::do_not_recommend]
impl<T: Default> DefaultField for T {
    #[inline]
    fn default_field() -> Self {
        T::default()
    }
}
