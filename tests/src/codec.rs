//! The codec spoken by the test nodes.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The size of [`TestCodec`]'s length prefix.
pub const PREFIX_LEN: usize = 2;

/// A length-delimited codec with a 2-byte big-endian length prefix.
///
/// Decoding a zero-length frame is an [`io::ErrorKind::InvalidData`] error, which gives tests a
/// simple way to make a peer send a "bad" message (the encoder happily writes one). Frames are
/// bounded by the prefix (at most 65,535 payload bytes), so a peer cannot make the decoder buffer
/// grow without bound.
#[derive(Debug, Default, Clone, Copy)]
pub struct TestCodec;

impl Decoder for TestCodec {
    type Item = Bytes;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        if src.len() < PREFIX_LEN {
            return Ok(None);
        }
        let len = u16::from_be_bytes([src[0], src[1]]) as usize;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "zero-length frame",
            ));
        }
        if src.len() < PREFIX_LEN + len {
            // wait for the rest of the frame, reserving room for it up front
            src.reserve(PREFIX_LEN + len - src.len());
            return Ok(None);
        }
        src.advance(PREFIX_LEN);
        Ok(Some(src.split_to(len).freeze()))
    }
}

impl Encoder<Bytes> for TestCodec {
    type Error = io::Error;

    fn encode(&mut self, msg: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        let len = u16::try_from(msg.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "payload longer than 65535 bytes",
            )
        })?;
        dst.reserve(PREFIX_LEN + msg.len());
        dst.put_u16(len);
        dst.extend_from_slice(&msg);
        Ok(())
    }
}

/// Encodes `payload` the way [`TestCodec`] does, for raw sockets that act as peers.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("payload longer than 65535 bytes");
    let mut out = Vec::with_capacity(PREFIX_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The wire size of a [`TestCodec`] message with a payload of `len` bytes (STAT-01).
pub const fn wire_len(len: usize) -> u64 {
    (PREFIX_LEN + len) as u64
}
