//! Error / bad-input / user-panic handling, and the logs that report them: ERR-01 .. ERR-08.
//!
//! The panic tests run on a current-thread runtime with a [`LogCapture`] at ERROR level
//! installed, so the engine's ERROR events (user panics must be logged at that level) are seen
//! by the test.

use std::{
    io::{self, ErrorKind},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use pea2pea::{
    Config, Connection, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};
use pea2pea_tests::*;
use tokio::{io::AsyncWriteExt, time::sleep};
use tokio_util::codec::{Decoder, Encoder};
use tracing::Level;

const SEC: Duration = Duration::from_secs(1);

/// Asserts that a user panic was logged at ERROR level, in a line that names the node (ERR-08:
/// whatever the level, the node's span is on).
fn assert_panic_logged(capture: &LogCapture) {
    let errors = capture.lines_at(Level::ERROR);
    assert!(
        errors
            .iter()
            .any(|line| line.contains("panic") && line.contains("node{name=")),
        "no ERROR event names the node and mentions the panic: {errors:?}"
    );
}

/// A handshake that counts its calls and then panics.
#[derive(Clone)]
struct PanickyHandshake {
    node: Node,
    calls: Arc<AtomicUsize>,
}

impl Pea2Pea for PanickyHandshake {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Handshake for PanickyHandshake {
    async fn perform_handshake(&self, _: Connection) -> io::Result<Connection> {
        self.calls.fetch_add(1, SeqCst);
        panic!("handshake boom");
    }
}

// ERR-01: a panicking handshake: the node survives and runs the next handshake too.
#[tokio::test]
async fn err_01_handshake_panic() {
    let (capture, _guard) = LogCapture::install(Level::ERROR);
    let node = PanickyHandshake {
        node: Node::new(test_config()),
        calls: Default::default(),
    };
    node.enable_handshake().await;
    let addr = start_listening(&node.node).await;
    for round in 1..=2 {
        let mut raw = raw_connect(addr).await;
        wait_until(SEC, || node.calls.load(SeqCst) == round).await;
        assert_closed_within(&mut raw, SEC).await;
        wait_until(SEC, || node.node.num_connecting() == 0).await;
        assert_eq!(node.node.num_connected(), 0);
    }
    assert_panic_logged(&capture);
    node.node.shut_down().await;
}

/// TestCodec, except that decoding the payload "boom" panics.
struct PanickyDecoder;

impl Decoder for PanickyDecoder {
    type Item = Bytes;
    type Error = io::Error;
    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        let msg = TestCodec.decode(src)?;
        if msg.as_deref() == Some(b"boom") {
            panic!("decoder boom");
        }
        Ok(msg)
    }
}

/// TestCodec, except that encoding the payload "boom" panics.
struct PanickyEncoder;

impl Encoder<Bytes> for PanickyEncoder {
    type Error = io::Error;
    fn encode(&mut self, msg: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        if &msg[..] == b"boom" {
            panic!("encoder boom");
        }
        TestCodec.encode(msg, dst)
    }
}

/// Panics in the decoder (PanickyDecoder) or in process_message, per `in_process`; encodes
/// with PanickyEncoder; its hooks panic on the first call when `panic_hooks` is set.
#[derive(Clone, Default)]
struct Panicky {
    node: Option<Node>,
    in_process: bool,
    panic_hooks: bool,
    processed: Arc<Mutex<Vec<Bytes>>>,
    connects: Arc<AtomicUsize>,
    disconnects: Arc<AtomicUsize>,
    origins: Arc<Mutex<Vec<DisconnectOrigin>>>,
}

impl Panicky {
    fn new() -> Self {
        Self {
            node: Some(Node::new(test_config())),
            ..Default::default()
        }
    }
}

impl Pea2Pea for Panicky {
    fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }
}

impl Reading for Panicky {
    type Message = Bytes;
    type Codec = PanickyDecoder;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> PanickyDecoder {
        PanickyDecoder
    }

    async fn process_message(&self, _: SocketAddr, message: Bytes) {
        // with `in_process`, "boom" never reaches here through the decoder: it is sent as
        // "pboom" and panics here instead
        if self.in_process && &message[..] == b"pboom" {
            panic!("process_message boom");
        }
        self.processed.lock().unwrap().push(message);
    }
}

impl Writing for Panicky {
    type Message = Bytes;
    type Codec = PanickyEncoder;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> PanickyEncoder {
        PanickyEncoder
    }
}

impl OnConnect for Panicky {
    async fn on_connect(&self, _: SocketAddr) {
        if self.connects.fetch_add(1, SeqCst) == 0 && self.panic_hooks {
            panic!("on_connect boom");
        }
    }
}

impl OnDisconnect for Panicky {
    async fn on_disconnect(&self, _: SocketAddr, origin: DisconnectOrigin) {
        self.origins.lock().unwrap().push(origin);
        if self.disconnects.fetch_add(1, SeqCst) == 0 && self.panic_hooks {
            panic!("on_disconnect boom");
        }
    }
}

/// Sends `payload` from a fresh raw connection and returns it.
async fn raw_send(addr: SocketAddr, payload: &[u8]) -> tokio::net::TcpStream {
    let mut raw = raw_connect(addr).await;
    raw.write_all(&frame(payload)).await.unwrap();
    raw
}

// ERR-02: a panicking decoder: that connection is torn down, the node survives and the next
// connection decodes fine.
#[tokio::test]
async fn err_02_decoder_panic() {
    let (capture, _guard) = LogCapture::install(Level::ERROR);
    let node = Panicky::new();
    node.enable_reading().await;
    let addr = start_listening(node.node()).await;

    let mut bad = raw_send(addr, b"boom").await;
    assert_closed_within(&mut bad, SEC).await;
    wait_for_connections(node.node(), 0).await;

    let _good = raw_send(addr, b"fine").await;
    wait_until(SEC, || node.processed.lock().unwrap().len() == 1).await;
    assert_eq!(node.node().num_connected(), 1);
    assert_panic_logged(&capture);
    node.node().shut_down().await;
}

// ERR-03: a panicking process_message: that connection is torn down (gone from the active
// set), the node survives and the next connection is processed.
#[tokio::test]
async fn err_03_process_message_panic() {
    let (capture, _guard) = LogCapture::install(Level::ERROR);
    let node = Panicky {
        in_process: true,
        ..Panicky::new()
    };
    node.enable_reading().await;
    let addr = start_listening(node.node()).await;

    let mut bad = raw_send(addr, b"pboom").await;
    let bad_addr = bad.local_addr().unwrap();
    assert_closed_within(&mut bad, SEC).await;
    wait_for_connections(node.node(), 0).await;
    assert!(!node.node().is_connected(bad_addr));

    let _good = raw_send(addr, b"fine").await;
    wait_until(SEC, || node.processed.lock().unwrap().len() == 1).await;
    assert_panic_logged(&capture);
    node.node().shut_down().await;
}

// ERR-04: a panicking encoder: unicast is Ok, its confirmation resolves (not as a success),
// disconnect works, and the next round works.
#[tokio::test]
async fn err_04_encoder_panic() {
    let (capture, _guard) = LogCapture::install(Level::ERROR);
    let node = Panicky::new();
    node.enable_writing().await;
    let peer = Peer::new(test_config());
    peer.enable_reading().await;
    let addr = start_listening(&peer.node).await;
    node.node().connect(addr).await.unwrap();

    let conf = node.unicast(addr, Bytes::from_static(b"boom")).unwrap();
    let outcome = tokio::time::timeout(SEC, conf)
        .await
        .expect("the confirmation hung after an encoder panic");
    assert!(
        !matches!(outcome, Ok(Ok(()))),
        "a message whose encoding panicked was confirmed as flushed"
    );
    tokio::time::timeout(SEC, node.node().disconnect(addr))
        .await
        .expect("disconnect hung");
    wait_until(SEC, || !node.node().is_connected(addr)).await;
    assert_panic_logged(&capture);

    // the next round
    wait_until(SEC, || peer.node.num_connected() == 0).await;
    node.node().connect(addr).await.unwrap();
    send_dm(&node, addr, Bytes::from_static(b"fine"))
        .await
        .unwrap();
    wait_until(SEC, || peer.processed() == 1).await;
    assert_eq!(peer.payloads(), vec![Bytes::from_static(b"fine")]);
    shut_down_all([node.node(), &peer.node]).await;
}

// ERR-05: a panicking on_connect: the node survives, that connection is disconnected with
// origin OnConnectAbort, and the next connection's hook fires.
#[tokio::test]
async fn err_05_on_connect_panic() {
    let (capture, _guard) = LogCapture::install(Level::ERROR);
    // only on_connect panics (on_disconnect acts as if it had panicked once already), so the
    // on_disconnect hook just records the origin
    let node = Panicky {
        panic_hooks: true,
        disconnects: Arc::new(AtomicUsize::new(1)),
        ..Panicky::new()
    };
    node.enable_on_connect().await;
    node.enable_on_disconnect().await;
    let (p1, p2) = (Node::new(test_config()), Node::new(test_config()));
    let (a1, a2) = (start_listening(&p1).await, start_listening(&p2).await);

    node.node().connect(a1).await.unwrap();
    wait_until(SEC, || !node.node().is_connected(a1)).await;
    wait_until(SEC, || !node.origins.lock().unwrap().is_empty()).await;
    assert_eq!(
        *node.origins.lock().unwrap(),
        vec![DisconnectOrigin::OnConnectAbort]
    );

    node.node().connect(a2).await.unwrap();
    wait_until(SEC, || node.connects.load(SeqCst) == 2).await;
    sleep(Duration::from_millis(100)).await;
    assert!(node.node().is_connected(a2));
    assert_panic_logged(&capture);
    shut_down_all([node.node(), &p1, &p2]).await;
}

// ERR-06: a panicking on_disconnect: the disconnect still completes, the next round works,
// and the panic is logged at ERROR level.
#[tokio::test]
async fn err_06_on_disconnect_panic() {
    let (capture, _guard) = LogCapture::install(Level::ERROR);
    let node = Panicky {
        panic_hooks: true,
        // on_connect doesn't panic here
        connects: Arc::new(AtomicUsize::new(1)),
        ..Panicky::new()
    };
    node.enable_on_connect().await;
    node.enable_on_disconnect().await;
    let peer = Node::new(test_config());
    let addr = start_listening(&peer).await;

    for _ in 0..2 {
        node.node().connect(addr).await.unwrap();
        let done = tokio::time::timeout(SEC, node.node().disconnect(addr))
            .await
            .expect("disconnect hung on a panicking hook");
        assert!(done);
        assert!(!node.node().is_connected(addr));
        assert_eq!(node.node().num_connected(), 0);
    }
    assert_eq!(node.disconnects.load(SeqCst), 2);
    assert_eq!(
        *node.origins.lock().unwrap(),
        vec![DisconnectOrigin::User; 2]
    );
    assert_panic_logged(&capture);
    shut_down_all([node.node(), &peer]).await;
}

// ERR-07: a cleanup guard of a dead connection never tears down a newer connection to the same
// address: rapid reconnects after local and peer-side teardowns leave exactly one
// on_disconnect per teardown and a live final connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn err_07_stale_guard_spares_new_connection() {
    let node = Peer::new(test_config());
    node.enable_all().await;
    let peer = Peer::new(test_config());
    peer.enable_rw().await;
    let addr = start_listening(&peer.node).await;

    /// Connects, retrying while the previous connection is still being torn down.
    async fn reconnect(node: &Node, addr: SocketAddr) {
        let start = std::time::Instant::now();
        loop {
            match node.connect(addr).await {
                Ok(()) => return,
                Err(e) if e.kind() == ErrorKind::AlreadyExists && start.elapsed() < SEC => {
                    tokio::task::yield_now().await
                }
                Err(e) => panic!("reconnect failed: {e}"),
            }
        }
    }

    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        reconnect(&node.node, addr).await;
        // `connect` is a local success (CONN-04): wait until the peer has registered this
        // connection too, or a later round could see it late and take it for its own
        wait_until(SEC, || peer.node.num_connected() == 1).await;
        if round % 2 == 0 {
            assert!(node.node.disconnect(addr).await);
        } else {
            // the peer hangs up; our Reading notices and tears the connection down
            let theirs = peer.node.connected_addrs()[0];
            assert!(peer.node.disconnect(theirs).await);
        }
        wait_until(SEC, || peer.node.num_connected() == 0).await;
    }
    reconnect(&node.node, addr).await;
    sleep(Duration::from_millis(300)).await;
    assert!(
        node.node.is_connected(addr),
        "a stale guard tore down the new connection"
    );
    send_dm(&node, addr, Bytes::from_static(b"alive"))
        .await
        .unwrap();
    let origins = node.disconnect_origins();
    assert_eq!(origins.len(), ROUNDS, "unexpected disconnects: {origins:?}");
    for (round, origin) in origins.iter().enumerate() {
        let expected = if round % 2 == 0 {
            DisconnectOrigin::User
        } else {
            DisconnectOrigin::Reading
        };
        assert_eq!(*origin, expected, "round {round}: {origins:?}");
    }
    shut_down_all([&node.node, &peer.node]).await;
}

/// TestCodec, except that decoding "slow" blocks its thread for 300ms (and flags it).
struct SlowDecoder {
    started: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl Decoder for SlowDecoder {
    type Item = Bytes;
    type Error = io::Error;
    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Bytes>> {
        let msg = TestCodec.decode(src)?;
        if msg.as_deref() == Some(b"slow") {
            self.started.store(true, SeqCst);
            // a blocking decode: the task running it can't be cancelled until it returns
            std::thread::sleep(Duration::from_millis(300));
            self.finished.store(true, SeqCst);
        }
        Ok(msg)
    }
}

/// A reader with [`SlowDecoder`] that records its disconnect origins.
#[derive(Clone)]
struct SlowReader {
    node: Node,
    started: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
    origins: Arc<Mutex<Vec<DisconnectOrigin>>>,
}

impl Pea2Pea for SlowReader {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for SlowReader {
    type Message = Bytes;
    type Codec = SlowDecoder;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> SlowDecoder {
        SlowDecoder {
            started: self.started.clone(),
            finished: self.finished.clone(),
        }
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {}
}

impl OnDisconnect for SlowReader {
    async fn on_disconnect(&self, _: SocketAddr, origin: DisconnectOrigin) {
        self.origins.lock().unwrap().push(origin);
    }
}

// ERR-07: the old connection's reader, still busy when its connection is torn down and
// replaced, must not tear down the new connection when its cleanup guard finally runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn err_07_busy_old_reader_spares_new_connection() {
    let node = SlowReader {
        node: Node::new(test_config()),
        started: Default::default(),
        finished: Default::default(),
        origins: Default::default(),
    };
    node.enable_reading().await;
    node.enable_on_disconnect().await;
    let peer = Peer::new(test_config());
    peer.enable_rw().await;
    let addr = start_listening(&peer.node).await;
    node.node.connect(addr).await.unwrap();
    wait_for_connections(&peer.node, 1).await;

    let theirs = peer.node.connected_addrs()[0];
    send_dm(&peer, theirs, Bytes::from_static(b"slow"))
        .await
        .unwrap();
    wait_until(SEC, || node.started.load(SeqCst)).await;
    // replace the connection while the old reader is stuck in its decode
    assert!(node.node.disconnect(addr).await);
    let start = std::time::Instant::now();
    while let Err(e) = node.node.connect(addr).await {
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert!(start.elapsed() < SEC, "couldn't reconnect");
        tokio::task::yield_now().await;
    }
    // the old reader finishes its poll and is then dropped; give its cleanup time to run
    wait_until(SEC, || node.finished.load(SeqCst)).await;
    sleep(Duration::from_millis(200)).await;

    assert!(
        node.node.is_connected(addr),
        "a stale guard tore down the new connection"
    );
    assert_eq!(*node.origins.lock().unwrap(), vec![DisconnectOrigin::User]);
    shut_down_all([&node.node, &peer.node]).await;
}

// ERR-08: at WARN level (as with RUST_LOG=warn) the engine's warning about bad data names the
// node and the peer: the node's and the connection's spans are on whenever warnings are.
#[tokio::test]
async fn err_08_warnings_name_the_node_at_warn_level() {
    let (capture, _guard) = LogCapture::install(Level::WARN);
    let node = FullNoopNode::new(Config {
        name: Some("warned-node".into()),
        ..test_config()
    });
    node.enable_reading().await;
    let addr = start_listening(&node.node).await;
    let mut peer = raw_connect(addr).await;
    let peer_addr = peer.local_addr().unwrap();
    peer.write_all(&[0, 0]).await.unwrap(); // a zero-length frame: TestCodec's invalid data
    assert_closed_within(&mut peer, SEC).await;

    let warnings = capture.lines_at(Level::WARN);
    let line = warnings
        .iter()
        .find(|line| line.contains("invalid data"))
        .unwrap_or_else(|| panic!("no warning about the invalid data: {:?}", capture.lines()));
    assert!(line.contains("node{name=warned-node}"), "{line}");
    assert!(
        line.contains(&format!("conn{{addr={peer_addr}}}")),
        "{line}"
    );
    assert!(
        capture
            .lines()
            .iter()
            .all(|line| !line.contains("DEBUG") && !line.contains(" INFO")),
        "the level filter let lower levels through: {:?}",
        capture.lines()
    );
    node.node.shut_down().await;
}
