//! yamux frames (protocol id `/yamux/1.0.0`) and their codec, for `Reading` and `Writing`.
//!
//! A frame is a 12-byte header — version (0), type, flags, stream id, length, big-endian —
//! and, for a data frame only, `length` bytes of body. For the other types the length field
//! is a value: a window update's credit, a ping's opaque number, a go-away's error code.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The protocol id negotiated for yamux with multistream-select.
pub const PROTOCOL: &str = "/yamux/1.0.0";
/// The header's size.
pub const HEADER_LEN: usize = 12;
/// Every stream's receive window at its start (the spec's 256 KiB); we never grant more, so
/// no valid data frame is larger.
pub const WINDOW: u32 = 256 * 1024;

/// Opens a stream (on its first frame).
pub const SYN: u16 = 0x1;
/// Accepts a stream the peer opened; answers a ping.
pub const ACK: u16 = 0x2;
/// Half-closes a stream: the sender writes no more.
pub const FIN: u16 = 0x4;
/// Resets a stream at once.
pub const RST: u16 = 0x8;

/// A go-away's code for a normal end of the session.
pub const GO_AWAY_NORMAL: u32 = 0;
/// A go-away's code for a protocol error.
pub const GO_AWAY_PROTOCOL_ERROR: u32 = 1;

/// The four frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Stream data (the only type with a body).
    Data = 0,
    /// More credit for a stream's sender.
    WindowUpdate = 1,
    /// A session-level ping, answered with `ACK` and the same value.
    Ping = 2,
    /// The end of the session, with a code.
    GoAway = 3,
}

/// One yamux frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What the frame is.
    pub kind: Kind,
    /// `SYN`, `ACK`, `FIN`, `RST` (unknown bits are kept and ignored).
    pub flags: u16,
    /// The stream; 0 for the session itself (ping, go-away).
    pub stream: u32,
    /// The length field: the body's length for data, else the frame's value.
    pub value: u32,
    /// A data frame's bytes; empty for the other types.
    pub body: Bytes,
}

impl Frame {
    /// A data frame (the length field is the body's length).
    pub fn data(stream: u32, flags: u16, body: Bytes) -> Self {
        let value = u32::try_from(body.len()).expect("a data frame is smaller than its window");
        Self {
            kind: Kind::Data,
            flags,
            stream,
            value,
            body,
        }
    }

    /// A window update granting `credit` more bytes (and carrying `flags`).
    pub fn window_update(stream: u32, flags: u16, credit: u32) -> Self {
        Self::bare(Kind::WindowUpdate, flags, stream, credit)
    }

    /// A session-level ping.
    pub fn ping(flags: u16, opaque: u32) -> Self {
        Self::bare(Kind::Ping, flags, 0, opaque)
    }

    /// The end of the session.
    pub fn go_away(code: u32) -> Self {
        Self::bare(Kind::GoAway, 0, 0, code)
    }

    fn bare(kind: Kind, flags: u16, stream: u32, value: u32) -> Self {
        Self {
            kind,
            flags,
            stream,
            value,
            body: Bytes::new(),
        }
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }
}

/// Decodes and encodes frames. A header that cannot be a yamux frame (another version, an
/// unknown type, a data frame larger than any window we grant) is an `InvalidData` error, which
/// closes the connection; each one is also counted in `rejected`.
pub struct FrameCodec {
    rejected: Arc<AtomicU64>,
}

impl FrameCodec {
    /// A codec that counts the malformed frames it meets in `rejected`.
    pub fn new(rejected: Arc<AtomicU64>) -> Self {
        Self { rejected }
    }

    fn reject(&self, what: String) -> io::Error {
        self.rejected.fetch_add(1, Relaxed);
        io::Error::new(io::ErrorKind::InvalidData, format!("yamux: {what}"))
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Frame>> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let mut header = &src[..HEADER_LEN];
        let version = header.get_u8();
        let kind = match header.get_u8() {
            0 => Kind::Data,
            1 => Kind::WindowUpdate,
            2 => Kind::Ping,
            3 => Kind::GoAway,
            other => return Err(self.reject(format!("unknown frame type {other}"))),
        };
        if version != 0 {
            return Err(self.reject(format!("version {version} (only 0 exists)")));
        }
        let (flags, stream, value) = (header.get_u16(), header.get_u32(), header.get_u32());
        let body_len = if kind == Kind::Data {
            value as usize
        } else {
            0
        };
        if body_len > WINDOW as usize {
            return Err(self.reject(format!(
                "a data frame of {body_len} bytes, larger than any window we grant ({WINDOW})"
            )));
        }
        if src.len() < HEADER_LEN + body_len {
            src.reserve(HEADER_LEN + body_len - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let body = src.split_to(body_len).freeze();
        Ok(Some(Frame {
            kind,
            flags,
            stream,
            value,
            body,
        }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> io::Result<()> {
        dst.reserve(HEADER_LEN + frame.body.len());
        dst.put_u8(0);
        dst.put_u8(frame.kind as u8);
        dst.put_u16(frame.flags);
        dst.put_u32(frame.stream);
        dst.put_u32(frame.value);
        dst.put_slice(&frame.body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> FrameCodec {
        FrameCodec::new(Default::default())
    }

    #[test]
    fn frames_round_trip_and_a_body_is_awaited_whole() {
        let frames = [
            Frame::data(3, SYN, Bytes::from_static(b"hello")),
            Frame::window_update(2, ACK, 4096),
            Frame::ping(SYN, 77),
            Frame::go_away(GO_AWAY_NORMAL),
        ];
        let mut buf = BytesMut::new();
        for frame in &frames {
            codec().encode(frame.clone(), &mut buf).unwrap();
        }
        // the data frame: 12 header bytes, then 5 of body
        assert_eq!(&buf[..12], &[0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 5]);
        let mut partial = BytesMut::from(&buf[..16]);
        assert_eq!(codec().decode(&mut partial).unwrap(), None);
        let mut decoded = Vec::new();
        while let Some(frame) = codec().decode(&mut buf).unwrap() {
            decoded.push(frame);
        }
        assert_eq!(decoded, frames);
    }

    #[test]
    fn impossible_headers_are_counted_errors() {
        let rejected = Arc::new(AtomicU64::new(0));
        let mut codec = FrameCodec::new(rejected.clone());
        let bad_version = [1u8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let bad_type = [0u8, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let too_long = [0u8, 0, 0, 0, 0, 0, 0, 1, 0, 0x10, 0, 0]; // 1 MiB of data
        for header in [bad_version, bad_type, too_long] {
            let mut buf = BytesMut::from(&header[..]);
            let error = codec.decode(&mut buf).unwrap_err();
            assert!(error.to_string().starts_with("yamux: "), "{error}");
        }
        assert_eq!(rejected.load(Relaxed), 3);
    }
}
