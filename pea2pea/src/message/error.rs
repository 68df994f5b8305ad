//! [`DecodeError`]: why a frame could not be decoded, and where.

use std::{error::Error, fmt, io};

/// Why a frame could not be decoded: what was wrong, the type being read, the byte offset in the
/// frame, and the path of fields and variants that led there (outermost first).
///
/// The error is boxed so that `Result<T, DecodeError>` stays one pointer wide on the hot path; it
/// allocates only when decoding fails.
///
/// ```
/// use pea2pea::Message;
///
/// let err = bool::from_bytes(vec![2u8].into()).unwrap_err();
/// assert_eq!(err.offset(), 0);
/// assert_eq!(err.type_name(), "bool");
/// assert_eq!(err.to_string(), "cannot decode bool at byte 0: 2 is not a bool (0 or 1)");
/// ```
pub struct DecodeError(Box<Inner>);

struct Inner {
    kind: DecodeErrorKind,
    ty: &'static str,
    offset: usize,
    path: Vec<&'static str>,
}

/// What went wrong while decoding, from [`DecodeError::kind`]: match on it to treat some
/// failures apart (it is `#[non_exhaustive]`: keep a `_` arm).
///
/// ```
/// use pea2pea::{DecodeErrorKind, Message};
///
/// // a one-byte frame where a `u32` and a `String` were expected
/// let err = <(u32, String)>::from_slice(&[7]).unwrap_err();
/// match err.kind() {
///     DecodeErrorKind::UnexpectedEnd { needed, remaining } => {
///         assert_eq!((*needed, *remaining), (1, 0));
///     }
///     other => panic!("another failure: {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The frame ended before the value did.
    UnexpectedEnd {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A declared length (or element count) cannot fit in the bytes that remain.
    LengthExceedsFrame {
        /// The declared length or element count.
        declared: u64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length is larger than the field's `#[message(max_len = ...)]`.
    MaxLenExceeded {
        /// The declared length.
        declared: u64,
        /// The field's maximum.
        max: usize,
    },
    /// Too many elements that encode to zero bytes (such as `()`) in one frame.
    ZeroSizedBudgetExceeded {
        /// The frame's budget of zero-byte elements.
        budget: usize,
    },
    /// A varint is longer than its type allows or overflows it.
    BadVarint,
    /// A bool byte other than 0 or 1.
    InvalidBool(u8),
    /// An `Option` tag byte other than 0 or 1.
    InvalidOptionTag(u8),
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// A `char` is not exactly one UTF-8 scalar value.
    InvalidChar,
    /// An enum variant index (tag) that the type does not have.
    UnknownVariant(u32),
    /// Nested values go deeper than the reader's limit.
    TooDeep {
        /// The limit.
        limit: u32,
    },
    /// Bytes remain after the value ended.
    TrailingBytes {
        /// How many bytes were left over.
        remaining: usize,
    },
    /// A value was decoded but is not valid for its type (such as a `Duration` whose nanoseconds
    /// overflow); the text says why.
    Invalid(&'static str),
}

impl DecodeError {
    /// A new error of `kind`, met while decoding a `ty` at `offset`.
    #[cold]
    pub fn new(kind: DecodeErrorKind, ty: &'static str, offset: usize) -> Self {
        Self(Box::new(Inner {
            kind,
            ty,
            offset,
            path: Vec::new(),
        }))
    }

    /// Adds an outer step (such as `"Chat::Hello.name"`) to the error's path; derived decoders
    /// call this as the error travels out through fields and variants.
    #[cold]
    pub fn within(mut self, step: &'static str) -> Self {
        self.0.path.push(step);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.0.kind
    }

    /// The type that was being decoded (the innermost one).
    pub fn type_name(&self) -> &'static str {
        self.0.ty
    }

    /// The offset from the start of the frame of the byte where decoding failed.
    pub fn offset(&self) -> usize {
        self.0.offset
    }

    /// The fields and variants that led to the failure, outermost first.
    pub fn path(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.path.iter().rev().copied()
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnexpectedEnd { needed, remaining } => {
                write!(f, "needed {needed} more bytes but only {remaining} remain")
            }
            Self::LengthExceedsFrame {
                declared,
                remaining,
            } => {
                write!(
                    f,
                    "declared length {declared} does not fit in the {remaining} bytes remaining"
                )
            }
            Self::MaxLenExceeded { declared, max } => {
                write!(
                    f,
                    "declared length {declared} exceeds the field's max_len of {max}"
                )
            }
            Self::ZeroSizedBudgetExceeded { budget } => {
                write!(f, "more than {budget} zero-byte elements in one frame")
            }
            Self::BadVarint => f.write_str("varint is too long or overflows its type"),
            Self::InvalidBool(b) => write!(f, "{b} is not a bool (0 or 1)"),
            Self::InvalidOptionTag(b) => write!(f, "{b} is not an Option tag (0 or 1)"),
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::InvalidChar => f.write_str("not exactly one UTF-8 character"),
            Self::UnknownVariant(tag) => write!(f, "unknown variant tag {tag}"),
            Self::TooDeep { limit } => write!(f, "nesting deeper than the limit of {limit}"),
            Self::TrailingBytes { remaining } => {
                write!(f, "{remaining} bytes left over after the message")
            }
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot decode ")?;
        let mut steps = self.path().peekable();
        if steps.peek().is_some() {
            for (i, step) in steps.enumerate() {
                if i > 0 {
                    f.write_str(" > ")?;
                }
                f.write_str(step)?;
            }
            write!(f, " ({})", self.0.ty)?;
        } else {
            f.write_str(self.0.ty)?;
        }
        write!(f, " at byte {}: {}", self.0.offset, self.0.kind)
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeError")
            .field("kind", &self.0.kind)
            .field("type", &self.0.ty)
            .field("offset", &self.0.offset)
            .field("path", &self.path().collect::<Vec<_>>())
            .finish()
    }
}

impl Error for DecodeError {}

impl From<DecodeError> for io::Error {
    fn from(err: DecodeError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}
