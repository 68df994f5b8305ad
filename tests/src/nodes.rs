//! Reusable node types. Tests that need different protocol constants (queue depths, timeouts,
//! `ABORTABLE`) or special hook behaviour define their own small types next to the test, since
//! those constants are per type.

use std::{
    collections::HashSet,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
};

use bytes::Bytes;
use pea2pea::{
    Config, Connection, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};
use tokio::sync::Semaphore;

use crate::{TestCodec, send_dm};

/// A gate that tasks can wait on until a test opens it.
///
/// [`Gate::release`] lets `n` waits through (one each); [`Gate::open`] lets every current and
/// future wait through. A semaphore is used instead of `Notify`, so that a release that happens
/// before the wait is not lost.
#[derive(Clone)]
pub struct Gate(Arc<Semaphore>);

impl Default for Gate {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(0)))
    }
}

impl Gate {
    /// Creates a closed gate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits until the gate lets this caller through.
    pub async fn wait(&self) {
        // an error means the gate was opened for good (the semaphore is closed)
        if let Ok(permit) = self.0.acquire().await {
            permit.forget();
        }
    }

    /// Lets `n` more waits through.
    pub fn release(&self, n: usize) {
        self.0.add_permits(n);
    }

    /// Opens the gate for good.
    pub fn open(&self) {
        self.0.close();
    }
}

/// Implements all five protocols as no-ops, with none of them enabled until its `enable_*` is
/// called (or [`FullNoopNode::enable_all`]). Reading and Writing speak [`TestCodec`]. It overrides
/// no protocol constant, so CFG-05 reads the defaults through it: keep it that way.
///
/// `liveness` is cloned along with the node into every task the engine spawns for it (each
/// protocol handler holds a clone of the user type), so once every handle the test holds is
/// dropped, `Arc::strong_count(&liveness) == 1` proves that no task outlived the node
/// (CFG-08, SHUT-06).
#[derive(Clone)]
pub struct FullNoopNode {
    pub node: Node,
    pub liveness: Arc<()>,
}

impl FullNoopNode {
    pub fn new(config: Config) -> Self {
        Self {
            node: Node::new(config),
            liveness: Arc::new(()),
        }
    }

    /// Enables all five protocols, one after the other.
    pub async fn enable_all(&self) {
        self.enable_handshake().await;
        self.enable_reading().await;
        self.enable_writing().await;
        self.enable_on_connect().await;
        self.enable_on_disconnect().await;
    }
}

impl Pea2Pea for FullNoopNode {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Handshake for FullNoopNode {
    async fn perform_handshake(&self, conn: Connection) -> io::Result<Connection> {
        Ok(conn)
    }
}

impl Reading for FullNoopNode {
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }

    async fn process_message(&self, _: SocketAddr, _: Bytes) {}
}

impl Writing for FullNoopNode {
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

impl OnConnect for FullNoopNode {
    async fn on_connect(&self, _: SocketAddr) {}
}

impl OnDisconnect for FullNoopNode {
    async fn on_disconnect(&self, _: SocketAddr, _: DisconnectOrigin) {}
}

/// What a [`Peer`] observed.
#[derive(Default)]
pub struct PeerState {
    /// Every processed message, in processing order.
    pub inbox: Mutex<Vec<(SocketAddr, Bytes)>>,
    /// The number of `process_message` calls that completed.
    pub processed: AtomicUsize,
    /// The number of `on_connect` calls.
    pub connects: AtomicUsize,
    /// Every `on_disconnect` call, in order.
    pub disconnects: Mutex<Vec<(SocketAddr, DisconnectOrigin)>>,
    /// When set, every message not seen before is sent back to its source with [`send_dm`].
    pub echo: AtomicBool,
    /// The payloads already echoed.
    seen: Mutex<HashSet<Bytes>>,
}

/// A reading/writing node with counters: Reading, Writing (both [`TestCodec`]), OnConnect and
/// OnDisconnect, all recording into a shared [`PeerState`]. Nothing is enabled until the test
/// calls `enable_*` (or the helpers below).
#[derive(Clone)]
pub struct Peer {
    pub node: Node,
    pub state: Arc<PeerState>,
}

impl Peer {
    pub fn new(config: Config) -> Self {
        Self {
            node: Node::new(config),
            state: Default::default(),
        }
    }

    /// Enables Reading and Writing.
    pub async fn enable_rw(&self) {
        self.enable_reading().await;
        self.enable_writing().await;
    }

    /// Enables Reading, Writing, OnConnect and OnDisconnect.
    pub async fn enable_all(&self) {
        self.enable_rw().await;
        self.enable_on_connect().await;
        self.enable_on_disconnect().await;
    }

    /// A sender (Writing) connected to a receiver (Reading and OnDisconnect), both from
    /// [`test_config`](crate::test_config), once the receiver has registered the connection;
    /// returns them with the receiver's address.
    pub async fn sender_and_receiver() -> (Peer, Peer, SocketAddr) {
        let receiver = Peer::new(crate::test_config());
        receiver.enable_reading().await;
        receiver.enable_on_disconnect().await;
        let addr = crate::start_listening(&receiver.node).await;
        let sender = Peer::new(crate::test_config());
        sender.enable_writing().await;
        sender.node.connect(addr).await.unwrap();
        crate::wait_for_connections(&receiver.node, 1).await;
        (sender, receiver, addr)
    }

    /// Makes the node echo every message it has not seen before.
    pub fn set_echo(&self) {
        self.state.echo.store(true, SeqCst);
    }

    /// The number of processed messages.
    pub fn processed(&self) -> usize {
        self.state.processed.load(SeqCst)
    }

    /// The payloads processed so far, in order.
    pub fn payloads(&self) -> Vec<Bytes> {
        self.state
            .inbox
            .lock()
            .unwrap()
            .iter()
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// The number of `on_connect` calls so far.
    pub fn num_on_connect(&self) -> usize {
        self.state.connects.load(SeqCst)
    }

    /// Every `on_disconnect` call so far.
    pub fn disconnects(&self) -> Vec<(SocketAddr, DisconnectOrigin)> {
        self.state.disconnects.lock().unwrap().clone()
    }

    /// The origins of every `on_disconnect` call so far.
    pub fn disconnect_origins(&self) -> Vec<DisconnectOrigin> {
        self.disconnects().into_iter().map(|(_, o)| o).collect()
    }
}

impl Pea2Pea for Peer {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for Peer {
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }

    async fn process_message(&self, source: SocketAddr, message: Bytes) {
        self.state
            .inbox
            .lock()
            .unwrap()
            .push((source, message.clone()));
        if self.state.echo.load(SeqCst) && self.state.seen.lock().unwrap().insert(message.clone()) {
            // awaited from inside process_message on purpose (RD-01: no deadlock)
            send_dm(self, source, message)
                .await
                .expect("couldn't echo a message");
        }
        self.state.processed.fetch_add(1, SeqCst);
    }
}

impl Writing for Peer {
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

impl OnConnect for Peer {
    async fn on_connect(&self, _: SocketAddr) {
        self.state.connects.fetch_add(1, SeqCst);
    }
}

impl OnDisconnect for Peer {
    async fn on_disconnect(&self, addr: SocketAddr, origin: DisconnectOrigin) {
        self.state.disconnects.lock().unwrap().push((addr, origin));
    }
}

/// A node whose handshake stalls on a [`Gate`], for observing connections mid-setup.
///
/// The handshake counts itself in `started`, then waits on `gate` if the node's own side of the
/// connection is `gated_side` (`None` gates both sides), then succeeds. Reading counts processed
/// messages in `processed`; Writing is there so that tests can probe `unicast` during a handshake.
/// Nothing is enabled until the test calls `enable_*`.
#[derive(Clone)]
pub struct GatedNode {
    pub node: Node,
    pub gate: Gate,
    pub gated_side: Option<ConnectionSide>,
    pub started: Arc<AtomicUsize>,
    pub processed: Arc<AtomicUsize>,
}

impl GatedNode {
    /// A node whose handshakes wait on the gate on both sides.
    pub fn new(config: Config) -> Self {
        Self {
            node: Node::new(config),
            gate: Gate::new(),
            gated_side: None,
            started: Default::default(),
            processed: Default::default(),
        }
    }

    /// A node whose handshakes only wait on the gate where it is `own_side`.
    pub fn gated_on(config: Config, own_side: ConnectionSide) -> Self {
        Self {
            gated_side: Some(own_side),
            ..Self::new(config)
        }
    }

    /// The number of handshakes started so far.
    pub fn started(&self) -> usize {
        self.started.load(SeqCst)
    }
}

impl Pea2Pea for GatedNode {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Handshake for GatedNode {
    async fn perform_handshake(&self, conn: Connection) -> io::Result<Connection> {
        self.started.fetch_add(1, SeqCst);
        // `conn.side()` is the peer's side; ours is the opposite
        let own_side = !conn.side();
        if self.gated_side.is_none_or(|side| side == own_side) {
            self.gate.wait().await;
        }
        Ok(conn)
    }
}

impl Reading for GatedNode {
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }

    async fn process_message(&self, _: SocketAddr, _: Bytes) {
        self.processed.fetch_add(1, SeqCst);
    }
}

impl Writing for GatedNode {
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}
