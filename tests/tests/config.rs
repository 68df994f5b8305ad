//! Config & construction: CFG-01 .. CFG-09.

use std::{
    io::{self, ErrorKind},
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    Config, Connection, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};
use pea2pea_tests::*;
use tokio::{io::AsyncReadExt, net::TcpListener, task::JoinError, time::timeout};

/// Extracts the message of a panic that ended a spawned task; fails if it didn't panic.
fn panic_text(res: Result<(), JoinError>) -> String {
    let err = res.expect_err("the task was expected to panic");
    assert!(err.is_panic(), "the task was cancelled, not panicked");
    let payload = err.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// CFG-01: the documented defaults; the `test` feature (on for this crate) changes the listener
// to 127.0.0.1:0 and max_connections_per_ip to 100.
#[test]
fn cfg_01_default_config_values() {
    let cfg = Config::default();
    assert_eq!(cfg.name, None);
    assert_eq!(cfg.listener_backlog, 128);
    assert!(!cfg.reuse_listener_port);
    assert_eq!(cfg.max_connections, 100);
    assert_eq!(cfg.max_connecting, 100);
    assert_eq!(cfg.connection_timeout_ms, 1000);
    // the test profile's two changes
    assert_eq!(
        cfg.listener_addr,
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    );
    assert_eq!(cfg.max_connections_per_ip, 100);
}

// CFG-01: a node built from the test profile's defaults listens on 127.0.0.1.
#[tokio::test]
async fn cfg_01_test_profile_listener_binds_localhost() {
    let node = Node::new(Config::default());
    let addr = start_listening(&node).await;
    assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
    assert_ne!(addr.port(), 0, "the real port must be reported");
    node.shut_down().await;
}

// CFG-02: an unnamed node gets a sequential numeric name; a given name is kept.
#[test]
fn cfg_02_node_names() {
    let a = Node::new(Config::default());
    let b = Node::new(Config::default());
    let name_a: u64 = a.name().parse().expect("the auto name is not numeric");
    let name_b: u64 = b.name().parse().expect("the auto name is not numeric");
    // other tests may create nodes in between, but the sequence only goes up
    assert!(
        name_b > name_a,
        "names are not sequential: {name_a} then {name_b}"
    );
    assert_eq!(a.config().name.as_deref(), Some(a.name()));

    let named = Node::new(Config {
        name: Some("alice".into()),
        ..Default::default()
    });
    assert_eq!(named.name(), "alice");
    assert_eq!(named.config().name.as_deref(), Some("alice"));
}

// CFG-03: each zero limit is rejected at creation with a message naming the field.
#[test]
#[should_panic(expected = "Config::max_connections must not be 0")]
fn cfg_03_zero_max_connections_panics() {
    let _ = Node::new(Config {
        max_connections: 0,
        ..Default::default()
    });
}

#[test]
#[should_panic(expected = "Config::max_connections_per_ip must not be 0")]
fn cfg_03_zero_max_connections_per_ip_panics() {
    let _ = Node::new(Config {
        max_connections_per_ip: 0,
        ..Default::default()
    });
}

#[test]
#[should_panic(expected = "Config::max_connecting must not be 0")]
fn cfg_03_zero_max_connecting_panics() {
    let _ = Node::new(Config {
        max_connecting: 0,
        ..Default::default()
    });
}

// CFG-04: max_connecting above max_connections is clamped; a lower one is kept.
#[test]
fn cfg_04_max_connecting_is_clamped() {
    let clamped = Node::new(Config {
        max_connections: 10,
        max_connecting: 11,
        ..Default::default()
    });
    assert_eq!(clamped.config().max_connecting, 10);
    assert_eq!(clamped.config().max_connections, 10);

    let kept = Node::new(Config {
        max_connections: 10,
        max_connecting: 5,
        ..Default::default()
    });
    assert_eq!(kept.config().max_connecting, 5);
}

// CFG-05: the protocol constants' defaults, read through FullNoopNode, which overrides none.
#[test]
fn cfg_05_protocol_defaults() {
    assert_eq!(<FullNoopNode as Handshake>::TIMEOUT_MS, 3000);
    // (queue depth, backpressure, initial buffer, idle timeout)
    let reading = (
        <FullNoopNode as Reading>::MESSAGE_QUEUE_DEPTH,
        <FullNoopNode as Reading>::BACKPRESSURE,
        <FullNoopNode as Reading>::INITIAL_BUFFER_SIZE,
        <FullNoopNode as Reading>::IDLE_TIMEOUT_MS,
    );
    assert_eq!(reading, (64, true, 64 * 1024, 60_000));
    // (queue depth, initial buffer, write timeout)
    let writing = (
        <FullNoopNode as Writing>::MESSAGE_QUEUE_DEPTH,
        <FullNoopNode as Writing>::INITIAL_BUFFER_SIZE,
        <FullNoopNode as Writing>::TIMEOUT_MS,
    );
    assert_eq!(writing, (64, 64 * 1024, 10_000));
    // (on_connect abortable, on_disconnect timeout)
    let hooks = (
        <FullNoopNode as OnConnect>::ABORTABLE,
        <FullNoopNode as OnDisconnect>::TIMEOUT_MS,
    );
    assert_eq!(hooks, (true, 3000));
}

/// Every timeout set to 0: a handshake that waits for a byte, a sleeping on_disconnect hook.
#[derive(Clone)]
struct ZeroTimeouts {
    node: Node,
    hook_finished: Arc<AtomicBool>,
}

impl Pea2Pea for ZeroTimeouts {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Handshake for ZeroTimeouts {
    const TIMEOUT_MS: u64 = 0;

    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        // the peer never sends anything, so only the timeout can end this
        let mut byte = [0u8; 1];
        self.borrow_stream(&mut conn).read_exact(&mut byte).await?;
        Ok(conn)
    }
}

impl Writing for ZeroTimeouts {
    const TIMEOUT_MS: u64 = 0;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

impl OnDisconnect for ZeroTimeouts {
    const TIMEOUT_MS: u64 = 0;

    async fn on_disconnect(&self, _: SocketAddr, _: DisconnectOrigin) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.hook_finished.store(true, SeqCst);
    }
}

impl ZeroTimeouts {
    fn new(config: Config) -> Self {
        Self {
            node: Node::new(config),
            hook_finished: Default::default(),
        }
    }
}

// CFG-05: Handshake::TIMEOUT_MS = 0 fails a handshake that has to wait, almost at once.
#[tokio::test]
async fn cfg_05_zero_handshake_timeout_fails_at_once() {
    let node = ZeroTimeouts::new(test_config());
    node.enable_handshake().await;
    let listener = TcpListener::bind(LOCALHOST_ANY_PORT).await.unwrap();
    let target = listener.local_addr().unwrap();

    let start = Instant::now();
    let err = timeout(Duration::from_secs(1), node.node.connect(target))
        .await
        .expect("connect hung despite a 0ms handshake timeout")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(node.node.num_connecting(), 0);
    assert_eq!(node.node.num_connected(), 0);
    node.node.shut_down().await;
}

// CFG-05: OnDisconnect::TIMEOUT_MS = 0 cuts a waiting hook off almost at once.
#[tokio::test]
async fn cfg_05_zero_on_disconnect_timeout_aborts_hook() {
    let node = ZeroTimeouts::new(test_config());
    node.enable_on_disconnect().await;
    let peer = Node::new(test_config());
    let peer_addr = start_listening(&peer).await;
    node.node.connect(peer_addr).await.unwrap();

    let start = Instant::now();
    assert!(node.node.disconnect(peer_addr).await);
    assert!(
        start.elapsed() < Duration::from_millis(400),
        "disconnect waited for the hook despite a 0ms timeout"
    );
    // the hook would finish 500ms in if it had not been cut off
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!node.hook_finished.load(SeqCst));
    shut_down_all([&node.node, &peer]).await;
}

// CFG-05: Writing::TIMEOUT_MS = 0 fails a batch that can't be flushed at once (4KiB send buffer,
// a peer that never reads).
#[tokio::test]
async fn cfg_05_zero_write_timeout_fails_blocked_write() {
    let node = ZeroTimeouts::new(test_config());
    node.enable_writing().await;
    let (target, _listener, _accepted) = raw::connect_to_stalled_reader(&node.node).await;

    let mut confirmations = Vec::new();
    for _ in 0..16 {
        let msg = Bytes::from(vec![7u8; 60_000]);
        confirmations.push(node.unicast(target, msg).unwrap());
    }
    let mut saw_timeout = false;
    for conf in confirmations {
        let res = timeout(Duration::from_secs(1), conf)
            .await
            .expect("a confirmation hung");
        if let Ok(Err(e)) = res {
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            saw_timeout = true;
        }
    }
    assert!(saw_timeout, "no batch failed despite a 0ms write timeout");
    assert!(node.node.heuristics().write_timeouts() >= 1);
    node.node.shut_down().await;
}

// CFG-05: connection_timeout_ms = 0 fails a TCP connect that has to wait (the target's accept
// queue is full), almost at once instead of after the default 1s.
#[tokio::test]
async fn cfg_05_zero_connection_timeout_fails_connect() {
    let node = Node::new(Config {
        connection_timeout_ms: 0,
        ..test_config()
    });
    let (_listener, _fillers, target) = raw::full_backlog_listener().await;
    let start = Instant::now();
    let err = timeout(Duration::from_secs(1), node.connect(target))
        .await
        .expect("connect hung despite a 0ms connection timeout")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() < Duration::from_millis(500));
    assert_eq!(node.num_connecting(), 0);
    node.shut_down().await;
}

/// Reading and Writing with a queue depth of 0, which must be refused when enabled.
#[derive(Clone)]
struct ZeroDepth(Node);

impl Pea2Pea for ZeroDepth {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Reading for ZeroDepth {
    const MESSAGE_QUEUE_DEPTH: usize = 0;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {}
}

impl Writing for ZeroDepth {
    const MESSAGE_QUEUE_DEPTH: usize = 0;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

// CFG-06: a zero MESSAGE_QUEUE_DEPTH panics in enable_reading itself, with no connection.
#[tokio::test]
async fn cfg_06_zero_reading_queue_depth_panics_at_enable() {
    let node = ZeroDepth(Node::new(test_config()));
    let clone = node.clone();
    let res = timeout(
        Duration::from_secs(1),
        tokio::spawn(async move { clone.enable_reading().await }),
    )
    .await
    .expect("enable_reading hung");
    assert!(panic_text(res).contains("MESSAGE_QUEUE_DEPTH"));
    node.0.shut_down().await;
}

// CFG-06: the same for enable_writing.
#[tokio::test]
async fn cfg_06_zero_writing_queue_depth_panics_at_enable() {
    let node = ZeroDepth(Node::new(test_config()));
    let clone = node.clone();
    let res = timeout(
        Duration::from_secs(1),
        tokio::spawn(async move { clone.enable_writing().await }),
    )
    .await
    .expect("enable_writing hung");
    assert!(panic_text(res).contains("MESSAGE_QUEUE_DEPTH"));
    node.0.shut_down().await;
}

// CFG-07: enabling any protocol a second time panics at once.
#[tokio::test]
async fn cfg_07_double_enable_panics() {
    for which in 0..5 {
        let node = FullNoopNode::new(test_config());
        let enable = |n: FullNoopNode| async move {
            match which {
                0 => n.enable_handshake().await,
                1 => n.enable_reading().await,
                2 => n.enable_writing().await,
                3 => n.enable_on_connect().await,
                _ => n.enable_on_disconnect().await,
            }
        };
        enable(node.clone()).await;
        let res = timeout(Duration::from_secs(1), tokio::spawn(enable(node.clone())))
            .await
            .unwrap_or_else(|_| panic!("the second enable of protocol #{which} hung"));
        let err = res.expect_err("the second enable didn't panic");
        assert!(err.is_panic(), "protocol #{which}: expected a panic");
        node.node.shut_down().await;
    }
}

// CFG-08: enabling protocols after shut_down is a silent no-op that leaves no task behind.
#[tokio::test]
async fn cfg_08_enable_after_shutdown_is_noop() {
    let node = FullNoopNode::new(test_config());
    node.node.shut_down().await;

    let clone = node.clone();
    timeout(
        Duration::from_secs(1),
        tokio::spawn(async move { clone.enable_all().await }),
    )
    .await
    .expect("enabling after shut_down hung")
    .expect("enabling after shut_down panicked");

    // the protocol was not enabled
    let any: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let err = node.unicast(any, Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);

    // every task holds a clone of the node type; once our handle is gone, none may remain
    let liveness = node.liveness.clone();
    drop(node);
    wait_until_desc(Duration::from_secs(2), "no task to hold the node", || {
        Arc::strong_count(&liveness) == 1
    })
    .await;
}

/// Records that each of its five protocols ran.
#[derive(Clone, Default)]
struct Recorder {
    node: Option<Node>,
    handshakes: Arc<AtomicUsize>,
    processed: Arc<AtomicUsize>,
    connects: Arc<AtomicUsize>,
    disconnects: Arc<AtomicUsize>,
}

impl Pea2Pea for Recorder {
    fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }
}

impl Handshake for Recorder {
    async fn perform_handshake(&self, conn: Connection) -> io::Result<Connection> {
        self.handshakes.fetch_add(1, SeqCst);
        Ok(conn)
    }
}

impl Reading for Recorder {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {
        self.processed.fetch_add(1, SeqCst);
    }
}

impl Writing for Recorder {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

impl OnConnect for Recorder {
    async fn on_connect(&self, _: SocketAddr) {
        self.connects.fetch_add(1, SeqCst);
    }
}

impl OnDisconnect for Recorder {
    async fn on_disconnect(&self, _: SocketAddr, _: DisconnectOrigin) {
        self.disconnects.fetch_add(1, SeqCst);
    }
}

// CFG-09: the five enables and toggle_listener can run concurrently, and all take effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cfg_09_concurrent_enables_and_listener() {
    let node = Recorder {
        node: Some(Node::new(test_config())),
        ..Default::default()
    };
    let (_, _, _, _, _, listening) = tokio::join!(
        node.enable_handshake(),
        node.enable_reading(),
        node.enable_writing(),
        node.enable_on_connect(),
        node.enable_on_disconnect(),
        node.node().toggle_listener(),
    );
    let addr = listening.unwrap().unwrap();

    let peer = Peer::new(test_config());
    peer.enable_rw().await;
    peer.node.connect(addr).await.unwrap();
    wait_for_connections(node.node(), 1).await;
    let peer_addr = node.node().connected_addrs()[0];

    send_dm(&peer, addr, Bytes::from_static(b"hi"))
        .await
        .unwrap();
    send_dm(&node, peer_addr, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    wait_until_desc(Duration::from_secs(1), "both messages processed", || {
        node.processed.load(SeqCst) == 1 && peer.processed() == 1
    })
    .await;
    assert_eq!(node.handshakes.load(SeqCst), 1);
    wait_until_desc(Duration::from_secs(1), "on_connect", || {
        node.connects.load(SeqCst) == 1
    })
    .await;

    // the peer leaves; the node's Reading sees EOF and its on_disconnect runs
    peer.node.shut_down().await;
    wait_until_desc(Duration::from_secs(1), "on_disconnect", || {
        node.disconnects.load(SeqCst) == 1
    })
    .await;
    node.node().shut_down().await;
}
