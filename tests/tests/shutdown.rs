//! Shutdown & cleanup: SHUT-01 .. SHUT-10 (SHUT-08 lives in leak.rs, which needs its own
//! global allocator).

use std::{
    io::ErrorKind,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    ConnectionSide, DisconnectOrigin, Node, Pea2Pea, ShuttingDown,
    protocols::{Handshake, OnDisconnect, Reading, Writing},
};
use pea2pea_tests::*;
use tokio::{
    io::AsyncWriteExt,
    time::{sleep, timeout},
};

const SEC: Duration = Duration::from_secs(1);

// SHUT-01: shut_down closes the listening socket: its address can be bound again.
#[tokio::test]
async fn shut_01_listener_socket_is_closed() {
    let node = Node::new(test_config());
    let addr = start_listening(&node).await;
    assert!(
        std::net::TcpListener::bind(addr).is_err(),
        "the port isn't in use"
    );
    node.shut_down().await;
    wait_until_desc(SEC, "the listening port to be free", || {
        std::net::TcpListener::bind(addr).is_ok()
    })
    .await;
}

// SHUT-02: shut_down clears every view.
#[tokio::test]
async fn shut_02_shutdown_clears_every_view() {
    let node = Peer::new(test_config());
    node.enable_all().await;
    let addr = start_listening(&node.node).await;
    let mut others = Vec::new();
    let mut former = Vec::new();
    for _ in 0..2 {
        let p = Node::new(test_config());
        let p_addr = start_listening(&p).await;
        node.node.connect(p_addr).await.unwrap();
        former.push(p_addr);
        others.push(p);
    }
    let inbound = Node::new(test_config());
    inbound.connect(addr).await.unwrap();
    wait_for_connections(&node.node, 3).await;
    former.extend(node.node.connected_addrs());

    node.node.shut_down().await;
    assert_eq!(node.node.num_connected(), 0);
    assert_eq!(node.node.num_connecting(), 0);
    assert!(node.node.connected_addrs().is_empty());
    assert!(node.node.connection_infos().is_empty());
    for addr in former {
        assert!(!node.node.is_connected(addr));
        assert!(!node.node.is_connecting(addr));
        assert!(node.node.connection_info(addr).is_none());
    }
    assert_eq!(
        node.node.listening_addr().await.unwrap_err().kind(),
        ErrorKind::AddrNotAvailable
    );
    shut_down_all(others.iter().chain([&inbound])).await;
}

// SHUT-03: shut_down is idempotent, in sequence and concurrently.
#[tokio::test]
async fn shut_03_shutdown_is_idempotent() {
    let node = FullNoopNode::new(test_config());
    node.enable_all().await;
    start_listening(&node.node).await;
    timeout(SEC, node.node.shut_down()).await.unwrap();
    timeout(SEC, node.node.shut_down()).await.unwrap();

    let other = FullNoopNode::new(test_config());
    other.enable_all().await;
    start_listening(&other.node).await;
    timeout(SEC, async {
        tokio::join!(other.node.shut_down(), other.node.shut_down())
    })
    .await
    .unwrap();
}

// SHUT-04: connect after shut_down fails with a "shutting down" error of kind Other and takes
// no slot.
#[tokio::test]
async fn shut_04_connect_after_shutdown() {
    let node = Node::new(test_config());
    let target = Node::new(test_config());
    let addr = start_listening(&target).await;
    node.shut_down().await;

    let err = node.connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(ShuttingDown::caused(&err), "{err}");
    let err = node
        .connect_using_socket(addr, raw::socket_bound_to(addr.ip()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(ShuttingDown::caused(&err), "{err}");
    assert_eq!(node.num_connecting(), 0);
    assert_eq!(node.num_connected(), 0);
    target.shut_down().await;
}

// SHUT-05: shut_down disconnects every peer, firing on_disconnect with origin Shutdown.
#[tokio::test]
async fn shut_05_shutdown_disconnects_every_peer() {
    let node = Peer::new(test_config());
    node.enable_all().await;
    let mut peers = Vec::new();
    for _ in 0..5 {
        let p = Node::new(test_config());
        let addr = start_listening(&p).await;
        node.node.connect(addr).await.unwrap();
        peers.push(p);
    }
    node.node.shut_down().await;
    assert_eq!(
        node.disconnect_origins(),
        vec![DisconnectOrigin::Shutdown; 5]
    );
    shut_down_all(&peers).await;
}

/// A node whose on_disconnect takes 300ms, recording when it started.
#[derive(Clone)]
struct SlowGoodbye {
    node: Node,
    started: Arc<AtomicBool>,
    liveness: Arc<()>,
}

impl SlowGoodbye {
    fn new() -> Self {
        Self {
            node: Node::new(test_config()),
            started: Default::default(),
            liveness: Default::default(),
        }
    }
}

impl Pea2Pea for SlowGoodbye {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl OnDisconnect for SlowGoodbye {
    async fn on_disconnect(&self, _: SocketAddr, _: DisconnectOrigin) {
        self.started.store(true, SeqCst);
        sleep(Duration::from_millis(300)).await;
    }
}

// SHUT-05: once shut_down has started, no new connection is admitted.
#[tokio::test]
async fn shut_05_no_admission_during_shutdown() {
    let node = SlowGoodbye::new();
    node.enable_on_disconnect().await;
    let addr = start_listening(&node.node).await;
    let first = Node::new(test_config());
    first.connect(addr).await.unwrap();
    wait_for_connections(&node.node, 1).await;

    let shutdown = {
        let n = node.node.clone();
        tokio::spawn(async move { n.shut_down().await })
    };
    wait_until(SEC, || node.started.load(SeqCst)).await;

    // outbound: refused as shutting down
    let target = Node::new(test_config());
    let target_addr = start_listening(&target).await;
    let err = node.node.connect(target_addr).await.unwrap_err();
    assert!(ShuttingDown::caused(&err), "{err}");
    // inbound: never registered, while the hook still runs
    let late = Node::new(test_config());
    let _ = late.connect(addr).await;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(200) {
        assert!(node.node.num_connected() <= 1, "a connection was admitted");
        assert!(!node.node.is_connected(target_addr));
        sleep(Duration::from_millis(5)).await;
    }
    timeout(SEC, shutdown).await.unwrap().unwrap();
    assert_eq!(node.node.num_connected(), 0);
    shut_down_all([&first, &target, &late]).await;
}

// SHUT-05: a setup in progress when shut_down starts fails with "shutting down", and the
// drain is bounded (3s) even though the handshake would never finish.
#[tokio::test]
async fn shut_05_pending_setup_fails_shutting_down() {
    let node = GatedNode::new(test_config());
    node.enable_handshake().await;
    node.enable_reading().await;
    node.enable_writing().await;
    let target = Node::new(test_config());
    let addr = start_listening(&target).await;

    let connect = {
        let n = node.node.clone();
        tokio::spawn(async move { n.connect(addr).await })
    };
    wait_until(SEC, || node.started() == 1).await;
    timeout(Duration::from_secs(4), node.node.shut_down())
        .await
        .expect("shut_down didn't bound its drain");
    let err = timeout(SEC, connect)
        .await
        .expect("the pending connect hung")
        .unwrap()
        .unwrap_err();
    assert!(ShuttingDown::caused(&err), "{err}");
    assert_eq!(err.kind(), ErrorKind::Other);
    assert_eq!(node.node.num_connecting(), 0);
    assert_eq!(node.node.num_connected(), 0);
    target.shut_down().await;
}

// SHUT-06: a cancelled shut_down can be completed by a second call, after which no task
// references the node.
#[tokio::test]
async fn shut_06_cancelled_shutdown() {
    let node = SlowGoodbye::new();
    node.enable_on_disconnect().await;
    let addr = start_listening(&node.node).await;
    let peer = Node::new(test_config());
    peer.connect(addr).await.unwrap();
    wait_for_connections(&node.node, 1).await;

    let res = timeout(Duration::from_millis(50), node.node.shut_down()).await;
    assert!(res.is_err(), "shut_down didn't wait for the hook");
    timeout(Duration::from_secs(2), node.node.shut_down())
        .await
        .expect("the second shut_down hung");

    let liveness = node.liveness.clone();
    drop(node);
    wait_until_desc(Duration::from_secs(2), "no task to hold the node", || {
        Arc::strong_count(&liveness) == 1
    })
    .await;
    peer.shut_down().await;
}

/// A node whose on_disconnect waits for a gate, for up to 30s: longer than shutdown's 3s drain.
#[derive(Clone)]
struct StuckGoodbye {
    node: Node,
    gate: Gate,
    started: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    liveness: Arc<()>,
}

impl StuckGoodbye {
    async fn new() -> Self {
        let node = Self {
            node: Node::new(test_config()),
            gate: Gate::new(),
            started: Default::default(),
            finished: Default::default(),
            liveness: Default::default(),
        };
        node.enable_on_disconnect().await;
        node
    }

    /// A listening node with one raw peer connected; returns the peer's socket and address.
    async fn with_raw_peer() -> (Self, tokio::net::TcpStream, SocketAddr) {
        let node = Self::new().await;
        let addr = start_listening(&node.node).await;
        let raw = raw_connect(addr).await;
        wait_for_connections(&node.node, 1).await;
        let peer = node.node.connected_addrs()[0];
        (node, raw, peer)
    }
}

impl Pea2Pea for StuckGoodbye {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl OnDisconnect for StuckGoodbye {
    const TIMEOUT_MS: u64 = 30_000;

    async fn on_disconnect(&self, _: SocketAddr, _: DisconnectOrigin) {
        self.started.fetch_add(1, SeqCst);
        self.gate.wait().await;
        self.finished.fetch_add(1, SeqCst);
    }
}

/// Checks that `node` has no connection, in every view, and that the peer's socket is closed.
async fn assert_nothing_registered(
    node: &Node,
    former: SocketAddr,
    raw: &mut tokio::net::TcpStream,
) {
    assert_eq!(node.num_connected(), 0, "a connection outlived shut_down");
    assert!(node.connected_addrs().is_empty());
    assert!(node.connection_infos().is_empty());
    assert!(!node.is_connected(former));
    assert!(node.connection_info(former).is_none());
    assert_closed_within(raw, SEC).await;
}

// SHUT-10: a teardown started elsewhere (here a user's disconnect) whose on_disconnect outlives
// the drain deadline does not outlive shut_down: when it returns, nothing is registered and the
// socket is closed; the hook goes on in its caller, which then gets `true`.
#[tokio::test]
async fn shut_10_slow_user_disconnect_does_not_outlive_shutdown() {
    let (node, mut raw, peer) = StuckGoodbye::with_raw_peer().await;

    let disconnect = {
        let n = node.node.clone();
        tokio::spawn(async move { n.disconnect(peer).await })
    };
    wait_until(SEC, || node.started.load(SeqCst) == 1).await;
    timeout(Duration::from_secs(10), node.node.shut_down())
        .await
        .expect("shut_down didn't bound its drain");
    assert_nothing_registered(&node.node, peer, &mut raw).await;
    assert_eq!(node.finished.load(SeqCst), 0, "the hook was still waiting");

    node.gate.open();
    let won = timeout(SEC, disconnect).await.unwrap().unwrap();
    assert!(won, "the user's disconnect claimed the connection");
    assert_eq!(node.finished.load(SeqCst), 1);
    assert_eq!(node.started.load(SeqCst), 1, "on_disconnect ran once");
    let liveness = node.liveness.clone();
    drop(node);
    wait_until_desc(Duration::from_secs(2), "no task to hold the node", || {
        Arc::strong_count(&liveness) == 1
    })
    .await;
}

// SHUT-10: the same when the teardown's caller stopped polling it (polled once, kept, never
// polled again): shut_down still returns with nothing registered, and dropping the stalled
// future later touches nothing.
#[tokio::test]
async fn shut_10_stalled_disconnect_does_not_outlive_shutdown() {
    let (node, mut raw, peer) = StuckGoodbye::with_raw_peer().await;

    let mut stalled = Box::pin(node.node.disconnect(peer));
    tokio::select! {
        biased;
        _ = &mut stalled => panic!("the hook waits for the gate"),
        _ = std::future::ready(()) => {}
    }
    assert_eq!(node.started.load(SeqCst), 1);
    timeout(Duration::from_secs(10), node.node.shut_down())
        .await
        .expect("shut_down didn't bound its drain");
    assert_nothing_registered(&node.node, peer, &mut raw).await;

    // the stalled teardown ends when dropped; its removal finds nothing left to remove
    drop(stalled);
    assert_eq!(node.node.num_connected(), 0);
    assert_eq!(
        node.finished.load(SeqCst),
        0,
        "the dropped hook did not finish"
    );
}

// SHUT-07: a peer sees the node's shutdown as EOF.
#[tokio::test]
async fn shut_07_peer_sees_eof() {
    let node = FullNoopNode::new(test_config());
    node.enable_all().await;
    let addr = start_listening(&node.node).await;
    let mut raw = raw_connect(addr).await;
    wait_for_connections(&node.node, 1).await;
    node.node.shut_down().await;
    assert_closed_within(&mut raw, SEC).await;
}

/// Counts messages; a "stop" message makes it shut itself down from a separate task.
#[derive(Clone)]
struct Orphan {
    node: Node,
    processed: Arc<AtomicUsize>,
    liveness: Arc<()>,
}

impl Pea2Pea for Orphan {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for Orphan {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, message: Bytes) {
        self.processed.fetch_add(1, SeqCst);
        if &message[..] == b"stop" {
            // never shut down from inside a hook: hand it to another task
            let node = self.node.clone();
            tokio::spawn(async move { node.shut_down().await });
        }
    }
}

// SHUT-07: dropping every handle doesn't stop a node; it keeps serving until shut down.
#[tokio::test]
async fn shut_07_dropped_handle_does_not_stop_node() {
    let node = Orphan {
        node: Node::new(test_config()),
        processed: Default::default(),
        liveness: Default::default(),
    };
    node.enable_reading().await;
    let addr = start_listening(&node.node).await;
    let processed = node.processed.clone();
    let liveness = node.liveness.clone();
    drop(node);

    let mut raw = raw_connect(addr).await;
    raw.write_all(&frame(b"ping")).await.unwrap();
    wait_until(SEC, || processed.load(SeqCst) == 1).await;
    raw.write_all(&frame(b"stop")).await.unwrap();
    assert_closed_within(&mut raw, SEC).await;
    wait_until_desc(Duration::from_secs(2), "the node to be gone", || {
        Arc::strong_count(&liveness) == 1
    })
    .await;
}

// SHUT-09: when the runtime goes away without a shut_down, the per-connection cleanup doesn't
// panic. The runtime is built and dropped on a dedicated thread whose panics are counted.
// (The nodes can't be shut down here: the runtime they need is what the test removes.)
#[test]
fn shut_09_cleanup_without_runtime_does_not_panic() {
    const THREAD: &str = "shut-09-runtime";
    let panics = Arc::new(AtomicUsize::new(0));
    let prev = Arc::new(std::panic::take_hook());
    {
        let (panics, prev) = (panics.clone(), prev.clone());
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(THREAD) {
                panics.fetch_add(1, SeqCst);
            }
            prev(info);
        }));
    }

    let handle = std::thread::Builder::new()
        .name(THREAD.into())
        .spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let nodes = rt.block_on(async {
                let a = Peer::new(test_config());
                let b = Peer::new(test_config());
                a.enable_all().await;
                b.enable_all().await;
                let addr = start_listening(&b.node).await;
                a.node.connect(addr).await.unwrap();
                wait_for_connections(&b.node, 1).await;
                send_dm(&a, addr, Bytes::from_static(b"x")).await.unwrap();
                wait_until(SEC, || b.processed() == 1).await;
                (a, b)
            });
            // dropping the runtime drops every task, and with them the cleanup guards
            drop(rt);
            drop(nodes);
        })
        .unwrap();
    let joined = handle.join();

    // restore a hook that forwards to the original one
    std::panic::set_hook(Box::new(move |info| prev(info)));
    assert!(joined.is_ok(), "the runtime thread panicked");
    assert_eq!(
        panics.load(SeqCst),
        0,
        "a cleanup panicked without a runtime"
    );
}
