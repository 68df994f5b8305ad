//! Small task utilities: boxed futures, handles that abort on drop, and the guard that turns
//! the end of a connection's task into a disconnect.

use std::{
    future::{Future, poll_fn},
    net::SocketAddr,
    panic::AssertUnwindSafe,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::Poll,
};

use tokio::task::JoinHandle;
use tracing::error;

use crate::{ConnectionInfo, DisconnectOrigin, Node};

/// A type-erased future the engine can spawn.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A panic in user code, caught before it could unwind into the engine.
pub(crate) struct Panicked;

/// Runs a boxed future, turning a panic in any of its polls into [`Panicked`], so that user
/// code can run inline (no task of its own) without a panic escaping into the caller.
pub(crate) async fn catch_unwind<T>(mut future: BoxFuture<T>) -> Result<T, Panicked> {
    poll_fn(
        |cx| match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(Panicked)),
        },
    )
    .await
}

/// Aborts its task when dropped, so that a cancelled caller never leaves work running detached.
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Spawns on the current runtime if there still is one; used from `Drop`, where the runtime may
/// already be gone.
pub(crate) fn spawn_if_running<F>(future: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(future);
    }
}

/// Lives inside a connection's reader, writer or `on_connect` task. When the task ends (its
/// work finished or failed, or it panicked) the guard starts a disconnect of *that* connection
/// (scoped by its id) with the task's origin, unless the connection is already being torn down.
pub(crate) struct DisconnectGuard {
    pub(crate) node: Node,
    pub(crate) addr: SocketAddr,
    pub(crate) conn_id: u64,
    /// The connection's description, where a panic records itself as the close reason.
    pub(crate) info: ConnectionInfo,
    pub(crate) origin: DisconnectOrigin,
    pub(crate) claimed: Arc<AtomicBool>,
    /// `on_connect` ending normally is no reason to disconnect; only its panic is.
    pub(crate) only_on_panic: bool,
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        if panicking {
            error!(
                parent: self.node.span(),
                "user code panicked in a {:?} task of {}; disconnecting", self.origin, self.addr
            );
            let reason = match self.origin {
                DisconnectOrigin::OnConnectAbort => "on_connect panicked",
                DisconnectOrigin::Reading => "the codec or process_message panicked",
                _ => "the connection's task panicked",
            };
            self.info.record_close_reason(reason);
        } else if self.only_on_panic {
            return;
        }
        if self.claimed.load(Ordering::Acquire) {
            return;
        }
        let (node, addr, id, origin) = (self.node.clone(), self.addr, self.conn_id, self.origin);
        spawn_if_running(async move {
            node.disconnect_with(addr, origin, Some(id)).await;
        });
    }
}
