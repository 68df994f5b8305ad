//! Stats & heuristics: STAT-01 .. STAT-06.
//!
//! Not covered: the half of STAT-06 about *other* accept errors (EMFILE and the like) being
//! counted and backed off for 500ms; provoking them needs a process-wide fd limit, which would
//! break every other test running in the same process.

use std::{
    io::{self, ErrorKind},
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    Config, Connection, ConnectionSide, Node, Pea2Pea,
    protocols::{Handshake, Reading, Writing},
};
use pea2pea_tests::{codec::wire_len, *};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpSocket,
    time::{sleep, timeout},
};

const SEC: Duration = Duration::from_secs(1);

// STAT-01: sent/received count messages and wire bytes (2 + payload), at node and connection
// level; the sender's node stats are up to date as soon as the confirmations resolve.
#[tokio::test]
async fn stat_01_message_and_byte_counts() {
    let (sender, receiver, addr) = Peer::sender_and_receiver().await;
    const N: u64 = 5;
    const LEN: usize = 10;
    for _ in 0..N {
        send_dm(&sender, addr, Bytes::from(vec![9u8; LEN]))
            .await
            .unwrap();
    }
    let expected = (N, N * wire_len(LEN));
    // no waiting on the sender's node stats
    assert_eq!(sender.node.stats().sent(), expected);
    wait_until(SEC, || {
        sender.node.connection_info(addr).unwrap().stats().sent() == expected
    })
    .await;
    wait_until(SEC, || receiver.node.stats().received() == expected).await;
    let from = receiver.node.connected_addrs()[0];
    wait_until(SEC, || {
        receiver
            .node
            .connection_info(from)
            .unwrap()
            .stats()
            .received()
            == expected
    })
    .await;
    assert_eq!(sender.node.stats().received(), (0, 0));
    assert_eq!(receiver.node.stats().sent(), (0, 0));
    shut_down_all([&sender.node, &receiver.node]).await;
}

// STAT-02: node stats accumulate across connections; connection stats go with the connection.
#[tokio::test]
async fn stat_02_node_stats_outlive_connections() {
    let (sender, receiver, addr) = Peer::sender_and_receiver().await;
    for _ in 0..3 {
        send_dm(&sender, addr, Bytes::from_static(b"abc"))
            .await
            .unwrap();
    }
    wait_until(SEC, || receiver.node.stats().received().0 == 3).await;
    assert!(sender.node.disconnect(addr).await);
    assert!(sender.node.connection_info(addr).is_none());
    wait_for_connections(&receiver.node, 0).await;

    sender.node.connect(addr).await.unwrap();
    wait_for_connections(&receiver.node, 1).await;
    for _ in 0..2 {
        send_dm(&sender, addr, Bytes::from_static(b"abc"))
            .await
            .unwrap();
    }
    let per_msg = wire_len(3);
    assert_eq!(sender.node.stats().sent(), (5, 5 * per_msg));
    wait_until(SEC, || receiver.node.stats().received() == (5, 5 * per_msg)).await;
    // the new connections start from zero
    wait_until(SEC, || {
        sender.node.connection_info(addr).unwrap().stats().sent() == (2, 2 * per_msg)
    })
    .await;
    let from = receiver.node.connected_addrs()[0];
    assert_eq!(
        receiver
            .node
            .connection_info(from)
            .unwrap()
            .stats()
            .received(),
        (2, 2 * per_msg)
    );
    shut_down_all([&sender.node, &receiver.node]).await;
}

/// A reader (queue of 1, no backpressure) whose first process_message blocks on a gate.
#[derive(Clone)]
struct Lossy {
    node: Node,
    gate: Gate,
    processed: Arc<AtomicUsize>,
}

impl Pea2Pea for Lossy {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for Lossy {
    const MESSAGE_QUEUE_DEPTH: usize = 1;
    const BACKPRESSURE: bool = false;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {
        if self.processed.fetch_add(1, SeqCst) == 0 {
            self.gate.wait().await;
        }
    }
}

// STAT-03: messages dropped by a full queue (BACKPRESSURE = false) were still received.
#[tokio::test]
async fn stat_03_dropped_messages_still_count() {
    let node = Lossy {
        node: Node::new(test_config()),
        gate: Gate::new(),
        processed: Default::default(),
    };
    node.enable_reading().await;
    let addr = start_listening(&node.node).await;
    let mut raw = raw_connect(addr).await;
    let mut burst = Vec::new();
    for i in 0..25u8 {
        burst.extend(frame(&[i]));
    }
    raw.write_all(&burst).await.unwrap();
    wait_until(SEC, || {
        node.node.stats().received() == (25, 25 * wire_len(1))
    })
    .await;
    node.gate.open();
    sleep(Duration::from_millis(200)).await;
    assert!(node.processed.load(SeqCst) < 25);
    node.node.shut_down().await;
}

// STAT-03: a frame that fails to decode isn't counted, neither as a message nor in bytes.
#[tokio::test]
async fn stat_03_failed_decode_not_counted() {
    let node = Peer::new(test_config());
    node.enable_reading().await;
    let addr = start_listening(&node.node).await;
    let mut raw = raw_connect(addr).await;
    let mut bytes = frame(b"a");
    bytes.extend(frame(b"bc"));
    bytes.extend([0, 0]); // a zero-length frame: a decode error
    raw.write_all(&bytes).await.unwrap();
    assert_closed_within(&mut raw, SEC).await;
    wait_for_connections(&node.node, 0).await;
    assert_eq!(node.processed(), 2);
    assert_eq!(node.node.stats().received(), (2, wire_len(1) + wire_len(2)));
    node.node.shut_down().await;
}

// STAT-03: the bytes of a frame that arrives in pieces are counted once, with the message.
#[tokio::test]
async fn stat_03_partial_frame_bytes_credited_to_message() {
    let node = Peer::new(test_config());
    node.enable_reading().await;
    let addr = start_listening(&node.node).await;
    let mut raw = raw_connect(addr).await;
    raw.set_nodelay(true).unwrap();
    let whole = frame(b"hello");
    raw.write_all(&whole[..3]).await.unwrap();
    sleep(Duration::from_millis(100)).await;
    assert_eq!(node.node.stats().received(), (0, 0));
    raw.write_all(&whole[3..]).await.unwrap();
    wait_until(SEC, || node.processed() == 1).await;
    assert_eq!(node.node.stats().received(), (1, wire_len(5)));
    node.node.shut_down().await;
}

/// Counts its own handshake traffic in the stats, using the public registration methods.
#[derive(Clone)]
struct CountingHandshake(Node);

impl Pea2Pea for CountingHandshake {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Handshake for CountingHandshake {
    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        let stream = self.borrow_stream(&mut conn);
        stream.write_u64(42).await?;
        stream.read_u64().await?;
        conn.stats().register_sent_messages(1, 8);
        conn.stats().register_received_message(8);
        self.0.stats().register_sent_messages(1, 8);
        self.0.stats().register_received_message(8);
        Ok(conn)
    }
}

// STAT-04: created() timestamps the node and each connection; handshakes can count their own
// traffic through the public registration methods.
#[tokio::test]
async fn stat_04_created_and_manual_registration() {
    let before = Instant::now();
    let a = CountingHandshake(Node::new(test_config()));
    let b = CountingHandshake(Node::new(test_config()));
    let after = Instant::now();
    let created = a.0.stats().created();
    assert!(before <= created && created <= after);

    a.enable_handshake().await;
    b.enable_handshake().await;
    let addr = start_listening(&b.0).await;
    let before_connect = Instant::now();
    a.0.connect(addr).await.unwrap();
    let after_connect = Instant::now();
    let info = a.0.connection_info(addr).unwrap();
    let conn_created = info.stats().created();
    assert!(before_connect <= conn_created && conn_created <= after_connect);
    assert!(conn_created >= created);

    assert_eq!(info.stats().sent(), (1, 8));
    assert_eq!(info.stats().received(), (1, 8));
    assert_eq!(a.0.stats().sent(), (1, 8));
    assert_eq!(a.0.stats().received(), (1, 8));
    shut_down_all([&a.0, &b.0]).await;
}

/// Asserts that exactly the given counters moved (each to 1), and no other.
fn assert_only(node: &Node, expected: HeuristicsSnapshot) {
    assert_eq!(HeuristicsSnapshot::of(node), expected);
}

// STAT-05: a fresh node's counters are all 0.
#[tokio::test]
async fn stat_05_fresh_counters_are_zero() {
    let node = Node::new(test_config());
    assert_only(&node, HeuristicsSnapshot::default());
    node.shut_down().await;
}

/// A handshake that waits for a byte that never comes (100ms timeout).
#[derive(Clone)]
struct SilentHandshake(Node);

impl Pea2Pea for SilentHandshake {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Handshake for SilentHandshake {
    const TIMEOUT_MS: u64 = 100;
    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        self.borrow_stream(&mut conn).read_u8().await?;
        Ok(conn)
    }
}

// STAT-05: a handshake timeout moves handshake_timeouts only.
#[tokio::test]
async fn stat_05_handshake_timeout_only() {
    let node = SilentHandshake(Node::new(test_config()));
    node.enable_handshake().await;
    let addr = start_listening(&node.0).await;
    let _raw = raw_connect(addr).await;
    wait_until(SEC, || node.0.heuristics().handshake_timeouts() == 1).await;
    assert_only(
        &node.0,
        HeuristicsSnapshot {
            handshake_timeouts: 1,
            ..Default::default()
        },
    );
    node.0.shut_down().await;
}

/// A reader with a 100ms idle timeout.
#[derive(Clone)]
struct QuickIdle(Node);

impl Pea2Pea for QuickIdle {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Reading for QuickIdle {
    const IDLE_TIMEOUT_MS: u64 = 100;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {}
}

// STAT-05: an idle timeout moves idle_timeouts only.
#[tokio::test]
async fn stat_05_idle_timeout_only() {
    let node = QuickIdle(Node::new(test_config()));
    node.enable_reading().await;
    let addr = start_listening(&node.0).await;
    let _raw = raw_connect(addr).await;
    wait_until(SEC, || node.0.heuristics().idle_timeouts() == 1).await;
    assert_only(
        &node.0,
        HeuristicsSnapshot {
            idle_timeouts: 1,
            ..Default::default()
        },
    );
    node.0.shut_down().await;
}

/// A writer with a 100ms write timeout.
#[derive(Clone)]
struct QuickWrite(Node);

impl Pea2Pea for QuickWrite {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Writing for QuickWrite {
    const TIMEOUT_MS: u64 = 100;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

// STAT-05: a write timeout moves write_timeouts only.
#[tokio::test]
async fn stat_05_write_timeout_only() {
    let node = QuickWrite(Node::new(test_config()));
    node.enable_writing().await;
    let (addr, _listener, _stream) = raw::connect_to_stalled_reader(&node.0).await;
    for _ in 0..16 {
        let _ = node.unicast_fast(addr, Bytes::from(vec![0u8; 60_000]));
    }
    wait_until(SEC, || node.0.heuristics().write_timeouts() == 1).await;
    assert_only(
        &node.0,
        HeuristicsSnapshot {
            write_timeouts: 1,
            ..Default::default()
        },
    );
    node.0.shut_down().await;
}

// STAT-05: an inbound rejection moves inbound_connections_rejected only.
#[tokio::test]
async fn stat_05_inbound_rejection_only() {
    let node = Node::new(Config {
        max_connections: 1,
        ..test_config()
    });
    let addr = start_listening(&node).await;
    let _a = raw_connect(addr).await;
    wait_for_connections(&node, 1).await;
    let _b = raw_connect(addr).await;
    wait_until(SEC, || {
        node.heuristics().inbound_connections_rejected() == 1
    })
    .await;
    assert_only(
        &node,
        HeuristicsSnapshot {
            inbound_connections_rejected: 1,
            ..Default::default()
        },
    );
    node.shut_down().await;
}

// STAT-05: a budget rejection moves connect_budget_rejections only.
#[tokio::test]
async fn stat_05_budget_rejection_only() {
    let node = GatedNode::gated_on(
        Config {
            max_connecting: 1,
            ..test_config()
        },
        ConnectionSide::Responder,
    );
    node.enable_handshake().await;
    let addr = start_listening(&node.node).await;
    let target = Node::new(test_config());
    let target_addr = start_listening(&target).await;
    let _inbound = raw_connect(addr).await;
    wait_until(SEC, || node.node.num_connecting() == 1).await;
    let err = node.node.connect(target_addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_only(
        &node.node,
        HeuristicsSnapshot {
            connect_budget_rejections: 1,
            ..Default::default()
        },
    );
    node.gate.open();
    shut_down_all([&node.node, &target]).await;
}

// STAT-06: peers resetting their connections around accept time are not accept errors, and
// cause no backoff: a regular peer right after them is accepted at once.
#[tokio::test]
async fn stat_06_peer_resets_are_not_accept_errors() {
    let node = Peer::new(test_config());
    node.enable_reading().await;
    let addr = start_listening(&node.node).await;
    for _ in 0..20 {
        let socket = TcpSocket::new_v4().unwrap();
        let stream = timeout(SEC, socket.connect(addr)).await.unwrap().unwrap();
        // SO_LINGER 0: the close is a RST
        stream.set_zero_linger().unwrap();
        drop(stream);
    }
    let start = Instant::now();
    let regular = raw_connect(addr).await;
    let regular_addr = regular.local_addr().unwrap();
    // a 500ms backoff would show here
    wait_until(Duration::from_millis(400), || {
        node.node.is_connected(regular_addr)
    })
    .await;
    assert!(start.elapsed() < Duration::from_millis(400));
    assert_eq!(node.node.heuristics().accept_errors(), 0);
    node.node.shut_down().await;
}

// STAT-10: a node's received counts are the sum of its connections' readers: a message is in
// them once it is processed (no waiting), and stays counted once when its connection ends.
#[tokio::test]
async fn stat_10_node_received_is_each_reader_counted_once() {
    let receiver = Peer::new(test_config());
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    let mut senders = Vec::new();
    for _ in 0..3 {
        let sender = Peer::new(test_config());
        sender.enable_writing().await;
        sender.node.connect(addr).await.unwrap();
        senders.push(sender);
    }
    wait_for_connections(&receiver.node, 3).await;
    let per_msg = wire_len(4);
    for (i, sender) in senders.iter().enumerate() {
        for _ in 0..=i {
            send_dm(sender, addr, Bytes::from_static(b"abcd"))
                .await
                .unwrap();
        }
    }
    wait_until(SEC, || receiver.processed() == 6).await;
    // `processed` moves at the end of process_message: the counts are already in
    assert_eq!(receiver.node.stats().received(), (6, 6 * per_msg));
    let first = senders.remove(0);
    assert!(first.node.disconnect(addr).await);
    wait_for_connections(&receiver.node, 2).await;
    // the ended reader's counts moved into the node's own: neither lost nor counted twice
    assert_eq!(receiver.node.stats().received(), (6, 6 * per_msg));
    send_dm(&senders[0], addr, Bytes::from_static(b"abcd"))
        .await
        .unwrap();
    wait_until(SEC, || receiver.processed() == 7).await;
    assert_eq!(receiver.node.stats().received(), (7, 7 * per_msg));
    shut_down_all(
        senders
            .iter()
            .map(|s| &s.node)
            .chain([&first.node, &receiver.node]),
    )
    .await;
    assert_eq!(receiver.node.stats().received(), (7, 7 * per_msg));
}
