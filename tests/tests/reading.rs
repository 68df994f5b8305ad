//! Reading: RD-01 .. RD-09.

use std::{
    collections::HashMap,
    io::ErrorKind,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{OnConnect, OnDisconnect, Reading, Writing},
};
use pea2pea_tests::{raw::read_frame, *};
use tokio::{io::AsyncWriteExt, time::sleep};

const SEC: Duration = Duration::from_secs(1);

/// A sender (Writing) and a receiver (Reading + hooks), connected sender -> receiver.

// RD-01: messages reach process_message in FIFO order.
#[tokio::test]
async fn rd_01_fifo_order() {
    let (sender, receiver, addr) = Peer::sender_and_receiver().await;
    let msgs: Vec<Bytes> = (0..60u32)
        .map(|i| Bytes::from(i.to_be_bytes().to_vec()))
        .collect();
    let confirmations: Vec<_> = msgs
        .iter()
        .map(|m| sender.unicast(addr, m.clone()).unwrap())
        .collect();
    for c in confirmations {
        c.await.unwrap().unwrap();
    }
    wait_until(SEC, || receiver.processed() == 60).await;
    assert_eq!(receiver.payloads(), msgs);
    shut_down_all([&sender.node, &receiver.node]).await;
}

// RD-01: process_message may unicast and await the confirmation: an echo node replies to each
// message it hasn't seen before, and nothing else.
#[tokio::test]
async fn rd_01_echo_from_process_message() {
    let echo = Peer::new(test_config());
    echo.enable_rw().await;
    echo.set_echo();
    let addr = start_listening(&echo.node).await;
    let shouter = Peer::new(test_config());
    shouter.enable_rw().await;
    shouter.node.connect(addr).await.unwrap();

    let words = [&b"one"[..], b"two", b"three"];
    for w in words {
        shouter.unicast_fast(addr, Bytes::from_static(w)).unwrap();
    }
    wait_until(SEC, || shouter.processed() == 3).await;
    let expected: Vec<Bytes> = words.iter().map(|w| Bytes::from_static(w)).collect();
    assert_eq!(shouter.payloads(), expected);

    // repeats are not echoed
    for w in words {
        shouter.unicast_fast(addr, Bytes::from_static(w)).unwrap();
    }
    wait_until(SEC, || echo.processed() == 6).await;
    sleep(Duration::from_millis(200)).await;
    assert_eq!(shouter.processed(), 3);
    shut_down_all([&echo.node, &shouter.node]).await;
}

// RD-02: a decode error (a zero-length frame) disconnects the reader within 1s, origin
// Reading; once the writer disconnects too, unicast_fast finds no connection.
#[tokio::test]
async fn rd_02_decode_error_disconnects() {
    let (sender, receiver, addr) = Peer::sender_and_receiver().await;
    send_dm(&sender, addr, Bytes::new()).await.unwrap();
    wait_for_connections(&receiver.node, 0).await;
    assert_eq!(
        receiver.disconnect_origins(),
        vec![DisconnectOrigin::Reading]
    );
    assert_eq!(receiver.processed(), 0);

    assert!(sender.node.disconnect(addr).await);
    let err = sender
        .unicast_fast(addr, Bytes::from_static(b"late"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    shut_down_all([&sender.node, &receiver.node]).await;
}

// RD-03: the peer's shutdown (EOF) disconnects the reader within 1s.
#[tokio::test]
async fn rd_03_peer_eof_disconnects() {
    let (sender, receiver, _) = Peer::sender_and_receiver().await;
    sender.node.shut_down().await;
    wait_for_connections(&receiver.node, 0).await;
    assert_eq!(
        receiver.disconnect_origins(),
        vec![DisconnectOrigin::Reading]
    );
    receiver.node.shut_down().await;
}

// RD-04: without Reading nothing is delivered, yet the sender's confirmations are Ok.
#[tokio::test]
async fn rd_04_no_reading_no_delivery() {
    let receiver = FullNoopNode::new(test_config());
    let addr = start_listening(&receiver.node).await;
    let sender = Peer::new(test_config());
    sender.enable_writing().await;
    sender.node.connect(addr).await.unwrap();
    for _ in 0..3 {
        send_dm(&sender, addr, Bytes::from_static(b"into the void"))
            .await
            .unwrap();
    }
    sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.node.stats().received(), (0, 0));
    assert_eq!(receiver.node.num_connected(), 1);
    shut_down_all([&sender.node, &receiver.node]).await;
}

/// A reader with a queue depth of 1 whose first process_message call blocks on a gate.
#[derive(Clone)]
struct SlowReader<const BACKPRESSURE: bool> {
    node: Node,
    gate: Gate,
    first: Arc<AtomicBool>,
    processed: Arc<Mutex<Vec<Bytes>>>,
}

impl<const BP: bool> SlowReader<BP> {
    async fn listening() -> (Self, SocketAddr) {
        let node = Self {
            node: Node::new(test_config()),
            gate: Gate::new(),
            first: Arc::new(AtomicBool::new(true)),
            processed: Default::default(),
        };
        node.enable_reading().await;
        let addr = start_listening(&node.node).await;
        (node, addr)
    }

    fn processed(&self) -> usize {
        self.processed.lock().unwrap().len()
    }
}

impl<const BP: bool> Pea2Pea for SlowReader<BP> {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl<const BP: bool> Reading for SlowReader<BP> {
    const MESSAGE_QUEUE_DEPTH: usize = 1;
    const BACKPRESSURE: bool = BP;
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }

    async fn process_message(&self, _: SocketAddr, message: Bytes) {
        if self.first.swap(false, SeqCst) {
            self.gate.wait().await;
        }
        self.processed.lock().unwrap().push(message);
    }
}

/// Sends 25 numbered messages with unicast_fast.
async fn send_25(addr: SocketAddr) -> Peer {
    let sender = Peer::new(test_config());
    sender.enable_writing().await;
    sender.node.connect(addr).await.unwrap();
    for i in 0..25u8 {
        sender.unicast_fast(addr, Bytes::from(vec![i])).unwrap();
    }
    sender
}

// RD-05: BACKPRESSURE = false with a queue of 1: the surplus is dropped silently, though every
// message is counted as received (at decode).
#[tokio::test]
async fn rd_05_no_backpressure_drops_surplus() {
    let (reader, addr) = SlowReader::<false>::listening().await;
    let sender = send_25(addr).await;
    wait_until(SEC, || reader.node.stats().received().0 == 25).await;
    reader.gate.open();
    wait_until(SEC, || reader.processed() >= 1).await;
    sleep(Duration::from_millis(300)).await;
    let processed = reader.processed();
    assert!(
        processed < 25,
        "nothing was dropped ({processed} processed)"
    );
    assert_eq!(
        reader.node.num_connected(),
        1,
        "dropping must not disconnect"
    );
    shut_down_all([&sender.node, &reader.node]).await;
}

// RD-06: BACKPRESSURE = true never drops: the reader stops decoding while the queue is full,
// and every message is processed, in order, once the consumer resumes.
#[tokio::test]
async fn rd_06_backpressure_never_drops() {
    let (reader, addr) = SlowReader::<true>::listening().await;
    let sender = send_25(addr).await;
    wait_until(SEC, || reader.node.stats().received().0 >= 1).await;
    sleep(Duration::from_millis(300)).await;
    let received = reader.node.stats().received().0;
    assert!(received < 25, "the reader kept decoding into a full queue");

    reader.gate.open();
    wait_until(SEC, || reader.processed() == 25).await;
    let expected: Vec<Bytes> = (0..25u8).map(|i| Bytes::from(vec![i])).collect();
    assert_eq!(*reader.processed.lock().unwrap(), expected);
    assert_eq!(reader.node.stats().received().0, 25);
    shut_down_all([&sender.node, &reader.node]).await;
}

/// A reader with the given idle timeout, recording disconnect origins.
#[derive(Clone)]
struct IdleReader<const IDLE_MS: u64> {
    node: Node,
    origins: Arc<Mutex<Vec<DisconnectOrigin>>>,
}

impl<const IDLE_MS: u64> IdleReader<IDLE_MS> {
    async fn listening() -> (Self, SocketAddr) {
        let node = Self {
            node: Node::new(test_config()),
            origins: Default::default(),
        };
        node.enable_reading().await;
        node.enable_on_disconnect().await;
        let addr = start_listening(&node.node).await;
        (node, addr)
    }
}

impl<const IDLE_MS: u64> Pea2Pea for IdleReader<IDLE_MS> {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl<const IDLE_MS: u64> Reading for IdleReader<IDLE_MS> {
    const IDLE_TIMEOUT_MS: u64 = IDLE_MS;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {}
}

impl<const IDLE_MS: u64> OnDisconnect for IdleReader<IDLE_MS> {
    async fn on_disconnect(&self, _: SocketAddr, origin: DisconnectOrigin) {
        self.origins.lock().unwrap().push(origin);
    }
}

// RD-07: a silent peer is dropped after about IDLE_TIMEOUT_MS (250): not before 200ms, within
// about 1s; only idle_timeouts counts it.
#[tokio::test]
async fn rd_07_idle_timeout_drops_silent_peer() {
    let (reader, addr) = IdleReader::<250>::listening().await;
    let silent = Node::new(test_config());
    silent.connect(addr).await.unwrap();
    let start = Instant::now();
    wait_for_connections(&reader.node, 1).await;
    wait_until(Duration::from_millis(1200), || {
        reader.node.num_connected() == 0
    })
    .await;
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(200),
        "dropped after {elapsed:?}"
    );

    let h = HeuristicsSnapshot::of(&reader.node);
    assert_eq!(h.idle_timeouts, 1);
    assert_eq!(h.handshake_timeouts, 0);
    assert_eq!(h.write_timeouts, 0);
    assert_eq!(
        *reader.origins.lock().unwrap(),
        vec![DisconnectOrigin::Reading]
    );
    shut_down_all([&silent, &reader.node]).await;
}

// RD-07: every received frame restarts the idle timer.
#[tokio::test]
async fn rd_07_idle_timer_restarts_on_each_frame() {
    let (reader, addr) = IdleReader::<250>::listening().await;
    let mut raw = raw_connect(addr).await;
    wait_for_connections(&reader.node, 1).await;
    // 7 frames 100ms apart: 700ms in total, well past one idle period
    for _ in 0..7 {
        raw.write_all(&frame(b"tick")).await.unwrap();
        sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reader.node.num_connected(), 1, "dropped despite traffic");
    assert_eq!(reader.node.heuristics().idle_timeouts(), 0);
    // silence now
    wait_until(SEC, || reader.node.num_connected() == 0).await;
    assert_eq!(reader.node.heuristics().idle_timeouts(), 1);
    reader.node.shut_down().await;
}

// RD-07: IDLE_TIMEOUT_MS = 0 disables the idle timeout.
#[tokio::test]
async fn rd_07_zero_idle_timeout_disables_it() {
    let (reader, addr) = IdleReader::<0>::listening().await;
    let silent = Node::new(test_config());
    silent.connect(addr).await.unwrap();
    wait_for_connections(&reader.node, 1).await;
    sleep(Duration::from_millis(600)).await;
    assert_eq!(reader.node.num_connected(), 1);
    assert_eq!(reader.node.heuristics().idle_timeouts(), 0);
    shut_down_all([&silent, &reader.node]).await;
}

/// Replies to every message, recording whether its source was connected at that point.
#[derive(Clone)]
struct Replier {
    node: Node,
    source_connected: Arc<Mutex<Vec<bool>>>,
}

impl Pea2Pea for Replier {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for Replier {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, source: SocketAddr, message: Bytes) {
        let connected = self.node.is_connected(source);
        self.source_connected.lock().unwrap().push(connected);
        send_dm(self, source, message).await.unwrap();
    }
}

impl Writing for Replier {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

// RD-08: Reading starts only once the connection is registered: even a frame sent right with
// the TCP connect finds its source connected, and the reply goes through.
#[tokio::test]
async fn rd_08_process_message_sees_registered_connection() {
    let node = Replier {
        node: Node::new(test_config()),
        source_connected: Default::default(),
    };
    node.enable_reading().await;
    node.enable_writing().await;
    let addr = start_listening(&node.node).await;
    for i in 0..3u8 {
        let mut raw = raw_connect(addr).await;
        raw.write_all(&frame(&[i])).await.unwrap();
        assert_eq!(read_frame(&mut raw, SEC).await, vec![i]);
    }
    assert_eq!(*node.source_connected.lock().unwrap(), vec![true; 3]);
    node.node.shut_down().await;
}

/// Tracks how many process_message calls run at once per source; a message "block" waits on
/// `gate`. on_connect waits on `connect_gate` when `hold_on_connect` is set. The initial read
/// buffer is tiny (16 bytes).
#[derive(Clone, Default)]
struct Tracker {
    node: Option<Node>,
    gate: Gate,
    connect_gate: Gate,
    hold_on_connect: Arc<AtomicBool>,
    on_connect_done: Arc<AtomicBool>,
    in_flight: Arc<Mutex<HashMap<SocketAddr, usize>>>,
    max_in_flight: Arc<AtomicUsize>,
    processed: Arc<Mutex<Vec<(SocketAddr, Bytes)>>>,
}

impl Tracker {
    async fn listening() -> (Self, SocketAddr) {
        let node = Self {
            node: Some(Node::new(test_config())),
            ..Default::default()
        };
        node.enable_reading().await;
        node.enable_on_connect().await;
        let addr = start_listening(node.node()).await;
        (node, addr)
    }

    fn processed_from(&self, source: SocketAddr) -> usize {
        let processed = self.processed.lock().unwrap();
        processed.iter().filter(|(s, _)| *s == source).count()
    }
}

impl Pea2Pea for Tracker {
    fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }
}

impl Reading for Tracker {
    const INITIAL_BUFFER_SIZE: usize = 16;
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }

    async fn process_message(&self, source: SocketAddr, message: Bytes) {
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            let n = in_flight.entry(source).or_default();
            *n += 1;
            self.max_in_flight.fetch_max(*n, SeqCst);
        }
        if &message[..] == b"block" {
            self.gate.wait().await;
        }
        // leave room for an overlapping call to show up
        sleep(Duration::from_millis(2)).await;
        *self.in_flight.lock().unwrap().get_mut(&source).unwrap() -= 1;
        self.processed.lock().unwrap().push((source, message));
    }
}

impl OnConnect for Tracker {
    async fn on_connect(&self, _: SocketAddr) {
        if self.hold_on_connect.load(SeqCst) {
            self.connect_gate.wait().await;
        }
        self.on_connect_done.store(true, SeqCst);
    }
}

// RD-09: process_message calls are sequential per connection; a blocked one holds up its own
// peer only, not the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rd_09_sequential_per_connection_independent_across() {
    let (node, addr) = Tracker::listening().await;
    let mut slow = raw_connect(addr).await;
    let slow_addr = slow.local_addr().unwrap();
    let mut fast = raw_connect(addr).await;
    let fast_addr = fast.local_addr().unwrap();
    wait_for_connections(node.node(), 2).await;

    slow.write_all(&frame(b"block")).await.unwrap();
    slow.write_all(&frame(b"after")).await.unwrap();
    let mut burst = Vec::new();
    for i in 0..20u8 {
        burst.extend(frame(&[i]));
    }
    fast.write_all(&burst).await.unwrap();

    // the fast peer is served while the slow one is blocked
    wait_until(SEC, || node.processed_from(fast_addr) == 20).await;
    assert_eq!(node.processed_from(slow_addr), 0);
    node.gate.open();
    wait_until(SEC, || node.processed_from(slow_addr) == 2).await;
    assert_eq!(
        node.max_in_flight.load(SeqCst),
        1,
        "overlapping calls for one peer"
    );
    node.node().shut_down().await;
}

// RD-09: process_message runs while on_connect is still running.
#[tokio::test]
async fn rd_09_process_message_overlaps_on_connect() {
    let (node, addr) = Tracker::listening().await;
    node.hold_on_connect.store(true, SeqCst);
    let mut raw = raw_connect(addr).await;
    raw.write_all(&frame(b"hello")).await.unwrap();
    wait_until(SEC, || node.processed.lock().unwrap().len() == 1).await;
    assert!(!node.on_connect_done.load(SeqCst));
    node.connect_gate.open();
    wait_until(SEC, || node.on_connect_done.load(SeqCst)).await;
    node.node().shut_down().await;
}

// RD-09: INITIAL_BUFFER_SIZE is only a starting capacity: a frame far larger than it decodes.
#[tokio::test]
async fn rd_09_initial_buffer_size_is_not_a_limit() {
    let (node, addr) = Tracker::listening().await;
    let mut raw = raw_connect(addr).await;
    let big: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    raw.write_all(&frame(&big)).await.unwrap();
    wait_until(SEC, || node.processed.lock().unwrap().len() == 1).await;
    assert_eq!(&node.processed.lock().unwrap()[0].1[..], &big[..]);
    node.node().shut_down().await;
}
