//! The codec of a declaration over `length_delimited` framing: the engine's [`MessageCodec`],
//! and, for a protocol without a handshake, a look at the first bytes a peer sends. A DSL hello
//! there means that the peer declares `handshake = fingerprint` and this node does not; read
//! as a length header, it would be reported as a frame of some absurd size (or, with a narrow
//! header, waited for until the idle timeout).

use std::io;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{Message, codec::MessageCodec};

/// How every version of the DSL hello starts (its magic, without the version).
pub(crate) const HELLO_PREFIX: &[u8] = b"p2pdsl/";

/// A [`MessageCodec`] that, until the peer's first bytes are in, checks that they are not a
/// DSL hello. The check costs one branch a decode, and ends with the first bytes that differ.
pub struct DslCodec<In, Out> {
    inner: MessageCodec<In, Out>,
    check_hello: bool,
}

impl<In, Out> DslCodec<In, Out> {
    pub(crate) fn new(inner: MessageCodec<In, Out>, check_hello: bool) -> Self {
        Self { inner, check_hello }
    }

    /// `Err` if `src` starts with a DSL hello; `Ok(false)` while it could still be one.
    #[cold]
    fn first_bytes(&mut self, src: &[u8]) -> io::Result<bool> {
        let n = src.len().min(HELLO_PREFIX.len());
        if src[..n] != HELLO_PREFIX[..n] {
            self.check_hello = false;
            return Ok(true);
        }
        if n < HELLO_PREFIX.len() {
            return Ok(false);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a pea2pea DSL hello: the peer declares `handshake = fingerprint` and this node's protocol does not (declare the same handshake on both)",
        ))
    }
}

impl<In: Message, Out> Decoder for DslCodec<In, Out> {
    type Item = In;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<In>> {
        if self.check_hello && !src.is_empty() && !self.first_bytes(src)? {
            return Ok(None);
        }
        self.inner.decode(src)
    }
}

impl<In, Out, T> Encoder<T> for DslCodec<In, Out>
where
    MessageCodec<In, Out>: Encoder<T, Error = io::Error>,
{
    type Error = io::Error;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> io::Result<()> {
        self.inner.encode(item, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(check_hello: bool) -> DslCodec<u8, u8> {
        DslCodec::new(MessageCodec::new(), check_hello)
    }

    #[test]
    fn a_hello_is_named_and_a_frame_passes() {
        let mut hello = BytesMut::from(&b"p2pdsl/2\0\x05hello"[..]);
        let err = codec(true).decode(&mut hello).unwrap_err();
        assert!(err.to_string().contains("handshake = fingerprint"), "{err}");

        let mut frame = BytesMut::from(&[0, 0, 0, 1, 7][..]);
        assert_eq!(codec(true).decode(&mut frame).unwrap(), Some(7));
        // without the check, the hello is a length header like any other
        let mut hello = BytesMut::from(&b"p2pdsl/2"[..]);
        let err = codec(false).decode(&mut hello).unwrap_err();
        assert!(err.to_string().contains("frame of"), "{err}");
    }

    #[test]
    fn a_partial_prefix_waits_and_a_difference_ends_the_check() {
        let mut codec = codec(true);
        let mut src = BytesMut::from(&b"p2p"[..]);
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        assert!(codec.check_hello);
        src.extend_from_slice(b"x");
        assert!(codec.decode(&mut src).is_err(), "a frame header past 1 MiB");
        assert!(!codec.check_hello);
    }

    #[test]
    fn the_prefix_is_the_handshakes() {
        assert!(super::super::handshake::MAGIC.starts_with(HELLO_PREFIX));
    }
}
