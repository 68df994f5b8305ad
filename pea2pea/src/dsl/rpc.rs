//! Typed calls: correlation, the wait for the answer, and the responder's side.

use std::{io, net::SocketAddr, time::Duration};

use bytes::Bytes;
// tokio's clock, not std's: deadlines follow the runtime's time, which a simulation drives
use tokio::{sync::oneshot, time::Instant};
use tracing::{debug, warn};

use super::{RpcAnswer, ext, frame::Frame, identity, refusal::refuse_and_close, send::confirmed};
use crate::{ConnectionId, ConnectionInfo, Message, Pea2Pea, protocols::Writing};

/// Removes a call from the table when the call ends in any way, cancellation included.
struct Pending {
    ext: std::sync::Arc<ext::NodeExt>,
    addr: SocketAddr,
    id: u64,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.ext.take(self.addr, self.id);
    }
}

/// Sends an encoded request (`body`, for `method`) to `addr` and waits (for at most
/// `timeout_ms`) for the peer's encoded response; the wait ends early when that connection
/// closes. `request` names the request's type in errors.
pub(crate) async fn call_bytes<W, M>(
    this: &W,
    addr: SocketAddr,
    (method, body, request): (u64, Bytes, &'static str),
    timeout_ms: u64,
    max_calls: usize,
) -> io::Result<(Bytes, ConnectionId)>
where
    W: Writing<Message = Frame<M>>,
{
    let timeout = Duration::from_millis(timeout_ms);
    let deadline = Instant::now() + timeout;
    let node = this.node();
    let conn = node.connection_info(addr).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotConnected,
            format!("not connected to {addr}"),
        )
    })?;
    if identity::serves(node, addr, method) == Some(false) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "{addr} does not serve `rpc {}`: its handshake listed the rpcs it serves",
                short_name(request)
            ),
        ));
    }
    // looked up before the request is queued: a reconnection meanwhile fails this call
    // rather than leaving it waiting on an answer that cannot come
    let closed = node.connection_closed(addr, conn.id());
    let ext = ext::of(node);
    let (id, answer) = ext.register(addr, max_calls)?;
    let _pending = Pending { ext, addr, id };
    let timed_out = || {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{addr} did not answer a `{request}` within {timeout:?}"),
        )
    };
    let frame = Frame::Request { id, method, body };
    match tokio::time::timeout_at(deadline, this.unicast_when_ready(addr, frame)).await {
        Ok(queued) => drop(queued?),
        Err(_) => return Err(timed_out()),
    }

    let bytes = tokio::select! {
        // an answer that arrived wins over the connection's end and the deadline; and no
        // random choice, so that a simulated run depends on its seed alone
        biased;
        received = answer => match received {
            Ok(result) => result?,
            Err(_) => return Err(aborted(&conn)),
        },
        () = closed => return Err(aborted(&conn)),
        () = tokio::time::sleep_until(deadline) => return Err(timed_out()),
    };
    Ok((bytes, conn.id()))
}

/// A type's name without its leading path: `Cube` for `app::v2::Cube`, `Page<u32>` for
/// `app::Page<u32>` (as an `rpc` line's request is named).
fn short_name(type_name: &str) -> &str {
    let head = type_name.find('<').unwrap_or(type_name.len());
    let start = type_name[..head].rfind("::").map_or(0, |i| i + 2);
    &type_name[start..]
}

/// Decodes the answer of `addr` to a `request`. An answer that does not decode is a broken
/// peer: the call fails with `InvalidData`, and the connection (`conn`) is refused and closed,
/// in a task of its own, as a frame that does not decode is.
pub(crate) fn decode_answer<W, M, T>(
    this: &W,
    (addr, conn): (SocketAddr, ConnectionId),
    answer: Bytes,
    request: &'static str,
) -> io::Result<T>
where
    W: Writing<Message = Frame<M>>,
    T: Message,
{
    T::from_bytes(answer).map_err(|e| {
        let what = format!(
            "invalid response `{}` to a `{request}`: {e}",
            std::any::type_name::<T>()
        );
        warn!(parent: this.node().span(), "{addr} sent an {what}; disconnecting");
        let refusal = Frame::Refused(what.clone());
        spawn_refusal(this.clone(), (addr, conn), what.clone(), refusal);
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the answer of {addr} is an {what}"),
        )
    })
}

/// Runs [`refuse_and_close`] in a task of its own. Generic over `W` alone: there `W::Message`
/// is known to be `Send`, which `Frame<M>` is not for any `M`.
fn spawn_refusal<W: Writing>(
    this: W,
    conn: (SocketAddr, ConnectionId),
    what: String,
    refusal: W::Message,
) {
    tokio::spawn(async move { refuse_and_close(&this, conn, &what, refusal).await });
}

/// Logs and counts a failed rpc handler; returns the reason its caller gets.
#[cold]
fn rpc_failed(node: &crate::Node, addr: SocketAddr, id: u64, reason: String) -> String {
    ext::of(node)
        .handler_errors
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    warn!(parent: node.span(), "the handler of call {id} from {addr} failed: {reason}");
    format!("its handler failed: {reason}")
}

/// The error of a call whose connection closed first: with the reason it closed, if known.
fn aborted(conn: &ConnectionInfo) -> io::Error {
    let addr = conn.addr();
    let why = conn
        .close_reason()
        .map(|reason| format!(" ({reason})"))
        .unwrap_or_default();
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("the connection to {addr} closed before it answered{why}"),
    )
}

/// Hands a response (or the peer's failure) to the call waiting for it.
pub fn complete<P: Pea2Pea>(this: &P, addr: SocketAddr, id: u64, result: Result<Bytes, String>) {
    let waiting = ext::existing(this.node()).and_then(|ext| ext.take(addr, id));
    match waiting {
        Some(tx) => {
            let _ =
                tx.send(result.map_err(|reason| {
                    io::Error::other(format!("{addr} could not answer: {reason}"))
                }));
        }
        None => {
            debug!(parent: this.node().span(), "{addr} answered call {id}, which is no longer waiting")
        }
    }
}

/// Decodes a request's body. A body that does not decode is a broken peer: it gets a failure
/// answer and a refusal, the connection is closed, and the node counts it (in
/// `dsl::invalid_requests` and in its stats' decode failures).
pub async fn decode_request<W, M, R>(this: &W, addr: SocketAddr, id: u64, body: Bytes) -> Option<R>
where
    W: Writing<Message = Frame<M>>,
    R: Message,
{
    match R::from_bytes(body) {
        Ok(request) => Some(request),
        Err(e) => {
            let what = format!("invalid request `{}`: {e}", std::any::type_name::<R>());
            warn!(parent: this.node().span(), "{addr} sent an {what}; disconnecting");
            ext::of(this.node()).count_invalid_request();
            let conn = this.node().connection_info(addr).map(|info| info.id());
            // the failure answer must be written before the teardown stops the writer: the
            // call learns why it failed, the connection why it closed (the refusal)
            let answer = Frame::Response {
                id,
                result: Err(format!("invalid request: {e}")),
            };
            if let Ok(written) = answer_within(this, addr, answer, 1_000).await {
                let _ = tokio::time::timeout(Duration::from_secs(1), written).await;
            }
            if let Some(conn) = conn {
                let refusal = Frame::Refused(what.clone());
                refuse_and_close(this, (addr, conn), &what, refusal).await;
            }
            None
        }
    }
}

/// Sends the handler's answer to the peer's call `id`: its response, or, if it failed, why
/// (logged and counted; the connection stays).
pub async fn respond<W, M, T, A>(this: &W, addr: SocketAddr, id: u64, answer: A, timeout_ms: u64)
where
    W: Writing<Message = Frame<M>>,
    T: Message,
    A: RpcAnswer<T>,
{
    let result = match answer.into_answer() {
        Ok(response) => Ok(response.to_bytes()),
        Err(reason) => Err(rpc_failed(this.node(), addr, id, reason)),
    };
    let answer = Frame::Response { id, result };
    if let Err(e) = answer_within(this, addr, answer, timeout_ms).await {
        debug!(parent: this.node().span(), "couldn't answer call {id} from {addr}: {e}");
    }
}

/// Answers a call for which this node has no handler.
pub async fn unknown_method<W, M>(this: &W, addr: SocketAddr, id: u64, method: u64, timeout_ms: u64)
where
    W: Writing<Message = Frame<M>>,
{
    debug!(parent: this.node().span(), "{addr} called unknown method {method:#018x}");
    let reason = format!(
        "it has no handler for this request (method {method:#018x}); the two nodes declare different rpcs"
    );
    let answer = Frame::Response {
        id,
        result: Err(reason),
    };
    let _ = answer_within(this, addr, answer, timeout_ms).await;
}

/// Queues an answer, waiting for room for at most `timeout_ms` (the caller gives up on its
/// call after that anyway); returns its write confirmation, resolved to an error.
pub(crate) async fn answer_within<W, M>(
    this: &W,
    addr: SocketAddr,
    answer: Frame<M>,
    timeout_ms: u64,
) -> io::Result<impl Future<Output = io::Result<()>>>
where
    W: Writing<Message = Frame<M>>,
{
    let timeout = Duration::from_millis(timeout_ms);
    let written: oneshot::Receiver<_> =
        match tokio::time::timeout(timeout, this.unicast_when_ready(addr, answer)).await {
            Ok(queued) => queued?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the outbound queue for {addr} stayed full for {timeout:?}"),
                ));
            }
        };
    Ok(confirmed(addr, written))
}
