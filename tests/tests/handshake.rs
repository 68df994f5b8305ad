//! Handshake: HS-01 .. HS-07.

use std::{
    io::{self, ErrorKind},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    Config, Connection, ConnectionSide, Node, Pea2Pea,
    protocols::{Handshake, Reading, Writing},
};
use pea2pea_tests::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::{sleep, timeout},
};

const SEC: Duration = Duration::from_secs(1);

/// A reading node whose handshake waits until the peer has sent something, then fails.
#[derive(Clone)]
struct FailAfterData(Peer);

impl Pea2Pea for FailAfterData {
    fn node(&self) -> &Node {
        &self.0.node
    }
}

impl Handshake for FailAfterData {
    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        // make sure a valid frame is already in the socket when we fail
        self.borrow_stream(&mut conn).readable().await?;
        Err(io::Error::new(ErrorKind::PermissionDenied, "not welcome"))
    }
}

impl Reading for FailAfterData {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, source: SocketAddr, message: Bytes) {
        self.0.process_message(source, message).await
    }
}

// HS-01: a failed handshake never registers the connection: nothing is read (even a valid frame
// already in the socket), the stats stay zero, nothing stays connecting, the socket is closed.
#[tokio::test]
async fn hs_01_failed_handshake_is_never_registered() {
    let node = FailAfterData(Peer::new(test_config()));
    node.enable_handshake().await;
    node.enable_reading().await;
    let addr = start_listening(node.node()).await;

    let mut raw = raw_connect(addr).await;
    raw.write_all(&frame(b"sneaky")).await.unwrap();
    assert_closed_within(&mut raw, SEC).await;

    wait_until(SEC, || node.node().num_connecting() == 0).await;
    sleep(Duration::from_millis(200)).await;
    assert_eq!(node.node().num_connected(), 0);
    assert_eq!(node.0.processed(), 0);
    assert_eq!(node.node().stats().received(), (0, 0));
    assert_eq!(node.node().stats().sent(), (0, 0));
    node.node().shut_down().await;
}

/// Exchanges 8-byte nonces: the initiator sends first, the responder answers.
#[derive(Clone)]
struct NonceNode {
    node: Node,
    nonce: u64,
    peer_nonce: Arc<Mutex<Option<u64>>>,
}

impl NonceNode {
    fn new(nonce: u64) -> Self {
        Self {
            node: Node::new(test_config()),
            nonce,
            peer_nonce: Default::default(),
        }
    }
}

impl Pea2Pea for NonceNode {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Handshake for NonceNode {
    const TIMEOUT_MS: u64 = 50;

    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        let own_side = !conn.side();
        let stream = self.borrow_stream(&mut conn);
        let peer = if own_side == ConnectionSide::Initiator {
            stream.write_u64(self.nonce).await?;
            stream.read_u64().await?
        } else {
            let peer = stream.read_u64().await?;
            stream.write_u64(self.nonce).await?;
            peer
        };
        *self.peer_nonce.lock().unwrap() = Some(peer);
        Ok(conn)
    }
}

// HS-02: only the responder has a handshake: it times out, and both sides end with nothing
// connecting or connected (the initiator's Reading sees the EOF).
#[tokio::test]
async fn hs_02_mismatched_handshake() {
    let responder = NonceNode::new(1);
    responder.enable_handshake().await;
    let addr = start_listening(&responder.node).await;
    let initiator = Peer::new(test_config());
    initiator.enable_reading().await;

    initiator.node.connect(addr).await.unwrap();
    wait_until(Duration::from_millis(500), || {
        let (i, r) = (&initiator.node, &responder.node);
        i.num_connected() + i.num_connecting() + r.num_connected() + r.num_connecting() == 0
    })
    .await;
    assert_eq!(responder.node.heuristics().handshake_timeouts(), 1);
    assert_eq!(*responder.peer_nonce.lock().unwrap(), None);
    shut_down_all([&initiator.node, &responder.node]).await;
}

// HS-02: with both sides enabled, each records the other's nonce.
#[tokio::test]
async fn hs_02_matching_handshake_exchanges_nonces() {
    let a = NonceNode::new(0xA);
    let b = NonceNode::new(0xB);
    a.enable_handshake().await;
    b.enable_handshake().await;
    let addr = start_listening(&b.node).await;
    a.node.connect(addr).await.unwrap();
    wait_for_connections(&b.node, 1).await;
    assert_eq!(*a.peer_nonce.lock().unwrap(), Some(0xB));
    assert_eq!(*b.peer_nonce.lock().unwrap(), Some(0xA));
    shut_down_all([&a.node, &b.node]).await;
}

/// A handshake that waits for one byte the peer never sends.
#[derive(Clone)]
struct WaitsForByte(Node);

impl Pea2Pea for WaitsForByte {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Handshake for WaitsForByte {
    const TIMEOUT_MS: u64 = 100;

    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        self.borrow_stream(&mut conn).read_u8().await?;
        Ok(conn)
    }
}

// HS-03: 100 silent sockets all wait in the handshake at once, then all time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs_03_handshake_timeout_under_flood() {
    let node = WaitsForByte(Node::new(Config {
        max_connections: 100,
        ..test_config()
    }));
    node.enable_handshake().await;
    let addr = start_listening(&node.0).await;

    let dials: Vec<_> = (0..100)
        .map(|_| tokio::spawn(async move { raw_connect(addr).await }))
        .collect();
    let mut sockets = Vec::new();
    for d in dials {
        sockets.push(d.await.unwrap());
    }

    // the 100 handshakes overlap for a short window only (100ms), so sample every ms
    let start = Instant::now();
    let mut max_connecting = 0;
    while max_connecting < 100 && start.elapsed() < Duration::from_secs(3) {
        max_connecting = max_connecting.max(node.0.num_connecting());
        sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(max_connecting, 100, "the handshakes never all overlapped");

    wait_until(SEC, || {
        node.0.num_connecting() + node.0.num_connected() == 0
    })
    .await;
    assert_eq!(node.0.heuristics().handshake_timeouts(), 100);
    node.0.shut_down().await;
}

/// A connector whose handshake fails with a user error, or stalls (then times out).
#[derive(Clone)]
struct UserError {
    node: Node,
    stall: bool,
}

impl Pea2Pea for UserError {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Handshake for UserError {
    const TIMEOUT_MS: u64 = 100;

    async fn perform_handshake(&self, _: Connection) -> io::Result<Connection> {
        if self.stall {
            std::future::pending::<()>().await;
        }
        Err(io::Error::new(ErrorKind::PermissionDenied, "go away"))
    }
}

// HS-04: connect returns the handshake's error unchanged; user errors aren't counted.
#[tokio::test]
async fn hs_04_handshake_error_is_returned_unchanged() {
    let node = UserError {
        node: Node::new(test_config()),
        stall: false,
    };
    node.enable_handshake().await;
    let target = Node::new(test_config());
    let addr = start_listening(&target).await;
    let err = node.node.connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(err.to_string(), "go away");
    assert_eq!(node.node.heuristics().handshake_timeouts(), 0);
    shut_down_all([&node.node, &target]).await;
}

// HS-04: a handshake timeout gives TimedOut and is counted.
#[tokio::test]
async fn hs_04_handshake_timeout_is_timed_out() {
    let node = UserError {
        node: Node::new(test_config()),
        stall: true,
    };
    node.enable_handshake().await;
    let target = Node::new(test_config());
    let addr = start_listening(&target).await;
    let err = timeout(SEC, node.node.connect(addr))
        .await
        .expect("the handshake timeout didn't fire")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(node.node.heuristics().handshake_timeouts(), 1);
    assert_eq!(node.node.num_connecting(), 0);
    shut_down_all([&node.node, &target]).await;
}

/// The key [`XorStream`] masks with here.
const XOR: u8 = 0xAA;

fn xor(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().map(|b| b ^ XOR).collect()
}

/// How [`StreamUser`]'s handshake treats the stream.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Borrow it, set TCP_NODELAY and exchange one byte.
    Borrow,
    /// Take it and return it wrapped in an [`XorStream`].
    Wrap,
    /// Take it and never return it.
    Keep,
}

#[derive(Clone)]
struct StreamUser {
    peer: Peer,
    mode: Mode,
}

impl StreamUser {
    async fn new(mode: Mode) -> Self {
        let node = Self {
            peer: Peer::new(test_config()),
            mode,
        };
        node.enable_handshake().await;
        node.enable_reading().await;
        node.enable_writing().await;
        node
    }
}

impl Pea2Pea for StreamUser {
    fn node(&self) -> &Node {
        &self.peer.node
    }
}

impl Handshake for StreamUser {
    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        match self.mode {
            Mode::Borrow => {
                let stream = self.borrow_stream(&mut conn);
                stream.set_nodelay(true)?;
                assert!(stream.nodelay()?);
                stream.write_u8(1).await?;
                stream.read_u8().await?;
            }
            Mode::Wrap => {
                let stream = self.take_stream(&mut conn);
                self.return_stream(&mut conn, XorStream::new(stream, XOR));
            }
            Mode::Keep => {
                let _stream = self.take_stream(&mut conn);
            }
        }
        Ok(conn)
    }
}

impl Reading for StreamUser {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, source: SocketAddr, message: Bytes) {
        self.peer.process_message(source, message).await
    }
}

impl Writing for StreamUser {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

// HS-05: a handshake that borrows the stream (and sets socket options) leaves it usable.
#[tokio::test]
async fn hs_05_borrow_stream() {
    let a = StreamUser::new(Mode::Borrow).await;
    let b = StreamUser::new(Mode::Borrow).await;
    let addr = start_listening(b.node()).await;
    a.node().connect(addr).await.unwrap();
    wait_for_connections(b.node(), 1).await;
    let a_addr = b.node().connected_addrs()[0];
    send_dm(&a, addr, Bytes::from_static(b"ping"))
        .await
        .unwrap();
    send_dm(&b, a_addr, Bytes::from_static(b"pong"))
        .await
        .unwrap();
    wait_until(SEC, || a.peer.processed() == 1 && b.peer.processed() == 1).await;
    assert_eq!(a.peer.payloads(), vec![Bytes::from_static(b"pong")]);
    assert_eq!(b.peer.payloads(), vec![Bytes::from_static(b"ping")]);
    shut_down_all([a.node(), b.node()]).await;
}

// HS-05: a stream taken and returned wrapped is what Reading and Writing use: a raw peer that
// speaks the wrapped (XORed) format is understood, and receives wrapped bytes.
#[tokio::test]
async fn hs_05_take_and_return_wrapped_stream() {
    let node = StreamUser::new(Mode::Wrap).await;
    let addr = start_listening(node.node()).await;
    let mut raw = raw_connect(addr).await;
    let raw_addr = raw.local_addr().unwrap();
    wait_for_connections(node.node(), 1).await;

    raw.write_all(&xor(&frame(b"hello"))).await.unwrap();
    wait_until(SEC, || node.peer.processed() == 1).await;
    assert_eq!(node.peer.payloads(), vec![Bytes::from_static(b"hello")]);

    send_dm(&node, raw_addr, Bytes::from_static(b"world"))
        .await
        .unwrap();
    let mut wire = vec![0u8; frame(b"world").len()];
    timeout(SEC, raw.read_exact(&mut wire))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(xor(&wire), frame(b"world"));

    // and two wrapping nodes understand each other
    let other = StreamUser::new(Mode::Wrap).await;
    other.node().connect(addr).await.unwrap();
    send_dm(&other, addr, Bytes::from_static(b"between wrappers"))
        .await
        .unwrap();
    wait_until(SEC, || node.peer.processed() == 2).await;
    assert_eq!(
        node.peer.payloads()[1],
        Bytes::from_static(b"between wrappers")
    );
    shut_down_all([node.node(), other.node()]).await;
}

// HS-05: a taken stream that is never returned fails the connection with an error, no panic.
#[tokio::test]
async fn hs_05_stream_not_returned_fails_cleanly() {
    let node = StreamUser::new(Mode::Keep).await;
    let target = Node::new(test_config());
    let addr = start_listening(&target).await;
    for _ in 0..2 {
        let res = timeout(SEC, node.node().connect(addr))
            .await
            .expect("connect hung");
        assert!(res.is_err(), "a connection without its stream was accepted");
        assert_eq!(node.node().num_connecting(), 0);
        assert_eq!(node.node().num_connected(), 0);
    }
    shut_down_all([node.node(), &target]).await;
}

// HS-06: Reading starts only after the handshake: a frame sent during a stalled handshake is
// processed only once the handshake is released.
#[tokio::test]
async fn hs_06_reading_starts_after_handshake() {
    let node = GatedNode::new(test_config());
    node.enable_handshake().await;
    node.enable_reading().await;
    let addr = start_listening(&node.node).await;
    let mut raw = raw_connect(addr).await;
    raw.write_all(&frame(b"early")).await.unwrap();
    wait_until(SEC, || node.started() == 1).await;
    sleep(Duration::from_millis(300)).await;
    assert_eq!(node.processed.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(node.node.stats().received(), (0, 0));

    node.gate.open();
    wait_until(SEC, || {
        node.processed.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
    node.node.shut_down().await;
}

// HS-06: Writing starts only after the handshake: unicast during it finds no connection.
#[tokio::test]
async fn hs_06_writing_starts_after_handshake() {
    let node = GatedNode::new(test_config());
    node.enable_handshake().await;
    node.enable_writing().await;
    let target = Peer::new(test_config());
    target.enable_reading().await;
    let addr = start_listening(&target.node).await;

    let connect = {
        let n = node.node.clone();
        tokio::spawn(async move { n.connect(addr).await })
    };
    wait_until(SEC, || node.started() == 1).await;
    let err = node
        .unicast(addr, Bytes::from_static(b"too early"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);

    node.gate.open();
    timeout(SEC, connect).await.unwrap().unwrap().unwrap();
    send_dm(&node, addr, Bytes::from_static(b"now"))
        .await
        .unwrap();
    wait_until(SEC, || target.processed() == 1).await;
    assert_eq!(target.payloads(), vec![Bytes::from_static(b"now")]);
    shut_down_all([&node.node, &target.node]).await;
}

/// A node whose handshake leaves a per-connection secret for its codecs, as a Noise node
/// leaves its transport state: `Reading::codec` reads it (`get(..).unwrap()`), and
/// `Writing::codec` takes it out of the map. This works only in the published order.
#[derive(Clone)]
struct SharedSecret {
    peer: Peer,
    secrets: Arc<Mutex<std::collections::HashMap<SocketAddr, u8>>>,
    /// Which codec was built, in order.
    built: Arc<Mutex<Vec<&'static str>>>,
}

impl Pea2Pea for SharedSecret {
    fn node(&self) -> &Node {
        &self.peer.node
    }
}

impl Handshake for SharedSecret {
    async fn perform_handshake(&self, conn: Connection) -> io::Result<Connection> {
        self.secrets.lock().unwrap().insert(conn.addr(), 42);
        Ok(conn)
    }
}

impl Reading for SharedSecret {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, addr: SocketAddr, _: ConnectionSide) -> TestCodec {
        let secret = *self.secrets.lock().unwrap().get(&addr).unwrap();
        assert_eq!(secret, 42);
        self.built.lock().unwrap().push("Reading");
        TestCodec
    }
    async fn process_message(&self, source: SocketAddr, message: Bytes) {
        self.peer.process_message(source, message).await
    }
}

impl Writing for SharedSecret {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, addr: SocketAddr, _: ConnectionSide) -> TestCodec {
        self.secrets.lock().unwrap().remove(&addr).unwrap();
        self.built.lock().unwrap().push("Writing");
        TestCodec
    }
}

// HS-07: after the handshake, Reading's codec is built before Writing's (the published
// lifecycle's order), on both sides of a connection: a handshake's state that Reading::codec
// reads and Writing::codec then removes is found by both, and the connection works.
#[tokio::test]
async fn hs_07_reading_codec_is_built_before_writing_codec() {
    let new = || SharedSecret {
        peer: Peer::new(test_config()),
        secrets: Default::default(),
        built: Default::default(),
    };
    let (dialer, listener) = (new(), new());
    for node in [&dialer, &listener] {
        node.enable_handshake().await;
        node.enable_reading().await;
        node.enable_writing().await;
    }
    listener.peer.set_echo();
    let addr = start_listening(listener.node()).await;

    dialer.node().connect(addr).await.unwrap();
    wait_for_connections(listener.node(), 1).await;
    for node in [&dialer, &listener] {
        assert_eq!(*node.built.lock().unwrap(), ["Reading", "Writing"]);
        assert!(
            node.secrets.lock().unwrap().is_empty(),
            "Writing::codec took the secret"
        );
    }
    send_dm(&dialer, addr, Bytes::from_static(b"ping"))
        .await
        .unwrap();
    wait_until(SEC, || dialer.peer.processed() == 1).await;
    shut_down_all([dialer.node(), listener.node()]).await;
}
