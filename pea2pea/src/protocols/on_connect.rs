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
///
/// ```
/// use std::net::SocketAddr;
///
/// use pea2pea::{Config, Node, Pea2Pea, protocols::OnConnect};
/// use tokio::sync::mpsc;
///
/// #[derive(Clone)]
/// struct Peer { node: Node, connected: mpsc::UnboundedSender<SocketAddr> }
///
/// impl Pea2Pea for Peer {
///     fn node(&self) -> &Node { &self.node }
/// }
///
/// impl OnConnect for Peer {
///     async fn on_connect(&self, addr: SocketAddr) {
///         let _ = self.connected.send(addr); // e.g. greet the peer, or start a sync with it
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (tx, mut connected) = mpsc::unbounded_channel();
/// let peer = Peer { node: Node::new(Config::loopback()), connected: tx };
/// peer.enable_on_connect().await;
/// # let other = Node::new(Config::loopback());
/// # let other_addr = other.toggle_listener().await?.unwrap();
/// peer.node().connect(other_addr).await?; // returns without waiting for the hook
/// assert_eq!(connected.recv().await, Some(other_addr));
/// # peer.node().shut_down().await;
/// # other.shut_down().await;
/// # Ok(())
/// # }
/// ```
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
