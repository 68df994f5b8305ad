//! [`Reader`]: a bounded cursor over one frame, and the wire primitives decoders are built from.

use bytes::Bytes;

use super::{DecodeError, DecodeErrorKind, Message};

/// How deep values may nest (through derived types, so through `Box` and recursion) by default.
pub const DEFAULT_MAX_DEPTH: u32 = 128;

/// A frame may hold at least this many elements that encode to zero bytes (such as `()`),
/// whatever its size; see [`Reader::new`].
pub const MIN_ZERO_SIZED_BUDGET: usize = 4096;

/// Pre-allocation for a sequence is capped at this many bytes of memory per byte left in the
/// frame, so a lying length cannot reserve more than a small multiple of the frame.
pub const PREALLOC_FACTOR: usize = 8;

/// A cursor over one frame's bytes, with the limits that keep decoding bounded.
///
/// * every declared length is checked against the bytes that remain *before* anything is
///   allocated, and pre-allocation is capped by those bytes ([`PREALLOC_FACTOR`]);
/// * elements that encode to zero bytes (`()`, `PhantomData`, unit structs) draw on a per-frame
///   budget of `max(frame length, MIN_ZERO_SIZED_BUDGET)`, so no length can make a decoder loop
///   for long without consuming input;
/// * nesting through derived types is capped at [`DEFAULT_MAX_DEPTH`] levels.
///
/// A reader made with [`Reader::new`] from a [`Bytes`] frame reads byte strings as
/// [`Bytes::slice`]s of it: decoding a `Bytes` field copies nothing. One made with
/// [`Reader::from_slice`] borrows plain bytes and copies `Bytes` fields out of them. After a
/// decoding error the reader's position is unspecified; drop it.
///
/// ```
/// use pea2pea::message::{Message, Reader};
///
/// let frame = bytes::Bytes::from(vec![0xac, 0x02, 7]);
/// let mut reader = Reader::new(&frame);
/// assert_eq!(u32::decode(&mut reader).unwrap(), 300);
/// assert_eq!(reader.offset(), 2);
/// assert_eq!(u8::decode(&mut reader).unwrap(), 7);
/// reader.finish().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    /// The frame `buf` is, when it is shared: byte strings are then sliced out of it.
    frame: Option<&'a Bytes>,
    pos: usize,
    depth: u32,
    max_depth: u32,
    zero_sized_budget: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `frame` from its beginning, with the default limits; `Bytes` fields
    /// will be zero-copy slices of it.
    #[inline]
    pub fn new(frame: &'a Bytes) -> Self {
        Self {
            frame: Some(frame),
            ..Self::from_slice(frame)
        }
    }

    /// Starts reading borrowed bytes from their beginning, with the default limits; `Bytes`
    /// fields will be copies.
    #[inline]
    pub fn from_slice(frame: &'a [u8]) -> Self {
        let zero_sized_budget = frame.len().max(MIN_ZERO_SIZED_BUDGET);
        Self {
            buf: frame,
            frame: None,
            pos: 0,
            depth: 0,
            max_depth: DEFAULT_MAX_DEPTH,
            zero_sized_budget,
        }
    }

    /// Sets how deep derived values may nest (default [`DEFAULT_MAX_DEPTH`]).
    pub fn with_max_depth(mut self, max_depth: u32) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// The offset of the next byte from the start of the frame.
    #[inline]
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// How many bytes are left to read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails if any bytes remain unread.
    #[inline]
    pub fn finish(self) -> Result<(), DecodeError> {
        self.expect_end()
    }

    /// Fails if any bytes remain unread in the enclosing value.
    #[inline]
    fn expect_end(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(self.error(DecodeErrorKind::TrailingBytes { remaining }, "message")),
        }
    }

    /// Whether the enclosing value has ended: nothing remains of the frame or, inside
    /// [`Reader::read_limited`], of the length-prefixed value. A `#[message(default)]` field is
    /// absent exactly when this is true where it would start.
    ///
    /// ```
    /// use pea2pea::message::{Message, Reader};
    ///
    /// let frame = bytes::Bytes::from_static(&[7]);
    /// let mut reader = Reader::new(&frame);
    /// assert!(!reader.at_end());
    /// u8::decode(&mut reader).unwrap();
    /// assert!(reader.at_end());
    /// ```
    #[inline]
    pub fn at_end(&self) -> bool {
        self.remaining() == 0
    }

    /// Takes every byte left in the enclosing value, as a zero-copy slice of the frame when it
    /// is shared: the body of an unknown variant that a `#[message(other)]` variant keeps.
    #[inline]
    pub fn read_rest(&mut self) -> Bytes {
        let start = self.pos;
        self.pos = self.buf.len();
        match self.frame {
            Some(frame) => frame.slice(start..self.pos),
            None => Bytes::copy_from_slice(&self.buf[start..]),
        }
    }

    /// Skips every byte left in the enclosing value: a `#[message(extensible)]` type ignores
    /// the fields that a newer peer added after the ones it knows.
    #[inline]
    pub fn skip_rest(&mut self) {
        self.pos = self.buf.len();
    }

    /// Decodes the next `len` bytes as one whole value: `decode` sees them as the end of its
    /// input (so [`Reader::at_end`], [`Reader::read_rest`] and [`Reader::skip_rest`] stop
    /// there), and must consume all of them. The reader then goes on after them. This is what
    /// [`Delimited`](super::Delimited) decodes with.
    ///
    /// ```
    /// use pea2pea::message::{Message, Reader};
    ///
    /// let frame = bytes::Bytes::from_static(&[1, 2, 3]);
    /// let mut reader = Reader::new(&frame);
    /// let rest = reader.read_limited(2, "pair", |r| Ok(r.read_rest())).unwrap();
    /// assert_eq!(&rest[..], &[1, 2]);
    /// assert_eq!(u8::decode(&mut reader).unwrap(), 3);
    /// ```
    pub fn read_limited<T>(
        &mut self,
        len: usize,
        ty: &'static str,
        decode: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        if len > self.remaining() {
            return Err(self.end(len, ty));
        }
        let whole = self.buf;
        self.buf = &whole[..self.pos + len];
        let result = decode(self).and_then(|value| self.expect_end().map(|()| value));
        self.buf = whole;
        result
    }

    /// An error of `kind` at the current offset, met while decoding a `ty`.
    #[cold]
    pub fn error(&self, kind: DecodeErrorKind, ty: &'static str) -> DecodeError {
        DecodeError::new(kind, ty, self.pos)
    }

    #[cold]
    fn end(&self, needed: usize, ty: &'static str) -> DecodeError {
        let remaining = self.remaining();
        self.error(DecodeErrorKind::UnexpectedEnd { needed, remaining }, ty)
    }

    /// Reads one byte.
    #[inline]
    pub fn read_u8(&mut self, ty: &'static str) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.end(1, ty)),
        }
    }

    /// Reads `N` raw bytes.
    #[inline]
    pub fn read_array<const N: usize>(&mut self, ty: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.read_slice(N, ty)?);
        Ok(out)
    }

    /// Borrows the next `len` bytes.
    #[inline]
    pub fn read_slice(&mut self, len: usize, ty: &'static str) -> Result<&[u8], DecodeError> {
        if len > self.remaining() {
            return Err(self.end(len, ty));
        }
        let start = self.pos;
        self.pos += len;
        Ok(&self.buf[start..self.pos])
    }

    /// Takes the next `len` bytes as a zero-copy slice of the frame.
    #[inline]
    pub fn read_bytes(&mut self, len: usize, ty: &'static str) -> Result<Bytes, DecodeError> {
        if len > self.remaining() {
            return Err(self.end(len, ty));
        }
        let start = self.pos;
        self.pos += len;
        Ok(match self.frame {
            Some(frame) => frame.slice(start..self.pos),
            None => Bytes::copy_from_slice(&self.buf[start..self.pos]),
        })
    }

    /// Reads a varint of at most `max` bytes holding a value of `bits` bits; the last byte may
    /// not carry bits beyond them (the same rule as postcard).
    #[inline]
    fn varint(&mut self, max: usize, bits: u32, ty: &'static str) -> Result<u64, DecodeError> {
        let rest = &self.buf[self.pos..];
        // One-byte values are the common case: lengths, tags, small numbers.
        if let Some(&b) = rest.first()
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut out = 0u64;
        for i in 0..max {
            let Some(&b) = rest.get(i) else {
                return Err(self.end(i + 1, ty));
            };
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max - 1 && u32::from(b) >> (bits - 7 * (max as u32 - 1)) != 0 {
                    break;
                }
                self.pos += i + 1;
                return Ok(out);
            }
        }
        Err(self.error(DecodeErrorKind::BadVarint, ty))
    }

    /// Reads a LEB128 varint `u16` (at most 3 bytes).
    #[inline]
    pub fn read_varint_u16(&mut self, ty: &'static str) -> Result<u16, DecodeError> {
        self.varint(3, 16, ty).map(|v| v as u16)
    }

    /// Reads a LEB128 varint `u32` (at most 5 bytes).
    #[inline]
    pub fn read_varint_u32(&mut self, ty: &'static str) -> Result<u32, DecodeError> {
        self.varint(5, 32, ty).map(|v| v as u32)
    }

    /// Reads a LEB128 varint `u64` (at most 10 bytes).
    #[inline]
    pub fn read_varint_u64(&mut self, ty: &'static str) -> Result<u64, DecodeError> {
        self.varint(10, 64, ty)
    }

    /// Reads a LEB128 varint `u128` (at most 19 bytes).
    pub fn read_varint_u128(&mut self, ty: &'static str) -> Result<u128, DecodeError> {
        let rest = &self.buf[self.pos..];
        let mut out = 0u128;
        for i in 0..19 {
            let Some(&b) = rest.get(i) else {
                return Err(self.end(i + 1, ty));
            };
            out |= u128::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == 18 && b > 0x03 {
                    break;
                }
                self.pos += i + 1;
                return Ok(out);
            }
        }
        Err(self.error(DecodeErrorKind::BadVarint, ty))
    }

    /// Reads a byte length (of a string or byte string) and checks that that many bytes remain.
    #[inline]
    pub fn read_byte_len(&mut self, ty: &'static str) -> Result<usize, DecodeError> {
        let start = self.pos;
        let declared = self.read_varint_u64(ty)?;
        let remaining = self.remaining();
        if declared > remaining as u64 {
            return Err(DecodeError::new(
                DecodeErrorKind::LengthExceedsFrame {
                    declared,
                    remaining,
                },
                ty,
                start,
            ));
        }
        Ok(declared as usize)
    }

    /// Reads an element count for a sequence of `T` and checks, before anything is allocated,
    /// that so many elements can fit in what remains (using [`Message::MIN_LEN`]), or, for
    /// elements that may encode to zero bytes, that the frame's budget for them allows it.
    #[inline]
    pub fn read_seq_len<T: Message>(&mut self, ty: &'static str) -> Result<usize, DecodeError> {
        let start = self.pos;
        let declared = self.read_varint_u64(ty)?;
        let remaining = self.remaining();
        if T::MIN_LEN == 0 {
            if declared > self.zero_sized_budget as u64 {
                let kind = DecodeErrorKind::ZeroSizedBudgetExceeded {
                    budget: self.zero_sized_budget,
                };
                return Err(DecodeError::new(kind, ty, start));
            }
            self.zero_sized_budget -= declared as usize;
        } else if declared > (remaining / T::MIN_LEN) as u64 {
            let kind = DecodeErrorKind::LengthExceedsFrame {
                declared,
                remaining,
            };
            return Err(DecodeError::new(kind, ty, start));
        }
        Ok(declared as usize)
    }

    /// How many `T`s to pre-allocate for a sequence of `len`: at most [`PREALLOC_FACTOR`] bytes
    /// of memory per byte left in the frame.
    #[inline]
    pub fn capacity_for<T>(&self, len: usize) -> usize {
        let size = size_of::<T>().max(1);
        len.min(self.remaining().saturating_mul(PREALLOC_FACTOR) / size)
    }

    /// Fails if the length prefix at the current position is larger than `max`, without
    /// consuming it: `#[message(max_len = ...)]` fields call this before decoding.
    pub fn check_max_len(&mut self, max: usize, ty: &'static str) -> Result<(), DecodeError> {
        let start = self.pos;
        let declared = self.read_varint_u64(ty)?;
        self.pos = start;
        if declared > max as u64 {
            return Err(self.error(DecodeErrorKind::MaxLenExceeded { declared, max }, ty));
        }
        Ok(())
    }

    /// Reads an enum's variant index.
    #[inline]
    pub fn read_variant(&mut self, ty: &'static str) -> Result<u32, DecodeError> {
        self.read_varint_u32(ty)
    }

    /// Enters one level of nesting (derived decoders call this first); fails past the limit.
    #[inline]
    pub fn enter(&mut self, ty: &'static str) -> Result<(), DecodeError> {
        if self.depth >= self.max_depth {
            return Err(self.error(
                DecodeErrorKind::TooDeep {
                    limit: self.max_depth,
                },
                ty,
            ));
        }
        self.depth += 1;
        Ok(())
    }

    /// Leaves the level entered by [`Reader::enter`].
    #[inline]
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
}
