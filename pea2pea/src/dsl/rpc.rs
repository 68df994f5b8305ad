//! Typed calls: correlation, the wait for the answer, and the responder's side.

use std::{io, net::SocketAddr, time::Duration};

use bytes::Bytes;
// tokio's clock, not std's: deadlines follow the runtime's time, which a simulation drives
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Rpc, ext, frame::Frame, send::enqueue_waiting};
use crate::{DisconnectOrigin, Message, Pea2Pea, protocols::Writing};

/// How often a waiting call checks that its peer is still connected, in case the connection
/// went away between the call's start and the teardown that fails the calls in flight.
const LIVENESS_CHECK: Duration = Duration::from_millis(250);

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

/// Sends `request` to `addr` and waits (for at most `timeout_ms`) for the peer's response.
pub async fn call<W, M, R>(
    this: &W,
    addr: SocketAddr,
    request: R,
    timeout_ms: u64,
    max_calls: usize,
) -> io::Result<R::Response>
where
    W: Writing<Message = Frame<M>>,
    R: Rpc<W>,
{
    let timeout = Duration::from_millis(timeout_ms);
    let deadline = Instant::now() + timeout;
    let ext = ext::of(this.node());
    let (id, answer) = ext.register(addr, max_calls)?;
    let _pending = Pending { ext, addr, id };
    let body = request.to_bytes();
    enqueue_waiting(this, addr, deadline, || Frame::Request {
        id,
        method: R::METHOD,
        body: body.clone(),
    })
    .await?;

    let mut answer = std::pin::pin!(answer);
    let bytes = loop {
        let check = (Instant::now() + LIVENESS_CHECK).min(deadline);
        tokio::select! {
            // an answer that arrived wins over the deadline; and no random choice, so that a
            // simulated run depends on its seed alone
            biased;
            received = &mut answer => match received {
                Ok(result) => break result?,
                Err(_) => return Err(aborted(addr)),
            },
            _ = tokio::time::sleep_until(check) => {
                if Instant::now() >= deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{addr} did not answer a `{}` within {timeout:?}", std::any::type_name::<R>()),
                    ));
                }
                if !this.node().is_connected(addr) {
                    return Err(aborted(addr));
                }
            }
        }
    };
    R::Response::from_bytes(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the answer of {addr} to a `{}` is not a valid `{}`: {e}",
                std::any::type_name::<R>(),
                std::any::type_name::<R::Response>()
            ),
        )
    })
}

fn aborted(addr: SocketAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("the connection to {addr} closed before it answered"),
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

/// Fails every call to `addr` still waiting; the connection is going away.
pub fn peer_gone<P: Pea2Pea>(this: &P, addr: SocketAddr) {
    if let Some(ext) = ext::existing(this.node()) {
        ext.fail_all(addr);
    }
}

/// Decodes a request's body. A body that does not decode is a broken peer: it gets a failure
/// answer, the connection is closed, and the node counts it.
pub async fn decode_request<W, M, R>(this: &W, addr: SocketAddr, id: u64, body: Bytes) -> Option<R>
where
    W: Writing<Message = Frame<M>>,
    R: Message,
{
    match R::from_bytes(body) {
        Ok(request) => Some(request),
        Err(e) => {
            warn!(parent: this.node().span(), "{addr} sent an invalid `{}`: {e}; disconnecting", std::any::type_name::<R>());
            ext::of(this.node()).count_invalid_request();
            // the failure answer must be written before the teardown stops the writer
            fail_and_confirm(this, addr, id, format!("invalid request: {e}"), 1_000).await;
            let node = this.node().clone();
            // not awaited here: the teardown ends this very reader task
            tokio::spawn(async move {
                node.disconnect_with(addr, DisconnectOrigin::Reading, None)
                    .await
            });
            None
        }
    }
}

/// Sends the handler's response to the peer's call `id`.
pub async fn respond<W, M, T>(this: &W, addr: SocketAddr, id: u64, response: &T, timeout_ms: u64)
where
    W: Writing<Message = Frame<M>>,
    T: Message,
{
    let body = response.to_bytes();
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let sent = enqueue_waiting(this, addr, deadline, || Frame::Response {
        id,
        result: Ok(body.clone()),
    })
    .await;
    if let Err(e) = sent {
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
    fail(this, addr, id, reason, timeout_ms).await;
}

/// Like [`fail`], but waits (within the timeout) until the answer is written to the socket.
async fn fail_and_confirm<W, M>(
    this: &W,
    addr: SocketAddr,
    id: u64,
    reason: String,
    timeout_ms: u64,
) where
    W: Writing<Message = Frame<M>>,
{
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut pause = Duration::from_micros(100);
    let confirmation = loop {
        let answer = Frame::Response {
            id,
            result: Err(reason.clone()),
        };
        match this.unicast(addr, answer) {
            Err(e) if e.kind() == io::ErrorKind::QuotaExceeded && Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Ok(confirmation) => break confirmation,
            Err(_) => return,
        }
    };
    let _ = tokio::time::timeout(
        deadline.saturating_duration_since(Instant::now()),
        confirmation,
    )
    .await;
}

async fn fail<W, M>(this: &W, addr: SocketAddr, id: u64, reason: String, timeout_ms: u64)
where
    W: Writing<Message = Frame<M>>,
{
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let _ = enqueue_waiting(this, addr, deadline, || Frame::Response {
        id,
        result: Err(reason.clone()),
    })
    .await;
}
