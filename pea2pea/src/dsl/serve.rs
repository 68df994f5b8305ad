//! Serving the peers' calls side by side: each request runs its handler in a task of its own,
//! at most `max_calls` per peer at a time; beyond that the caller gets a failure answer.

use std::{future::Future, net::SocketAddr, sync::atomic::Ordering};

use tracing::debug;

use super::{ext, frame::Frame, ordered::disconnect_after_panic, rpc::answer_within};
use crate::{ConnectionId, Node, protocols::Writing};

/// Starts serving the peer's call `id` from `addr`: `handler` makes the future that decodes
/// the request, runs the handler and answers. The reader does not wait for it, so it goes on
/// reading (and routing answers to this node's calls) while handlers run.
pub async fn serve<W, M, F, Fut>(
    this: &W,
    addr: SocketAddr,
    id: u64,
    max_calls: usize,
    timeout_ms: u64,
    handler: F,
) where
    W: Writing<Message = Frame<M>>,
    F: FnOnce(W) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let node = this.node();
    // the reader runs only while its connection is registered
    let Some(conn) = node.connection_info(addr).map(|info| info.id()) else {
        return;
    };
    let ext = ext::of(node);
    let Some(slot) = ext.start_serving(addr, max_calls) else {
        ext.requests_refused.fetch_add(1, Ordering::Relaxed);
        debug!(parent: node.span(), "refused call {id} from {addr}: {max_calls} of its calls are being served");
        let reason = format!(
            "it is busy: {max_calls} calls from this node are being served (its max_calls)"
        );
        let answer = Frame::Response {
            id,
            result: Err(reason),
        };
        // in the reader: a peer that floods calls while not reading its answers is slowed down
        let _ = answer_within(this, addr, answer, timeout_ms).await;
        return;
    };
    let task = handler(this.clone());
    let guard = PanicGuard {
        node: node.clone(),
        addr,
        id: conn,
    };
    tokio::spawn(async move {
        let _guard = guard;
        let _slot = slot;
        task.await;
    });
}

/// A handler's panic disconnects its peer, as a panic in the reader would.
struct PanicGuard {
    node: Node,
    addr: SocketAddr,
    id: ConnectionId,
}

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            disconnect_after_panic(&self.node, self.addr, self.id);
        }
    }
}
