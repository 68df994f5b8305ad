use std::{future::Future, net::SocketAddr, time::Duration};

use super::{OnDisconnectSlot, enable};
use crate::{DisconnectOrigin, Pea2Pea};

#[cfg(doc)]
use crate::{Node, protocols::Writing};

/// Runs [`on_disconnect`](OnDisconnect::on_disconnect) exactly once for every connection that
/// was established, whatever ends it.
///
/// The hook runs before the connection is removed, so it can still send a last message with
/// [`Writing::unicast`] (and await it), unless the origin is
/// [`DisconnectOrigin::Writing`]. [`Node::disconnect`] waits for it, for at most
/// [`TIMEOUT_MS`](OnDisconnect::TIMEOUT_MS). It may start before `on_connect` has finished.
///
/// [`Node::shut_down`] waits for hooks for at most 3 seconds in all. A hook of its own
/// teardowns still running then is dropped; one run by a teardown started elsewhere (a
/// [`Node::disconnect`] call, a failed reader or writer) goes on in that caller, up to
/// `TIMEOUT_MS`, but its connection is already removed and closed, so a last message can no
/// longer be sent.
///
/// The connection is still known while the hook runs: [`Node::connection_info`] gives its
/// id, its counters and its [close reason](crate::ConnectionInfo::close_reason), the words
/// behind the origin ("the peer closed the connection", the codec's error, the reason given
/// to [`Node::disconnect_with_reason`], ...).
///
/// ```
/// use std::{net::SocketAddr, sync::{Arc, Mutex}};
///
/// use pea2pea::{Config, DisconnectOrigin, Node, Pea2Pea, protocols::OnDisconnect};
///
/// type Gone = (SocketAddr, DisconnectOrigin, Option<String>);
///
/// #[derive(Clone)]
/// struct Peer { node: Node, gone: Arc<Mutex<Vec<Gone>>> }
///
/// impl Pea2Pea for Peer {
///     fn node(&self) -> &Node { &self.node }
/// }
///
/// impl OnDisconnect for Peer {
///     async fn on_disconnect(&self, addr: SocketAddr, origin: DisconnectOrigin) {
///         let reason = self.node.connection_info(addr).and_then(|info| info.close_reason());
///         self.gone.lock().unwrap().push((addr, origin, reason)); // e.g. forget the peer
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let peer = Peer { node: Node::new(Config::loopback()), gone: Default::default() };
/// peer.enable_on_disconnect().await;
/// # let other = Node::new(Config::loopback());
/// # let other_addr = other.toggle_listener().await?.unwrap();
/// peer.node().connect(other_addr).await?;
/// peer.node().disconnect_with_reason(other_addr, "done").await; // waits for the hook
/// let reason = Some("done".to_string());
/// assert_eq!(*peer.gone.lock().unwrap(), [(other_addr, DisconnectOrigin::User, reason)]);
/// # peer.node().shut_down().await;
/// # other.shut_down().await;
/// # Ok(())
/// # }
/// ```
pub trait OnDisconnect: Pea2Pea
where
    Self: Clone + Send + Sync + 'static,
{
    /// How long the hook may run, in milliseconds, before the teardown goes on without it.
    const TIMEOUT_MS: u64 = 3_000;

    /// Makes the node run [`on_disconnect`](OnDisconnect::on_disconnect) for every connection
    /// it tears down.
    ///
    /// # Panics
    ///
    /// If it is already enabled. Once shutdown has begun, enabling does nothing.
    fn enable_on_disconnect(&self) -> impl Future<Output = ()> {
        let this = self.clone();
        async move {
            let node = this.node().clone();
            enable(
                &node,
                "OnDisconnect",
                |p| &p.on_disconnect,
                || OnDisconnectSlot {
                    timeout: Duration::from_millis(Self::TIMEOUT_MS),
                    run: Box::new(move |addr, origin| {
                        let this = this.clone();
                        Box::pin(async move { this.on_disconnect(addr, origin).await })
                    }),
                },
            );
        }
    }

    /// What to do when the connection with `addr` ends, and why it did.
    fn on_disconnect(
        &self,
        addr: SocketAddr,
        origin: DisconnectOrigin,
    ) -> impl Future<Output = ()> + Send;
}
