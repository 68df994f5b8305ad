//! Messages with a compact binary encoding: the runtime half of `#[derive(Message)]`.
//!
//! CONTRACT STUB (to be filled in by the derive/wire work): the names and signatures below are
//! what the DSL and the engine code against; the bodies are placeholders.

use bytes::{Bytes, BytesMut};

/// A value with a binary encoding in postcard's wire format and a bounded decoder.
pub trait Message: Sized {
    /// The exact number of bytes [`Message::encode`] appends.
    fn encoded_len(&self) -> usize;

    /// Appends the encoding of `self` to `dst`.
    fn encode(&self, dst: &mut BytesMut);

    /// Decodes one value from the front of `src`, advancing it.
    fn decode(src: &mut Reader) -> Result<Self, DecodeError>;

    /// Encodes `self` into a fresh buffer.
    fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }

    /// Decodes a whole frame; bytes left over after the value are an error.
    fn from_bytes(frame: Bytes) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(frame);
        let value = Self::decode(&mut reader)?;
        reader.finish()?;
        Ok(value)
    }
}

/// A cursor over one frame's bytes, with the limits that keep decoding bounded.
pub struct Reader {
    buf: Bytes,
    start_len: usize,
}

impl Reader {
    /// Starts reading `frame` from its beginning.
    pub fn new(frame: Bytes) -> Self {
        let start_len = frame.len();
        Self { buf: frame, start_len }
    }

    /// The offset of the next byte from the start of the frame.
    pub fn offset(&self) -> usize {
        self.start_len - self.buf.len()
    }

    /// Fails if any bytes remain unread.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() { Ok(()) } else { Err(DecodeError { _offset: self.offset() }) }
    }
}

/// Why a frame could not be decoded.
#[derive(Debug)]
pub struct DecodeError {
    _offset: usize,
}
