use std::{future::Future, net::SocketAddr};

use tracing::Instrument;

use super::{ConnCtx, OnConnectSlot, enable};
use crate::{DisconnectOrigin, Pea2Pea, node::registry::Entry};

#[cfg(doc)]
use crate::Node;

/// Runs [`on_connect`](OnConnect::on_connect) for every connection once it is fully set up.
///
/// The hook starts in a task of its own right after registration: [`Node::connect`] does not
/// wait for it, the connection is usable inside it (send, receive, disconnect), and messages
/// may be processed while it runs. If it panics, the connection is dropped with
/// [`DisconnectOrigin::OnConnectAbort`].
pub trait OnConnect: Pea2Pea
where
    Self: Clone + Send + Sync + 'static,
{
    /// Whether a disconnect (or shutdown) may abort a hook still running. With `false`, every
    /// hook that started runs to completion, and each `on_connect` is paired with exactly one
    /// `on_disconnect`.
    const ABORTABLE: bool = true;

    /// Makes the node run [`on_connect`](OnConnect::on_connect) for every new connection.
    ///
    /// # Panics
    ///
    /// If it is already enabled. Once shutdown has begun, enabling does nothing.
    fn enable_on_connect(&self) -> impl Future<Output = ()> {
        let this = self.clone();
        async move {
            let node = this.node().clone();
            enable(
                &node,
                "OnConnect",
                |p| &p.on_connect,
                || OnConnectSlot {
                    abortable: Self::ABORTABLE,
                    run: Box::new(move |addr| {
                        let this = this.clone();
                        Box::pin(async move { this.on_connect(addr).await })
                    }),
                },
            );
        }
    }

    /// What to do when a connection with `addr` is established.
    fn on_connect(&self, addr: SocketAddr) -> impl Future<Output = ()> + Send;
}

/// Starts the hook for a connection that was just registered.
pub(crate) fn schedule(hook: &OnConnectSlot, entry: &Entry, ctx: ConnCtx) {
    let guard = ctx.guard(DisconnectOrigin::OnConnectAbort, true);
    let run = (hook.run)(ctx.addr());
    let span = ctx.info.span().clone();
    let task = tokio::spawn(
        async move {
            let _guard = guard;
            run.await;
        }
        .instrument(span),
    );
    if hook.abortable {
        entry.attach(task.abort_handle());
    }
}
