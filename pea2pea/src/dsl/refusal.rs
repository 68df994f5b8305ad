//! Decode failures in a protocol with `rpc` lines, whose envelope can say so: the node that
//! cannot decode a peer's frame sends it a refused frame naming what failed, then closes the
//! connection; the peer records "the peer refused a message: ..." as its close reason, counts
//! it and closes too. A refusal is never answered, so two nodes cannot refuse each other
//! forever.
//!
//! A message's body is decoded by the reader's codec: the engine counts that failure and
//! records it, and its `Reading::on_decode_error` (generated) sends the refusal. A request's
//! body is decoded by its handler and a response's by the call that waits for it: those count,
//! record and refuse here.

use std::{io, net::SocketAddr, sync::atomic::Ordering, time::Duration};

use tracing::{debug, warn};

use super::{ext, frame::Frame, send::confirmed};
use crate::{ConnectionId, DecodeError, Pea2Pea, protocols::Writing};

/// The generated `Reading::on_decode_error`: refuses a frame that was whole but did not decode.
/// Other codec errors (a length past `max_frame`) are not answered: those bytes may be
/// something else than a DSL peer's frames, such as another handshake's preamble.
pub async fn refuse_frame<W, M>(this: &W, addr: SocketAddr, error: &io::Error)
where
    W: Writing<Message = Frame<M>>,
{
    let decode_error = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<DecodeError>());
    if let Some(e) = decode_error {
        send_refusal(this, addr, Frame::Refused(e.to_string())).await;
    }
}

/// A request's or a response's body from `addr` did not decode (`what` says which, and the
/// decode error): counts it (in the node's and the connection's stats), records it as the
/// close reason, tells the peer, and disconnects that connection (`conn` only). `refusal` is
/// the refused frame to send, `what` in a [`Frame::Refused`], made by the caller: only the
/// caller knows that `W::Message` is a `Frame`, and this future, generic over `W` alone, can
/// then be spawned.
pub(crate) async fn refuse_and_close<W: Writing>(
    this: &W,
    (addr, conn): (SocketAddr, ConnectionId),
    what: &str,
    refusal: W::Message,
) {
    let node = this.node();
    node.stats().register_decode_failure();
    let Some(info) = node.connection_info(addr).filter(|info| info.id() == conn) else {
        return;
    };
    info.stats().register_decode_failure();
    info.record_close_reason(format!("the peer sent invalid data: {what}"));
    send_refusal(this, addr, refusal).await;
    let node = node.clone();
    // not awaited: the caller may be the task that the teardown ends
    tokio::spawn(async move { node.disconnect_connection(addr, conn).await });
}

/// Writes a refused frame to `addr`, waiting for room and for the write for at most the
/// protocol's write timeout in all: the connection closes right after.
async fn send_refusal<W: Writing>(this: &W, addr: SocketAddr, refusal: W::Message) {
    let sent = async { confirmed(addr, this.unicast_when_ready(addr, refusal).await?).await };
    let outcome = tokio::time::timeout(Duration::from_millis(W::TIMEOUT_MS), sent).await;
    if let Ok(Err(e)) | Err(e) = outcome.map_err(io::Error::from) {
        debug!(parent: this.node().span(), "couldn't tell {addr} that its frame was refused: {e}");
    }
}

/// The generated reader's handling of a refused frame from `addr`: logs it (naming the node),
/// counts it in [`refused_by_peer`](crate::dsl::refused_by_peer), records "the peer refused a
/// message: ..." as the close reason and disconnects. Never answered. Nothing more is read from
/// the connection: the reader waits here until the teardown ends it.
pub async fn refused_by_peer<P: Pea2Pea>(this: &P, addr: SocketAddr, reason: String) {
    let node = this.node();
    ext::of(node)
        .refused_by_peer
        .fetch_add(1, Ordering::Relaxed);
    warn!(parent: node.span(), "{addr} refused a message of this node: {reason}; disconnecting");
    let Some(info) = node.connection_info(addr) else {
        return;
    };
    info.record_close_reason(format!("the peer refused a message: {reason}"));
    let (id, closed) = (info.id(), node.connection_closed(addr, info.id()));
    let node = node.clone();
    tokio::spawn(async move { node.disconnect_connection(addr, id).await });
    closed.await;
}
