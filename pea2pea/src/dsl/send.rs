//! The typed send paths behind the generated `send` and `send_fast`, and the declaration's
//! codec (`send_to_many` is in `fanout.rs`).

use std::{io, net::SocketAddr};

use tokio::sync::oneshot;

use crate::protocols::Writing;

/// Queues `message` for `addr`, waiting for room in a full queue, then waits until it is
/// written to the socket.
pub async fn send<W: Writing>(this: &W, addr: SocketAddr, message: W::Message) -> io::Result<()> {
    let written = this.unicast_when_ready(addr, message).await?;
    confirmed(addr, written).await
}

/// The outcome of a queued message's write; a closed channel means that the connection was
/// torn down before the message's batch was written.
pub(crate) async fn confirmed(
    addr: SocketAddr,
    written: oneshot::Receiver<io::Result<()>>,
) -> io::Result<()> {
    written.await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("the connection to {addr} closed before the message was written"),
        ))
    })
}

/// Queues `message` for `addr` without waiting.
pub fn send_fast<W: Writing>(this: &W, addr: SocketAddr, message: W::Message) -> io::Result<()> {
    this.unicast_fast(addr, message)
}

/// The length-delimited codec of a declaration; `check_hello` for one without a handshake
/// (see [`DslCodec`](super::codec::DslCodec)).
pub fn length_delimited<In, Out>(
    max_frame: usize,
    length_width: usize,
    little_endian: bool,
    check_hello: bool,
) -> super::codec::DslCodec<In, Out> {
    let codec = crate::codec::MessageCodec::new()
        .max_frame_len(max_frame)
        .length_width(length_width);
    let codec = if little_endian {
        codec.little_endian()
    } else {
        codec
    };
    super::codec::DslCodec::new(codec, check_hello)
}
