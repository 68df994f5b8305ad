//! The envelope a protocol with `rpc` declarations puts around every frame's body, so that
//! requests and responses travel beside ordinary messages with a correlation id.
//!
//! Wire format of a frame's body (the length header is the codec's):
//!
//! | kind | then |
//! | --- | --- |
//! | `0` message | the message |
//! | `1` request | varint call id, 8-byte little-endian method id, the request |
//! | `2` response | varint call id, the response |
//! | `3` failure | varint call id, a UTF-8 reason (the rest of the frame) |
//! | `4` refused | a UTF-8 reason (the rest of the frame, at most [`MAX_REFUSAL`] bytes) |
//!
//! A node sends `refused` when it cannot decode a frame of its peer's, then closes the
//! connection; the peer records the reason and closes too. A refusal is never answered.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{
    DecodeError, Message,
    codec::{Encoded, Outgoing},
    message::{DecodeErrorKind, Reader, put_varint_u64, varint_len_u64},
};

/// The most bytes the envelope adds to a message, request or response: the kind byte, a call
/// id (a varint, at most 10 bytes) and a method id (8 bytes).
pub const ENVELOPE_MAX: usize = 1 + 10 + 8;

/// The frame bound for a protocol with `rpc` lines, so that its declared `max_frame` bounds the
/// user's message and not message and envelope together: `max_frame` plus room for the
/// envelope, within what a `length_width`-byte header can describe.
pub const fn frame_bound(max_frame: usize, length_width: usize) -> usize {
    let header_max = if length_width >= size_of::<usize>() {
        usize::MAX
    } else {
        (1 << (8 * length_width)) - 1
    };
    let wanted = max_frame.saturating_add(ENVELOPE_MAX);
    if wanted < header_max {
        wanted
    } else {
        header_max
    }
}

const MESSAGE: u8 = 0;
const REQUEST: u8 = 1;
const RESPONSE: u8 = 2;
const FAILURE: u8 = 3;
const REFUSED: u8 = 4;

/// The longest reason a refused frame carries, in bytes: a longer one is cut (at a character
/// boundary) when sent, and when received.
///
/// ```
/// use pea2pea::dsl::MAX_REFUSAL;
///
/// // a reason kept from a peer's refusal (a close reason, a log line) is never longer
/// let from_a_peer = "x".repeat(10_000);
/// let kept = &from_a_peer[..from_a_peer.len().min(MAX_REFUSAL)];
/// assert_eq!(kept.len(), 512);
/// ```
pub const MAX_REFUSAL: usize = 512;

/// `reason` cut to [`MAX_REFUSAL`] bytes, at a character boundary.
fn cut(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_REFUSAL);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// A received reason, cut to [`MAX_REFUSAL`] bytes, its control characters (a line break in
/// a log line, a terminal escape) replaced by spaces: it came from the network and goes into
/// logs.
fn received_refusal(reason: &[u8]) -> String {
    // cut before and after: invalid bytes become 3-byte replacement characters
    let reason = &reason[..reason.len().min(MAX_REFUSAL)];
    cut(&String::from_utf8_lossy(reason))
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A decoded frame of a protocol with `rpc` declarations.
#[derive(Debug)]
pub enum Inbound<M> {
    /// An ordinary message.
    Message(M),
    /// A call from the peer; the body is decoded by the handler of `method`.
    Request {
        /// The peer's correlation id, echoed in the response.
        id: u64,
        /// Which rpc this is: [`Rpc::METHOD`](super::Rpc::METHOD).
        method: u64,
        /// The encoded request.
        body: Bytes,
    },
    /// The answer to one of this node's calls: the encoded response, or the peer's reason for
    /// not answering.
    Response {
        /// The correlation id of the call.
        id: u64,
        /// The encoded response or the failure's text.
        result: Result<Bytes, String>,
    },
    /// The peer could not decode a frame of this node's, and says why (at most
    /// [`MAX_REFUSAL`] bytes); it closes the connection.
    Refused(String),
}

/// A frame to write in a protocol with `rpc` declarations.
#[derive(Debug, Clone)]
pub enum Frame<M> {
    /// An ordinary message, encoded now or earlier.
    Message(Outgoing<M>),
    /// A call to the peer.
    Request {
        /// The correlation id.
        id: u64,
        /// The rpc's method id.
        method: u64,
        /// The encoded request.
        body: Bytes,
    },
    /// An answer to a peer's call.
    Response {
        /// The peer's correlation id.
        id: u64,
        /// The encoded response, or why there is none.
        result: Result<Bytes, String>,
    },
    /// Why this node could not decode a frame of the peer's (cut to [`MAX_REFUSAL`] bytes
    /// when written).
    Refused(String),
}

impl<M> From<M> for Frame<M> {
    fn from(msg: M) -> Self {
        Frame::Message(Outgoing::Message(msg))
    }
}

impl<M> From<Encoded<M>> for Frame<M> {
    fn from(msg: Encoded<M>) -> Self {
        Frame::Message(Outgoing::Encoded(msg))
    }
}

fn result_len(id: u64, result: &Result<Bytes, String>) -> usize {
    1 + varint_len_u64(id)
        + match result {
            Ok(body) => body.len(),
            Err(reason) => reason.len(),
        }
}

fn put_result(dst: &mut BytesMut, id: u64, result: &Result<Bytes, String>) {
    match result {
        Ok(body) => {
            dst.put_u8(RESPONSE);
            put_varint_u64(dst, id);
            dst.extend_from_slice(body);
        }
        Err(reason) => {
            dst.put_u8(FAILURE);
            put_varint_u64(dst, id);
            dst.extend_from_slice(reason.as_bytes());
        }
    }
}

fn refused_len(reason: &str) -> usize {
    1 + cut(reason).len()
}

fn put_refused(dst: &mut BytesMut, reason: &str) {
    dst.put_u8(REFUSED);
    dst.extend_from_slice(cut(reason).as_bytes());
}

fn rest(src: &mut Reader) -> Result<Bytes, DecodeError> {
    src.read_bytes(src.remaining(), "rpc frame")
}

impl<M: Message> Message for Frame<M> {
    const SHAPE: &'static str = "rpc frame";

    fn encoded_len(&self) -> usize {
        match self {
            Frame::Message(Outgoing::Message(msg)) => 1 + msg.encoded_len(),
            Frame::Message(Outgoing::Encoded(msg)) => 1 + msg.as_bytes().len(),
            Frame::Request { id, body, .. } => 1 + varint_len_u64(*id) + 8 + body.len(),
            Frame::Response { id, result } => result_len(*id, result),
            Frame::Refused(reason) => refused_len(reason),
        }
    }

    fn encode(&self, dst: &mut BytesMut) {
        match self {
            Frame::Message(Outgoing::Message(msg)) => {
                dst.put_u8(MESSAGE);
                msg.encode(dst);
            }
            Frame::Message(Outgoing::Encoded(msg)) => {
                dst.put_u8(MESSAGE);
                dst.extend_from_slice(msg.as_bytes());
            }
            Frame::Request { id, method, body } => {
                dst.put_u8(REQUEST);
                put_varint_u64(dst, *id);
                dst.put_u64_le(*method);
                dst.extend_from_slice(body);
            }
            Frame::Response { id, result } => put_result(dst, *id, result),
            Frame::Refused(reason) => put_refused(dst, reason),
        }
    }

    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match Inbound::<M>::decode(src)? {
            Inbound::Message(msg) => Frame::Message(Outgoing::Message(msg)),
            Inbound::Request { id, method, body } => Frame::Request { id, method, body },
            Inbound::Response { id, result } => Frame::Response { id, result },
            Inbound::Refused(reason) => Frame::Refused(reason),
        })
    }
}

impl<M: Message> Message for Inbound<M> {
    const SHAPE: &'static str = "rpc frame";

    fn encoded_len(&self) -> usize {
        match self {
            Inbound::Message(msg) => 1 + msg.encoded_len(),
            Inbound::Request { id, body, .. } => 1 + varint_len_u64(*id) + 8 + body.len(),
            Inbound::Response { id, result } => result_len(*id, result),
            Inbound::Refused(reason) => refused_len(reason),
        }
    }

    fn encode(&self, dst: &mut BytesMut) {
        match self {
            Inbound::Message(msg) => {
                dst.put_u8(MESSAGE);
                msg.encode(dst);
            }
            Inbound::Request { id, method, body } => {
                dst.put_u8(REQUEST);
                put_varint_u64(dst, *id);
                dst.put_u64_le(*method);
                dst.extend_from_slice(body);
            }
            Inbound::Response { id, result } => put_result(dst, *id, result),
            Inbound::Refused(reason) => put_refused(dst, reason),
        }
    }

    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        Ok(match src.read_u8("rpc frame")? {
            MESSAGE => Inbound::Message(M::decode(src)?),
            REQUEST => {
                let id = src.read_varint_u64("rpc call id")?;
                let method = u64::from_le_bytes(src.read_array("rpc method id")?);
                Inbound::Request {
                    id,
                    method,
                    body: rest(src)?,
                }
            }
            RESPONSE => Inbound::Response {
                id: src.read_varint_u64("rpc call id")?,
                result: Ok(rest(src)?),
            },
            FAILURE => {
                let id = src.read_varint_u64("rpc call id")?;
                let reason = rest(src)?;
                let reason = String::from_utf8_lossy(&reason).into_owned();
                Inbound::Response {
                    id,
                    result: Err(reason),
                }
            }
            REFUSED => Inbound::Refused(received_refusal(&rest(src)?)),
            kind => {
                return Err(src.error(DecodeErrorKind::UnknownVariant(kind.into()), "rpc frame"));
            }
        })
    }
}

#[cfg(test)]
mod bound_tests {
    use super::{ENVELOPE_MAX, frame_bound};

    #[test]
    fn the_envelope_gets_room_on_top_of_the_declared_bound() {
        assert_eq!(frame_bound(256, 4), 256 + ENVELOPE_MAX);
        assert_eq!(frame_bound(1024 * 1024, 4), 1024 * 1024 + ENVELOPE_MAX);
    }

    #[test]
    fn the_bound_stays_within_what_the_header_describes() {
        assert_eq!(frame_bound(250, 1), 255);
        assert_eq!(frame_bound(65_535, 2), 65_535);
        assert_eq!(frame_bound(usize::MAX - 1, 8), usize::MAX);
    }
}
