//! Writing: WR-01 .. WR-15 (WR-09 .. WR-12: `unicast_when_ready`, which waits for room; WR-14:
//! answers written by the reader task; WR-15: messages queued past a full batch, which the
//! writer encodes).

use std::{
    io::{self, ErrorKind},
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};
use pea2pea::{
    ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{OnDisconnect, Reading, Writing},
};
use pea2pea_tests::*;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::oneshot,
    time::{sleep, timeout},
};
use tokio_util::codec::Encoder;

const SEC: Duration = Duration::from_secs(1);

/// A confirmation receiver for one unicast.
type Confirmation = oneshot::Receiver<io::Result<()>>;

/// A writer with a deep queue (128), a 200ms write timeout and on_disconnect recording.
#[derive(Clone)]
struct SlowPipe {
    node: Node,
    origins: Arc<Mutex<Vec<DisconnectOrigin>>>,
}

impl Pea2Pea for SlowPipe {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Writing for SlowPipe {
    const MESSAGE_QUEUE_DEPTH: usize = 128;
    const TIMEOUT_MS: u64 = 200;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

impl OnDisconnect for SlowPipe {
    async fn on_disconnect(&self, _: SocketAddr, origin: DisconnectOrigin) {
        self.origins.lock().unwrap().push(origin);
    }
}

/// A [`SlowPipe`] connected with a 4KiB send buffer to a raw peer that never reads (4KiB
/// receive buffer). The listener and accepted stream must stay alive for the test.
async fn blocked_pipe() -> (SlowPipe, SocketAddr, TcpListener, TcpStream) {
    let node = SlowPipe {
        node: Node::new(test_config()),
        origins: Default::default(),
    };
    node.enable_writing().await;
    node.enable_on_disconnect().await;
    let (addr, listener, stream) = raw::connect_to_stalled_reader(&node.node).await;
    (node, addr, listener, stream)
}

/// Queues 32 messages of 60,000 bytes; on a current-thread runtime they are all queued before
/// the writer task gets to run.
fn queue_32_big(node: &SlowPipe, addr: SocketAddr) -> Vec<Confirmation> {
    queue_32(node, addr, 60_000)
}

/// Queues 32 messages of `size` bytes, in one go.
fn queue_32(node: &SlowPipe, addr: SocketAddr, size: usize) -> Vec<Confirmation> {
    (0..32)
        .map(|_| node.unicast(addr, Bytes::from(vec![1u8; size])).unwrap())
        .collect()
}

/// Awaits every confirmation, each within `limit`.
async fn resolve_all(confs: Vec<Confirmation>, limit: Duration) -> Vec<Option<io::Result<()>>> {
    let mut out = Vec::new();
    for c in confs {
        let res = timeout(limit, c).await.expect("a confirmation hung");
        out.push(res.ok());
    }
    out
}

// WR-01: unicast returns once queued; the confirmation waits for the flush.
#[tokio::test]
async fn wr_01_unicast_returns_when_queued() {
    let (node, addr, _l, _s) = blocked_pipe().await;
    let mut confs = queue_32_big(&node, addr);
    // the last message can't be flushed while the peer isn't reading
    sleep(Duration::from_millis(50)).await;
    let last = confs.last_mut().unwrap();
    assert!(
        matches!(last.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
        "resolved before it could be flushed"
    );
    node.node.shut_down().await;
}

// WR-01: the confirmation is Ok(Ok) once the message is flushed.
#[tokio::test]
async fn wr_01_confirmation_ok_after_flush() {
    let receiver = Peer::new(test_config());
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    let sender = Peer::new(test_config());
    sender.enable_writing().await;
    sender.node.connect(addr).await.unwrap();
    let conf = sender.unicast(addr, Bytes::from_static(b"x")).unwrap();
    assert!(matches!(conf.await, Ok(Ok(()))));
    wait_until(SEC, || receiver.processed() == 1).await;
    shut_down_all([&sender.node, &receiver.node]).await;
}

/// A writer like [`SlowPipe`] but with the default (long) write timeout.
#[derive(Clone)]
struct PatientPipe(Node);

impl Pea2Pea for PatientPipe {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Writing for PatientPipe {
    const MESSAGE_QUEUE_DEPTH: usize = 128;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

// WR-01: confirmations of messages caught by a teardown resolve (Err: closed) instead of
// hanging; the ones still queued are Err.
#[tokio::test]
async fn wr_01_teardown_resolves_pending_confirmations() {
    let node = PatientPipe(Node::new(test_config()));
    node.enable_writing().await;
    let (addr, _listener, _stream) = raw::connect_to_stalled_reader(&node.0).await;

    let confs: Vec<_> = (0..32)
        .map(|_| node.unicast(addr, Bytes::from(vec![1u8; 60_000])).unwrap())
        .collect();
    sleep(Duration::from_millis(100)).await;
    assert!(node.0.disconnect(addr).await);
    let results = resolve_all(confs, SEC).await;
    for r in &results {
        assert!(
            matches!(r, None | Some(Ok(()))),
            "unexpected outcome after a teardown: {r:?}"
        );
    }
    assert!(
        results.last().unwrap().is_none(),
        "the last one can't have been flushed"
    );
    node.0.shut_down().await;
}

/// A writer whose queue holds a single message.
#[derive(Clone)]
struct QueueOfOne(Node);

impl Pea2Pea for QueueOfOne {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Writing for QueueOfOne {
    const MESSAGE_QUEUE_DEPTH: usize = 1;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

/// A writer with a queue of one and a 16-byte starting buffer, so that a full queue is
/// written at once rather than taken into the batch in hand.
#[derive(Clone)]
struct TinyBuffer(Node);

impl Pea2Pea for TinyBuffer {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Writing for TinyBuffer {
    const MESSAGE_QUEUE_DEPTH: usize = 1;
    const INITIAL_BUFFER_SIZE: usize = 16;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

// WR-02/WR-04: without Writing enabled, unicast and unicast_fast are Unsupported.
#[tokio::test]
async fn wr_02_unsupported_without_writing() {
    let node = FullNoopNode::new(test_config());
    let target = Node::new(test_config());
    let addr = start_listening(&target).await;
    node.node.connect(addr).await.unwrap();
    let err = node.unicast(addr, Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = node
        .unicast_fast(addr, Bytes::from_static(b"x"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    shut_down_all([&node.node, &target]).await;
}

// WR-02/WR-04: an unknown or disconnected peer is NotConnected for both methods.
#[tokio::test]
async fn wr_02_not_connected() {
    let node = Peer::new(test_config());
    node.enable_writing().await;
    let unknown: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let err = node.unicast(unknown, Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    let err = node
        .unicast_fast(unknown, Bytes::from_static(b"x"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);

    let target = Node::new(test_config());
    let addr = start_listening(&target).await;
    node.node.connect(addr).await.unwrap();
    send_dm(&node, addr, Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert!(node.node.disconnect(addr).await);
    let err = node.unicast(addr, Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    let err = node
        .unicast_fast(addr, Bytes::from_static(b"x"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    shut_down_all([&node.node, &target]).await;
}

// WR-02: a full per-connection queue gives QuotaExceeded, and no other error.
#[tokio::test]
async fn wr_02_queue_full_quota_exceeded() {
    let node = QueueOfOne(Node::new(test_config()));
    node.enable_writing().await;
    let receiver = FullNoopNode::new(test_config());
    let addr = start_listening(&receiver.node).await;
    node.0.connect(addr).await.unwrap();

    let mut quota = 0;
    for _ in 0..10 {
        match node.unicast_fast(addr, Bytes::from_static(b"spam")) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::QuotaExceeded => {
                // the refusal says which peer's queue is full
                assert_eq!(
                    e.to_string(),
                    format!("the outbound queue for {addr} is full")
                );
                quota += 1
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(quota >= 1, "the queue of 1 never filled up");
    shut_down_all([&node.0, &receiver.node]).await;
}

/// Walks WR-03's confirmations: leading Ok(Ok), then the first other outcome must be
/// Ok(Err(TimedOut)); anything after it may be Ok(Err(TimedOut)) or closed.
fn check_write_timeout_outcomes(results: &[Option<io::Result<()>>]) {
    let first_bad = results
        .iter()
        .position(|r| !matches!(r, Some(Ok(()))))
        .expect("every message was flushed to a peer that never reads");
    match &results[first_bad] {
        Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}"),
        other => panic!("the failing batch's message got {other:?}, not Ok(Err(TimedOut))"),
    }
    for r in &results[first_bad..] {
        match r {
            None => {}
            Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::TimedOut),
            Some(Ok(())) => panic!("a message after the failed batch was flushed"),
        }
    }
}

// WR-03: a write timeout reaches the confirmations as Ok(Err(TimedOut)); it is counted, and
// the connection goes away with origin Writing.
#[tokio::test]
async fn wr_03_write_timeout_reaches_confirmations() {
    let (node, addr, _l, _s) = blocked_pipe().await;
    let confs = queue_32_big(&node, addr);
    let results = resolve_all(confs, Duration::from_secs(2)).await;
    check_write_timeout_outcomes(&results);
    assert!(node.node.heuristics().write_timeouts() >= 1);
    wait_until(SEC, || node.node.num_connected() == 0).await;
    wait_until(SEC, || !node.origins.lock().unwrap().is_empty()).await;
    assert_eq!(
        *node.origins.lock().unwrap(),
        vec![DisconnectOrigin::Writing]
    );
    node.node.shut_down().await;
}

// WR-03 on a multi-threaded runtime, where the writer may start on a partial batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wr_03_write_timeout_reaches_confirmations_multi_thread() {
    let (node, addr, _l, _s) = blocked_pipe().await;
    let confs = queue_32_big(&node, addr);
    let results = resolve_all(confs, Duration::from_secs(2)).await;
    check_write_timeout_outcomes(&results);
    wait_until(SEC, || node.node.num_connected() == 0).await;
    assert_eq!(node.node.heuristics().write_timeouts(), 1);
    node.node.shut_down().await;
}

// WR-05: messages queued together are one batch with one outcome and one timeout: all 32 fail
// the same way, together, ~200ms in (not 32 x 200ms). 32 x 12 000 bytes is more than the
// socket buffers take and less than a batch holds (8 x INITIAL_BUFFER_SIZE).
#[tokio::test]
async fn wr_05_batch_shares_outcome_and_timeout() {
    let (node, addr, _l, _s) = blocked_pipe().await;
    let start = Instant::now();
    let confs = queue_32(&node, addr, 12_000);
    let results = resolve_all(confs, Duration::from_secs(2)).await;
    assert!(start.elapsed() < SEC, "the batch didn't share one timeout");
    for r in &results {
        match r {
            Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::TimedOut),
            other => panic!("expected the batch's TimedOut, got {other:?}"),
        }
    }
    assert_eq!(node.node.heuristics().write_timeouts(), 1);
    node.node.shut_down().await;
}

// WR-04: the deprecated broadcast: Unsupported without Writing.
#[tokio::test]
#[allow(deprecated)]
async fn wr_04_broadcast_without_writing_is_unsupported() {
    let node = FullNoopNode::new(test_config());
    let err = node.broadcast(Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    node.node.shut_down().await;
}

// WR-04: the deprecated broadcast queues to every peer and skips (rather than reports) a peer
// whose queue is full.
#[tokio::test]
#[allow(deprecated)]
async fn wr_04_broadcast_skips_failing_peers() {
    let node = QueueOfOne(Node::new(test_config()));
    node.enable_writing().await;
    let mut readers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let r = Peer::new(test_config());
        r.enable_reading().await;
        addrs.push(start_listening(&r.node).await);
        node.0.connect(*addrs.last().unwrap()).await.unwrap();
        readers.push(r);
    }
    // fill the first peer's queue (no await: the writer can't drain it meanwhile)
    node.unicast_fast(addrs[0], Bytes::from_static(b"first"))
        .unwrap();
    node.broadcast(Bytes::from_static(b"all")).unwrap();

    wait_until(SEC, || readers.iter().all(|r| r.processed() == 1)).await;
    sleep(Duration::from_millis(200)).await;
    assert_eq!(readers[0].payloads(), vec![Bytes::from_static(b"first")]);
    assert_eq!(readers[1].payloads(), vec![Bytes::from_static(b"all")]);
    assert_eq!(readers[2].payloads(), vec![Bytes::from_static(b"all")]);
    shut_down_all(readers.iter().map(|r| &r.node).chain([&node.0])).await;
}

// WR-04: the recommended broadcast (connected_addrs + unicast_fast) reaches all 4 peers twice.
#[tokio::test]
async fn wr_04_simple_broadcast() {
    let hub = Peer::new(test_config());
    hub.enable_writing().await;
    let mut readers = Vec::new();
    for _ in 0..4 {
        let r = Peer::new(test_config());
        r.enable_reading().await;
        let addr = start_listening(&r.node).await;
        hub.node.connect(addr).await.unwrap();
        readers.push(r);
    }
    for round in 0..2u8 {
        for addr in hub.node.connected_addrs() {
            hub.unicast_fast(addr, Bytes::from(vec![round])).unwrap();
        }
    }
    wait_until(SEC, || readers.iter().all(|r| r.processed() == 2)).await;
    shut_down_all(readers.iter().map(|r| &r.node).chain([&hub.node])).await;
}

/// Encodes strings with the same framing as [`TestCodec`].
struct StrCodec;

impl Encoder<String> for StrCodec {
    type Error = io::Error;
    fn encode(&mut self, msg: String, dst: &mut BytesMut) -> io::Result<()> {
        dst.put_u16(msg.len() as u16);
        dst.extend_from_slice(msg.as_bytes());
        Ok(())
    }
}

/// A second owner of a node whose Writing impl uses another message type (API misuse).
#[derive(Clone)]
struct Impostor(Node);

impl Pea2Pea for Impostor {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Writing for Impostor {
    type Message = String;
    type Codec = StrCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> StrCodec {
        StrCodec
    }
}

// WR-06: a second wrapper with another message type gets Unsupported, never a panic; the
// real owner keeps working.
#[tokio::test]
async fn wr_06_wrapper_with_other_message_type() {
    let owner = Peer::new(test_config());
    owner.enable_writing().await;
    let impostor = Impostor(owner.node.clone());
    let receiver = Peer::new(test_config());
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    owner.node.connect(addr).await.unwrap();

    let err = impostor.unicast(addr, "wrong".into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = impostor.unicast_fast(addr, "wrong".into()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);

    send_dm(&owner, addr, Bytes::from_static(b"right"))
        .await
        .unwrap();
    wait_until(SEC, || receiver.processed() == 1).await;
    assert_eq!(receiver.payloads(), vec![Bytes::from_static(b"right")]);
    shut_down_all([&owner.node, &receiver.node]).await;
}

// WR-07: after a fast reconnect to the same address, unicast works: the old connection's cleanup
// never removes the new connection's sender. Alternates between a local disconnect and a
// peer-side one (noticed by Reading).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wr_07_fast_reconnect_keeps_new_sender() {
    let node = Peer::new(test_config());
    node.enable_rw().await;
    let peer = Peer::new(test_config());
    peer.enable_rw().await;
    let addr = start_listening(&peer.node).await;

    for round in 0..30 {
        node.node.connect(addr).await.unwrap();
        send_dm(&node, addr, Bytes::from(vec![round as u8; 1]))
            .await
            .unwrap_or_else(|e| panic!("round {round}: unicast after reconnect failed: {e}"));
        wait_until_desc(SEC, "the message to arrive", || {
            peer.processed() == round + 1
        })
        .await;
        if round % 2 == 0 {
            assert!(node.node.disconnect(addr).await);
        } else {
            wait_until_desc(SEC, "peer registers", || peer.node.num_connected() == 1).await;
            let theirs = peer.node.connected_addrs()[0];
            assert!(peer.node.disconnect(theirs).await);
            wait_until_desc(SEC, "EOF noticed", || !node.node.is_connected(addr)).await;
        }
        wait_until_desc(SEC, "peer drops", || peer.node.num_connected() == 0).await;
    }
    shut_down_all([&node.node, &peer.node]).await;
}

// WR-08: a node without Writing can't send, and the peer receives nothing.
#[tokio::test]
async fn wr_08_no_writing_no_sending() {
    let node = FullNoopNode::new(test_config());
    let receiver = Peer::new(test_config());
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    node.node.connect(addr).await.unwrap();
    let err = send_dm(&node, addr, Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.node.stats().received(), (0, 0));
    assert_eq!(receiver.processed(), 0);
    shut_down_all([&node.node, &receiver.node]).await;
}

/// TestCodec, except that encoding "slow" blocks its thread for 300ms (and flags it).
struct SlowEncodeCodec {
    started: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl Encoder<Bytes> for SlowEncodeCodec {
    type Error = io::Error;
    fn encode(&mut self, msg: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        if &msg[..] == b"slow" {
            self.started.store(true, SeqCst);
            // a blocking encode: the task running it can't be cancelled until it returns
            std::thread::sleep(Duration::from_millis(300));
            self.finished.store(true, SeqCst);
        }
        TestCodec.encode(msg, dst)
    }
}

/// A writer with [`SlowEncodeCodec`].
#[derive(Clone)]
struct SlowEncoder {
    node: Node,
    started: Arc<AtomicBool>,
    finished: Arc<AtomicBool>,
}

impl Pea2Pea for SlowEncoder {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Writing for SlowEncoder {
    type Message = Bytes;
    type Codec = SlowEncodeCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> SlowEncodeCodec {
        SlowEncodeCodec {
            started: self.started.clone(),
            finished: self.finished.clone(),
        }
    }
}

// WR-07: the old connection's writer, still busy when its connection is torn down and replaced,
// must not remove the new connection's sender when it finally goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wr_07_stale_writer_cleanup_spares_new_sender() {
    let node = SlowEncoder {
        node: Node::new(test_config()),
        started: Default::default(),
        finished: Default::default(),
    };
    node.enable_writing().await;
    let peer = Peer::new(test_config());
    peer.enable_reading().await;
    let addr = start_listening(&peer.node).await;
    node.node.connect(addr).await.unwrap();

    node.unicast_fast(addr, Bytes::from_static(b"slow"))
        .unwrap();
    wait_until(SEC, || node.started.load(SeqCst)).await;
    // replace the connection while the old writer is stuck in its encode
    assert!(node.node.disconnect(addr).await);
    let start = Instant::now();
    while let Err(e) = node.node.connect(addr).await {
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert!(start.elapsed() < SEC, "couldn't reconnect");
        tokio::task::yield_now().await;
    }
    // the old writer finishes its poll and is then dropped; give its cleanup time to run
    wait_until(SEC, || node.finished.load(SeqCst)).await;
    sleep(Duration::from_millis(100)).await;

    send_dm(&node, addr, Bytes::from_static(b"fresh"))
        .await
        .expect("the new connection's sender is gone");
    wait_until(SEC, || {
        peer.payloads().contains(&Bytes::from_static(b"fresh"))
    })
    .await;
    shut_down_all([&node.node, &peer.node]).await;
}

// ---- unicast_when_ready: WR-09 .. WR-12 ----

/// A writer with a queue of one message and a 300 ms write timeout.
#[derive(Clone)]
struct TightPipe(Node);

impl Pea2Pea for TightPipe {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Writing for TightPipe {
    const MESSAGE_QUEUE_DEPTH: usize = 1;
    const TIMEOUT_MS: u64 = 300;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

/// A reader that records every payload and pauses now and then, so that its sender's socket
/// and queue fill up.
#[derive(Clone)]
struct SlowReader {
    node: Node,
    inbox: Arc<Mutex<Vec<Bytes>>>,
}

impl Pea2Pea for SlowReader {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for SlowReader {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, message: Bytes) {
        let n = {
            let mut inbox = self.inbox.lock().unwrap();
            inbox.push(message);
            inbox.len()
        };
        if n % 64 == 0 {
            sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Message `i`: its number, then filler up to 1000 bytes.
fn numbered(i: u32) -> Bytes {
    let mut msg = BytesMut::with_capacity(1000);
    msg.put_u32(i);
    msg.resize(1000, 0xab);
    msg.freeze()
}

// WR-09: with a queue of one, a 4 KiB send buffer and a reader that pauses, a sender that
// waits for room gets every message through, in order, never refused (`unicast` would be
// refused over and over here: see WR-02).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wr_09_waiting_unicast_delivers_everything_in_order() {
    const N: u32 = 3000;
    let receiver = SlowReader {
        node: Node::new(test_config()),
        inbox: Default::default(),
    };
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    let sender = TightPipe(Node::new(test_config()));
    sender.enable_writing().await;
    sender
        .0
        .connect_using_socket(addr, raw::small_send_buffer_socket())
        .await
        .unwrap();

    let mut last = None;
    for i in 0..N {
        let queued = timeout(10 * SEC, sender.unicast_when_ready(addr, numbered(i)))
            .await
            .expect("a wait for room hung");
        last = Some(queued.unwrap_or_else(|e| panic!("message {i} was refused: {e}")));
    }
    let written = timeout(10 * SEC, last.unwrap())
        .await
        .expect("the last write hung");
    assert!(matches!(written, Ok(Ok(()))), "{written:?}");
    wait_until_10s("every message to arrive", || {
        receiver.inbox.lock().unwrap().len() == N as usize
    })
    .await;
    let inbox = receiver.inbox.lock().unwrap().clone();
    for (i, msg) in inbox.iter().enumerate() {
        assert_eq!(
            msg[..4],
            (i as u32).to_be_bytes(),
            "message {i} is out of order"
        );
    }
    shut_down_all([&sender.0, &receiver.node]).await;
}

// WR-10: a peer that never reads: the waiting sender fails with TimedOut (the write timeout),
// not QuotaExceeded and not an unbounded wait; the connection is torn down (WR-03).
#[tokio::test]
async fn wr_10_waiting_unicast_times_out_when_the_peer_never_reads() {
    let sender = TightPipe(Node::new(test_config()));
    sender.enable_writing().await;
    let listener = raw::small_buffer_listener();
    let addr = listener.local_addr().unwrap();
    sender
        .0
        .connect_using_socket(addr, raw::small_send_buffer_socket())
        .await
        .unwrap();
    let (_never_read, _) = listener.accept().await.unwrap();

    let err = timeout(10 * SEC, async {
        loop {
            if let Err(e) = sender
                .unicast_when_ready(addr, Bytes::from(vec![1u8; 60_000]))
                .await
            {
                return e;
            }
        }
    })
    .await
    .expect("the waiting sender never gave up");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    // the stalled batch's own timeout, which may end just after the sender's wait
    wait_until_10s("the write timeout to be counted", || {
        sender.0.heuristics().write_timeouts() >= 1
    })
    .await;
    wait_until_10s("the connection to be torn down", || {
        !sender.0.is_connected(addr)
    })
    .await;
    sender.0.shut_down().await;
}

/// A [`PatientPipe`]-like writer (10 s write timeout) with a queue of one message, connected
/// with a 4 KiB send buffer to a raw peer that never reads, its queue full. Returns what must
/// stay alive for the test.
async fn full_patient_pipe() -> (QueueOfOne, SocketAddr, TcpListener, TcpStream) {
    let node = QueueOfOne(Node::new(test_config()));
    node.enable_writing().await;
    let listener = raw::small_buffer_listener();
    let addr = listener.local_addr().unwrap();
    node.0
        .connect_using_socket(addr, raw::small_send_buffer_socket())
        .await
        .unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    // the first message fills the socket buffers and the writer stalls on it; the next one
    // fills the queue
    timeout(10 * SEC, async {
        while node
            .unicast_fast(addr, Bytes::from(vec![1u8; 60_000]))
            .is_ok()
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the queue never filled up");
    (node, addr, listener, stream)
}

/// Starts a `unicast_when_ready` on a full queue, and checks that it is still waiting a moment
/// later.
async fn start_waiting(
    node: &QueueOfOne,
    addr: SocketAddr,
) -> tokio::task::JoinHandle<io::Result<Confirmation>> {
    let waiting = tokio::spawn({
        let node = node.clone();
        async move {
            node.unicast_when_ready(addr, Bytes::from_static(b"late"))
                .await
        }
    });
    sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "it returned while the queue was full"
    );
    waiting
}

// WR-11: a sender waiting for room is told as soon as the connection is torn down (BrokenPipe),
// long before the 10 s write timeout; meanwhile `unicast` keeps refusing at once (WR-02).
#[tokio::test]
async fn wr_11_waiting_unicast_fails_promptly_when_the_connection_closes() {
    let (node, addr, _l, _s) = full_patient_pipe().await;
    let waiting = start_waiting(&node, addr).await;
    let err = node.unicast(addr, Bytes::from_static(b"x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded, "{err}");

    assert!(node.0.disconnect(addr).await);
    let err = timeout(5 * SEC, waiting)
        .await
        .expect("the waiting sender was not told of the teardown")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");
    node.0.shut_down().await;
}

// WR-12: a sender waiting for room when the node shuts down gets the ShuttingDown error.
#[tokio::test]
async fn wr_12_waiting_unicast_reports_shutdown() {
    let (node, addr, _l, _s) = full_patient_pipe().await;
    let waiting = start_waiting(&node, addr).await;
    node.0.shut_down().await;
    let err = timeout(5 * SEC, waiting)
        .await
        .expect("the waiting sender was not told of the shutdown")
        .unwrap()
        .unwrap_err();
    assert!(pea2pea::ShuttingDown::caused(&err), "{err}");
}

/// Sends 200 one-byte messages from `sender` to a fresh reader without yielding (on a
/// current-thread runtime the writer task cannot run meanwhile), then checks that the depth
/// refused some and that every accepted one arrives, in order, and is counted as sent.
async fn burst_then_stop<W: Writing<Message = Bytes>>(sender: W) {
    let receiver = Peer::new(test_config());
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    sender.enable_writing().await;
    sender.node().connect(addr).await.unwrap();
    let (mut accepted, mut refused) = (Vec::new(), 0);
    for i in 0..200u8 {
        match sender.unicast_fast(addr, Bytes::from(vec![i])) {
            Ok(()) => accepted.push(Bytes::from(vec![i])),
            Err(e) if e.kind() == ErrorKind::QuotaExceeded => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert!(refused >= 1, "a queue of one never filled up");
    assert!(accepted.len() >= 2, "only {} accepted", accepted.len());
    wait_until(SEC, || receiver.processed() == accepted.len()).await;
    assert_eq!(receiver.payloads(), accepted);
    let sent = accepted.len() as u64;
    wait_until(SEC, || sender.node().stats().sent().0 == sent).await;
    shut_down_all([sender.node(), &receiver.node]).await;
}

// WR-13: a sender that finds the queue full makes room itself, without the writer task: while
// the buffer is small the waiting messages join the batch in hand, past that they are written
// at once. Either way the depth still refuses, and everything accepted arrives in order, even
// when nothing is sent after the last refusal.
#[tokio::test]
async fn wr_13_a_full_queue_is_delivered_after_the_last_send() {
    // a 64 KiB buffer: the queue's messages are held for a larger write
    burst_then_stop(QueueOfOne(Node::new(test_config()))).await;
    // a 16-byte buffer: the queue's messages are written as it fills
    burst_then_stop(TinyBuffer(Node::new(test_config()))).await;
}

// WR-13: a message with a confirmation is never held back: the sender that finds the queue
// full writes it at once, so its confirmation resolves before the writer task has run (this
// current-thread test does not yield between the sends and the check).
#[tokio::test]
async fn wr_13_a_confirmed_message_is_written_when_the_queue_fills() {
    let receiver = Peer::new(test_config());
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    let sender = QueueOfOne(Node::new(test_config()));
    sender.enable_writing().await;
    sender.0.connect(addr).await.unwrap();
    let mut first = sender.unicast(addr, Bytes::from_static(b"1")).unwrap();
    let err = sender.unicast(addr, Bytes::from_static(b"2")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert!(
        matches!(first.try_recv(), Ok(Ok(()))),
        "the confirmed message waited for the writer task"
    );
    wait_until(SEC, || receiver.processed() == 1).await;
    shut_down_all([&sender.0, &receiver.node]).await;
}

// WR-02: a send reaches the connection that is current when it is made: after a disconnect
// and a new connection to the same address, sends go to the new connection (a lookup cached
// by the sending thread must not outlive the connection it found).
#[tokio::test]
async fn wr_02_sends_follow_a_reconnection_to_the_same_address() {
    let receiver = Peer::new(test_config());
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    let sender = Peer::new(test_config());
    sender.enable_writing().await;
    sender.node.connect(addr).await.unwrap();
    sender.unicast_fast(addr, Bytes::from_static(b"1")).unwrap();
    wait_until(SEC, || receiver.processed() == 1).await;
    assert!(sender.node.disconnect(addr).await);
    let err = sender
        .unicast_fast(addr, Bytes::from_static(b"x"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    sender.node.connect(addr).await.unwrap();
    for payload in [&b"2"[..], b"3"] {
        send_dm(&sender, addr, Bytes::from(payload)).await.unwrap();
    }
    wait_until(SEC, || receiver.processed() == 3).await;
    assert_eq!(
        receiver.payloads(),
        [&b"1"[..], b"2", b"3"].map(Bytes::from_static)
    );
    shut_down_all([&sender.node, &receiver.node]).await;
}

/// Answers every message: `count` copies of it back to its sender, then waits at `gate` (for
/// ever, unless the test opens it), or panics if `panic_after` is set.
#[derive(Clone)]
struct Answerer {
    node: Node,
    count: usize,
    gate: Arc<tokio::sync::Semaphore>,
    panic_after: bool,
}

impl Answerer {
    fn new(count: usize, panic_after: bool) -> Self {
        Self {
            node: Node::new(test_config()),
            count,
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            panic_after,
        }
    }
}

impl Pea2Pea for Answerer {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for Answerer {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, source: SocketAddr, message: Bytes) {
        for _ in 0..self.count {
            // a full queue is not waited for here: `unicast_when_ready` would yield
            while self.unicast_fast(source, message.clone()).is_err() {
                tokio::task::yield_now().await;
            }
        }
        assert!(
            !self.panic_after,
            "the answering handler panics (on purpose)"
        );
        let _ = self.gate.acquire().await;
    }
}

impl Writing for Answerer {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

/// Connects a raw peer to a started `Answerer`, sends it one message and reads `count`
/// answers (each within a second).
async fn ask(node: &Answerer, count: usize) -> TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    node.enable_reading().await;
    node.enable_writing().await;
    let addr = start_listening(&node.node).await;
    let mut peer = TcpStream::connect(addr).await.unwrap();
    peer.write_all(&frame(b"ask")).await.unwrap();
    let expected = frame(b"ask");
    let mut answer = vec![0u8; expected.len()];
    for i in 0..count {
        timeout(SEC, peer.read_exact(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("answer {i} of {count} did not come"))
            .unwrap();
        assert_eq!(answer, expected);
    }
    peer
}

// WR-14: what a handler queues for its own connection is written when the reader task's poll
// ends, without the writer task: here the handler never returns (it waits at a gate the test
// keeps shut), and its answer arrives all the same; so do 300 answers (more than the queue's
// depth of 64) queued in one go.
#[tokio::test]
async fn wr_14_a_handler_s_answer_goes_out_while_the_handler_still_runs() {
    for count in [1, 300] {
        let node = Answerer::new(count, false);
        let _peer = ask(&node, count).await;
        assert_eq!(node.node.stats().sent().0, count as u64);
        node.gate.add_permits(1);
        node.node.shut_down().await;
    }
}

// WR-14: a handler that queues an answer and then panics: the answer is written before the
// connection is torn down.
#[tokio::test]
async fn wr_14_an_answer_queued_before_a_panic_is_written() {
    use tokio::io::AsyncReadExt;
    let node = Answerer::new(1, true);
    let mut peer = ask(&node, 1).await;
    // then the connection ends (the panic tears it down)
    let mut rest = Vec::new();
    timeout(SEC, peer.read_to_end(&mut rest))
        .await
        .expect("the connection was not closed after the panic")
        .ok();
    assert!(rest.is_empty(), "unexpected bytes after the answer");
    node.node.shut_down().await;
}

/// [`TestCodec`], except that it refuses a payload starting with "bad" and panics on "boom".
struct PickyEncoder;

impl Encoder<Bytes> for PickyEncoder {
    type Error = io::Error;
    fn encode(&mut self, msg: Bytes, dst: &mut BytesMut) -> io::Result<()> {
        if msg.starts_with(b"bad") {
            return Err(io::Error::new(
                ErrorKind::InvalidInput,
                "PickyEncoder refuses payloads that start with \"bad\"",
            ));
        }
        if &msg[..] == b"boom" {
            panic!("PickyEncoder boom");
        }
        TestCodec.encode(msg, dst)
    }
}

/// A writer whose batches hold 8 KiB (8 x an `INITIAL_BUFFER_SIZE` of 1 KiB), encoding with
/// [`PickyEncoder`], recording its disconnections' origins and close reasons.
#[derive(Clone)]
struct SmallBatches {
    node: Node,
    closed: Arc<Mutex<Vec<Closed>>>,
}

/// A disconnection's origin and close reason.
type Closed = (DisconnectOrigin, Option<String>);

impl Pea2Pea for SmallBatches {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Writing for SmallBatches {
    const INITIAL_BUFFER_SIZE: usize = 1024;
    type Message = Bytes;
    type Codec = PickyEncoder;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> PickyEncoder {
        PickyEncoder
    }
}

impl SmallBatches {
    /// A node with Writing and OnDisconnect enabled.
    async fn new() -> Self {
        let sender = SmallBatches {
            node: Node::new(test_config()),
            closed: Default::default(),
        };
        sender.enable_writing().await;
        sender.enable_on_disconnect().await;
        sender
    }

    /// Waits until the connection ended, and checks that an encoder panic ended it.
    async fn assert_closed_by_encoder_panic(&self) {
        wait_until(10 * SEC, || !self.closed.lock().unwrap().is_empty()).await;
        let closed = self.closed.lock().unwrap().clone();
        let reason = Some("the encoder panicked".to_string());
        assert_eq!(closed, vec![(DisconnectOrigin::Writing, reason)]);
    }
}

impl OnDisconnect for SmallBatches {
    async fn on_disconnect(&self, addr: SocketAddr, origin: DisconnectOrigin) {
        let info = self.node.connection_info(addr);
        let reason = info.and_then(|i| i.close_reason()).map(|r| r.to_string());
        self.closed.lock().unwrap().push((origin, reason));
    }
}

/// A [`SmallBatches`] sender connected to a reading [`Peer`]; returns both and the peer's
/// address.
async fn small_batches_to_a_reader() -> (SmallBatches, Peer, SocketAddr) {
    let receiver = Peer::new(test_config());
    receiver.enable_reading().await;
    let addr = start_listening(&receiver.node).await;
    let sender = SmallBatches::new().await;
    sender.node.connect(addr).await.unwrap();
    (sender, receiver, addr)
}

/// A 1 000-byte payload that starts with `tag` and then carries `i`.
fn tagged(tag: &[u8], i: u32) -> Bytes {
    tagged_len(tag, i, 1000)
}

// WR-15: messages queued past a full batch (8 x INITIAL_BUFFER_SIZE) wait unencoded and are
// encoded by the writer: a burst of 64 through `unicast` and 200 more through
// `unicast_when_ready` (8 times what one batch holds) all arrive, in order, and are counted.
#[tokio::test]
async fn wr_15_a_burst_past_the_batch_bound_arrives_whole_and_in_order() {
    let (sender, receiver, addr) = small_batches_to_a_reader().await;
    let sent: Vec<Bytes> = (0..264).map(|i| tagged(b"m", i)).collect();
    let mut confs = Vec::new();
    for message in &sent[..64] {
        confs.push(sender.unicast(addr, message.clone()).unwrap());
    }
    for message in &sent[64..] {
        confs.push(
            sender
                .unicast_when_ready(addr, message.clone())
                .await
                .unwrap(),
        );
    }
    for (i, conf) in confs.into_iter().enumerate() {
        let outcome = timeout(10 * SEC, conf).await.expect("a confirmation hung");
        assert!(matches!(outcome, Ok(Ok(()))), "message {i}: {outcome:?}");
    }
    wait_until(10 * SEC, || receiver.processed() == sent.len()).await;
    assert!(
        receiver.payloads() == sent,
        "the messages arrived out of order"
    );
    assert_eq!(sender.node.stats().sent(), (264, 264 * 1002));
    assert_eq!(sender.node.heuristics().encode_failures(), 0);
    shut_down_all([&sender.node, &receiver.node]).await;
}

// WR-15: an encoder error at the send is the sender's (returned, not counted); for a message
// that waited unencoded behind a full batch, it reaches that message's confirmation, is
// counted in `encode_failures` and logged, and only that message is lost: the others arrive
// in order and the connection carries on.
#[tokio::test]
async fn wr_15_an_encoder_error_after_the_send_reaches_the_confirmation() {
    let (capture, _guard) = LogCapture::install(tracing::Level::WARN);
    let (sender, receiver, addr) = small_batches_to_a_reader().await;
    let at_once = sender.unicast(addr, tagged(b"bad", 0)).unwrap_err();
    assert_eq!(at_once.kind(), ErrorKind::InvalidInput);
    assert_eq!(sender.node.heuristics().encode_failures(), 0);

    // one go on a current-thread runtime: the writer takes nothing before the 20th send, and
    // the 8 KiB batch is full after 9 messages
    let confs: Vec<_> = (0..20)
        .map(|i| {
            let tag: &[u8] = if i == 15 { b"bad" } else { b"m" };
            sender.unicast(addr, tagged(tag, i)).unwrap()
        })
        .collect();
    for (i, conf) in confs.into_iter().enumerate() {
        let outcome = timeout(10 * SEC, conf).await.expect("a confirmation hung");
        match (i, outcome) {
            (15, Ok(Err(e))) => {
                assert_eq!(e.kind(), ErrorKind::InvalidInput);
                assert!(e.to_string().contains("refuses"), "{e}");
            }
            (15, other) => panic!("the refused message got {other:?}"),
            (_, Ok(Ok(()))) => {}
            (i, other) => panic!("message {i} got {other:?}"),
        }
    }
    assert_eq!(sender.node.heuristics().encode_failures(), 1);
    assert!(
        capture.any_line_contains(tracing::Level::WARN, "dropped: encoding it failed"),
        "{:?}",
        capture.lines()
    );
    let delivered = sender.unicast(addr, tagged(b"m", 20)).unwrap();
    assert!(matches!(timeout(10 * SEC, delivered).await, Ok(Ok(Ok(())))));
    let expected: Vec<Bytes> = (0..21)
        .filter(|&i| i != 15)
        .map(|i| tagged(b"m", i))
        .collect();
    wait_until(10 * SEC, || receiver.processed() == expected.len()).await;
    assert!(
        receiver.payloads() == expected,
        "lost or reordered messages"
    );
    assert_eq!(sender.node.stats().sent().0, 20);
    assert!(
        sender.closed.lock().unwrap().is_empty(),
        "the connection was dropped"
    );
    shut_down_all([&sender.node, &receiver.node]).await;
}

// WR-15: an encoder panic on a message that waited unencoded ends the connection (origin
// Writing, close reason "the encoder panicked"), as one at the send does (ERR-04): its
// confirmation says so, every other confirmation resolves, and the node connects again.
#[tokio::test]
async fn wr_15_an_encoder_panic_after_the_send_ends_the_connection() {
    let (sender, receiver, addr) = small_batches_to_a_reader().await;
    let confs: Vec<_> = (0..20)
        .map(|i| {
            let message = if i == 15 {
                Bytes::from_static(b"boom")
            } else {
                tagged(b"m", i)
            };
            sender.unicast(addr, message).unwrap()
        })
        .collect();
    let mut outcomes = Vec::new();
    for conf in confs {
        outcomes.push(timeout(10 * SEC, conf).await.expect("a confirmation hung"));
    }
    match &outcomes[15] {
        Ok(Err(e)) => assert!(e.to_string().contains("encoder panicked"), "{e}"),
        other => panic!("the panicking message got {other:?}"),
    }
    sender.assert_closed_by_encoder_panic().await;
    assert_eq!(sender.node.num_connected(), 0);

    sender.node.connect(addr).await.unwrap();
    let conf = sender.unicast(addr, tagged(b"m", 99)).unwrap();
    assert!(matches!(timeout(10 * SEC, conf).await, Ok(Ok(Ok(())))));
    wait_until(10 * SEC, || {
        receiver.payloads().last() == Some(&tagged(b"m", 99))
    })
    .await;
    shut_down_all([&sender.node, &receiver.node]).await;
}

/// A payload of `len` bytes that starts with `tag` and then carries `i`.
fn tagged_len(tag: &[u8], i: u32, len: usize) -> Bytes {
    let mut payload = BytesMut::from(tag);
    payload.put_u32(i);
    payload.resize(len, 0);
    payload.freeze()
}

/// A [`SmallBatches`] sender whose writer is blocked in a write, with messages waiting
/// unencoded behind it: connected to a raw peer that reads only when the test does (small
/// buffers at both ends), it queues 4 messages of 60 000 bytes in one go, the second being
/// `odd`. Each is a batch of its own (a batch holds 8 KiB); the writer takes the first and
/// blocks on the full socket. Then, until `odd`'s confirmation resolves, it queues a probe and
/// yields: the first probe after the writer took its batch finds the queue's batch empty and
/// encodes the waiting messages into it itself, `odd` first. Returns the sender, the peer's
/// stream, `odd`'s outcome, the other messages' confirmations and the number of probes.
async fn a_sender_encodes_behind_a_blocked_writer(odd: Bytes) -> SenderEncoded {
    let sender = SmallBatches::new().await;
    let (addr, listener, stream) = raw::connect_to_stalled_reader(&sender.node).await;
    drop(listener);
    let mut confs: Vec<_> = (0..4)
        .map(|i| {
            let message = if i == 1 {
                odd.clone()
            } else {
                tagged_len(b"m", i, 60_000)
            };
            sender.unicast(addr, message).unwrap()
        })
        .collect();
    let mut odd = confs.remove(1);
    let deadline = Instant::now() + 10 * SEC;
    let mut probes = 0;
    let odd_outcome = loop {
        match odd.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => {}
            Ok(outcome) => break outcome,
            Err(closed) => panic!("the odd message's confirmation was dropped: {closed}"),
        }
        assert!(
            Instant::now() < deadline,
            "the waiting messages were never encoded"
        );
        if let Ok(probe) = sender.unicast(addr, tagged_len(b"p", probes, 60_000)) {
            confs.push(probe);
            probes += 1;
        }
        tokio::task::yield_now().await;
    };
    SenderEncoded {
        sender,
        stream,
        odd_outcome,
        confs,
        probes,
    }
}

/// What [`a_sender_encodes_behind_a_blocked_writer`] leaves.
struct SenderEncoded {
    sender: SmallBatches,
    stream: TcpStream,
    odd_outcome: io::Result<()>,
    confs: Vec<Confirmation>,
    probes: u32,
}

/// Reads `count` frames of [`TestCodec`] (2-byte length, payload) from `stream`.
async fn read_frames(stream: &mut TcpStream, count: usize) -> Vec<Bytes> {
    use tokio::io::AsyncReadExt;
    let mut frames = Vec::new();
    for _ in 0..count {
        let len = timeout(10 * SEC, stream.read_u16()).await.unwrap().unwrap();
        let mut payload = vec![0; len as usize];
        timeout(10 * SEC, stream.read_exact(&mut payload))
            .await
            .unwrap()
            .unwrap();
        frames.push(Bytes::from(payload));
    }
    frames
}

// WR-15: while the writer is blocked writing a batch, a sender that finds the pending batch
// empty encodes the waiting messages itself; an encoder error there is reported as the
// writer's would be (the message's confirmation, `encode_failures`), nothing was written
// meanwhile, and once the peer reads, everything else arrives in order.
#[tokio::test]
async fn wr_15_a_sender_encodes_the_waiting_messages_while_the_writer_writes() {
    let odd = tagged_len(b"bad", 1, 60_000);
    let SenderEncoded {
        sender,
        mut stream,
        odd_outcome,
        confs,
        probes,
    } = a_sender_encodes_behind_a_blocked_writer(odd).await;
    assert_eq!(
        sender.node.stats().sent().0,
        0,
        "the writer wrote meanwhile"
    );
    assert_eq!(odd_outcome.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(sender.node.heuristics().encode_failures(), 1);

    let mut expected: Vec<Bytes> = [0, 2, 3].map(|i| tagged_len(b"m", i, 60_000)).to_vec();
    expected.extend((0..probes).map(|i| tagged_len(b"p", i, 60_000)));
    let frames = read_frames(&mut stream, expected.len()).await;
    assert!(frames == expected, "lost or reordered messages");
    for conf in confs {
        let outcome = timeout(10 * SEC, conf).await.expect("a confirmation hung");
        assert!(matches!(outcome, Ok(Ok(()))), "{outcome:?}");
    }
    assert!(
        sender.closed.lock().unwrap().is_empty(),
        "the connection was dropped"
    );
    sender.node.shut_down().await;
}

// WR-15: an encoder panic met by a sender encoding the waiting messages ends the connection as
// the writer's would (origin Writing, close reason "the encoder panicked"), and the panicking
// message's confirmation says so.
#[tokio::test]
async fn wr_15_an_encoder_panic_met_by_a_sender_ends_the_connection() {
    let SenderEncoded {
        sender,
        odd_outcome,
        confs,
        ..
    } = a_sender_encodes_behind_a_blocked_writer(Bytes::from_static(b"boom")).await;
    let e = odd_outcome.unwrap_err();
    assert!(e.to_string().contains("encoder panicked"), "{e}");
    sender.assert_closed_by_encoder_panic().await;
    // the first message may have been written whole before the teardown; none after it
    for conf in confs.into_iter().skip(1) {
        let outcome = timeout(10 * SEC, conf).await.expect("a confirmation hung");
        assert!(
            !matches!(outcome, Ok(Ok(()))),
            "a message was written after the panic"
        );
    }
    sender.node.shut_down().await;
}
