use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[cfg(doc)]
use crate::{
    Config, Node,
    protocols::{Handshake, Reading, Writing},
};

/// Counters of the events that say a node is under pressure or being misused. Each one counts
/// a single cause; none of them overlaps another. Read them from [`Node::heuristics`].
///
/// A node that admits one connection per IP drops a second one from the same address:
///
/// ```
/// use std::time::Duration;
///
/// use pea2pea::{Config, Node};
/// use tokio::{net::TcpStream, time::{Instant, sleep}};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let node = Node::new(Config { max_connections_per_ip: 1, ..Config::loopback() });
/// let addr = node.toggle_listener().await?.unwrap();
/// let _first = TcpStream::connect(addr).await?;
/// let _second = TcpStream::connect(addr).await?; // the kernel accepts it, the node drops it
///
/// // the node admits connections in a task of its own: poll, with a deadline
/// let deadline = Instant::now() + Duration::from_secs(10);
/// while node.heuristics().inbound_connections_rejected() == 0 {
///     assert!(Instant::now() < deadline, "the second connection was not rejected");
///     sleep(Duration::from_millis(10)).await;
/// }
/// assert_eq!(node.heuristics().inbound_connections_rejected(), 1);
/// # node.shut_down().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct Heuristics {
    pub(crate) connect_budget_rejections: AtomicU64,
    pub(crate) inbound_connections_rejected: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) handshake_timeouts: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) write_timeouts: AtomicU64,
    pub(crate) encode_failures: AtomicU64,
}

impl Heuristics {
    /// Outbound [`Node::connect`] calls refused because [`Config::max_connecting`] setups were
    /// already running.
    pub fn connect_budget_rejections(&self) -> u64 {
        self.connect_budget_rejections.load(Relaxed)
    }

    /// Inbound connections accepted by the kernel and then dropped by an admission limit
    /// (a duplicate address, [`Config::max_connections_per_ip`] or [`Config::max_connections`]).
    /// Connections dropped only because the node is shutting down are not counted.
    pub fn inbound_connections_rejected(&self) -> u64 {
        self.inbound_connections_rejected.load(Relaxed)
    }

    /// Failed `accept` calls on the listener, other than a peer aborting or resetting its
    /// connection first. Each one pauses accepting for 500ms.
    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Relaxed)
    }

    /// Connections dropped because [`Handshake::perform_handshake`] exceeded
    /// [`Handshake::TIMEOUT_MS`]. Handshakes that fail with an error are not counted here.
    pub fn handshake_timeouts(&self) -> u64 {
        self.handshake_timeouts.load(Relaxed)
    }

    /// Connections dropped because no message arrived within [`Reading::IDLE_TIMEOUT_MS`].
    pub fn idle_timeouts(&self) -> u64 {
        self.idle_timeouts.load(Relaxed)
    }

    /// Connections dropped because a batch of messages could not be written within
    /// [`Writing::TIMEOUT_MS`].
    pub fn write_timeouts(&self) -> u64 {
        self.write_timeouts.load(Relaxed)
    }

    /// Messages a send accepted and the connection's writer then dropped because their
    /// encoder failed. A message queued behind a full batch (see
    /// [`Writing::INITIAL_BUFFER_SIZE`]) waits unencoded and is encoded by the writer; its
    /// encoder's error reaches its confirmation, if it has one, and is counted here. An
    /// encoder error at the send itself is returned to the sender and not counted.
    pub fn encode_failures(&self) -> u64 {
        self.encode_failures.load(Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
