//! Why a connection ended, for a hand-written node (HOOK-14, HOOK-15, STAT-07, RD-10): the close
//! reason its `on_disconnect` reads, the decode failures its stats count, and the hook that
//! sees a decode error before the connection closes.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use pea2pea::{
    Config, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{OnDisconnect, Reading, Writing},
};
use pea2pea_tests::*;
use tokio::io::AsyncWriteExt;

const SEC: Duration = Duration::from_secs(1);

/// What the hooks saw of one ended connection.
#[derive(Clone, Debug)]
struct Ended {
    origin: DisconnectOrigin,
    reason: Option<String>,
    /// The connection's own count of decode failures, read in the hook.
    decode_failures: u64,
}

/// Reads and writes [`TestCodec`] frames; records what `on_disconnect` and `on_decode_error`
/// see.
#[derive(Clone)]
struct Recorder {
    node: Node,
    ended: Arc<Mutex<Vec<Ended>>>,
    decode_errors: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn new(config: Config) -> Self {
        Self {
            node: Node::new(config),
            ended: Default::default(),
            decode_errors: Default::default(),
        }
    }

    async fn listening(config: Config) -> (Self, SocketAddr) {
        let this = Self::new(config);
        this.enable_reading().await;
        this.enable_writing().await;
        this.enable_on_disconnect().await;
        let addr = start_listening(&this.node).await;
        (this, addr)
    }

    async fn wait_ended(&self, n: usize) -> Vec<Ended> {
        wait_until_desc(5 * SEC, "on_disconnect", || {
            self.ended.lock().unwrap().len() == n
        })
        .await;
        self.ended.lock().unwrap().clone()
    }
}

impl Pea2Pea for Recorder {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for Recorder {
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }

    async fn process_message(&self, _: SocketAddr, _: Bytes) {}

    async fn on_decode_error(&self, source: SocketAddr, error: &io::Error) {
        // the connection is still there, with the failure counted and the reason recorded
        let info = self.node.connection_info(source).expect("still registered");
        assert_eq!(info.stats().decode_failures(), 1);
        assert!(info.close_reason().is_some());
        self.decode_errors.lock().unwrap().push(error.to_string());
    }
}

impl Writing for Recorder {
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

impl OnDisconnect for Recorder {
    async fn on_disconnect(&self, addr: SocketAddr, origin: DisconnectOrigin) {
        let info = self
            .node
            .connection_info(addr)
            .expect("known in on_disconnect");
        self.ended.lock().unwrap().push(Ended {
            origin,
            reason: info.close_reason(),
            decode_failures: info.stats().decode_failures(),
        });
    }
}

// HOOK-14, STAT-07, RD-10: a frame the codec refuses is counted in the node's and the
// connection's stats, passed to `on_decode_error` while the connection is still registered, and
// is the close reason `on_disconnect` reads; the node lives on and serves the next peer.
#[tokio::test]
async fn hook_14_a_decode_error_is_the_close_reason_and_is_counted() {
    let (node, addr) = Recorder::listening(test_config()).await;
    let mut raw = raw_connect(addr).await;
    let mut bytes = frame(b"fine");
    bytes.extend([0, 0]); // a zero-length frame: the test codec refuses it
    raw.write_all(&bytes).await.unwrap();
    assert_closed_within(&mut raw, 5 * SEC).await;

    let ended = node.wait_ended(1).await;
    assert_eq!(ended[0].origin, DisconnectOrigin::Reading);
    let reason = ended[0].reason.as_deref().unwrap();
    assert_eq!(reason, "the peer sent invalid data: zero-length frame");
    assert_eq!(ended[0].decode_failures, 1);
    assert_eq!(*node.decode_errors.lock().unwrap(), ["zero-length frame"]);
    assert_eq!(node.node.stats().decode_failures(), 1);
    assert_eq!(node.node.stats().received().0, 1, "the good frame counts");

    // the node lives on: a second peer's bad frame is counted too
    let mut raw = raw_connect(addr).await;
    raw.write_all(&[0, 0]).await.unwrap();
    assert_closed_within(&mut raw, 5 * SEC).await;
    node.wait_ended(2).await;
    assert_eq!(node.node.stats().decode_failures(), 2);
    node.node.shut_down().await;
}

// HOOK-14: each cause records its own reason: the peer closing, the idle timeout, this node
// disconnecting (with a reason of its own or without), and shutdown; no decode failure counted.
#[tokio::test]
async fn hook_14_each_cause_has_its_reason() {
    let (node, addr) = Recorder::listening(test_config()).await;

    let raw = raw_connect(addr).await;
    wait_for_connections(&node.node, 1).await;
    drop(raw);
    let ended = node.wait_ended(1).await;
    assert_eq!(ended[0].origin, DisconnectOrigin::Reading);
    assert_eq!(
        ended[0].reason.as_deref(),
        Some("the peer closed the connection")
    );

    let _raw = raw_connect(addr).await;
    wait_for_connections(&node.node, 1).await;
    let peer = node.node.connected_addrs()[0];
    assert_eq!(
        node.node.connection_info(peer).unwrap().close_reason(),
        None
    );
    assert!(
        node.node
            .disconnect_with_reason(peer, "it sent too many votes")
            .await
    );
    let ended = node.wait_ended(2).await;
    assert_eq!(ended[1].origin, DisconnectOrigin::User);
    assert_eq!(ended[1].reason.as_deref(), Some("it sent too many votes"));

    let _raw = raw_connect(addr).await;
    wait_for_connections(&node.node, 1).await;
    node.node.disconnect(node.node.connected_addrs()[0]).await;
    let ended = node.wait_ended(3).await;
    assert_eq!(
        ended[2].reason.as_deref(),
        Some("this node disconnected it")
    );

    let _raw = raw_connect(addr).await;
    wait_for_connections(&node.node, 1).await;
    node.node.shut_down().await;
    let ended = node.wait_ended(4).await;
    assert_eq!(ended[3].origin, DisconnectOrigin::Shutdown);
    assert_eq!(
        ended[3].reason.as_deref(),
        Some("this node is shutting down")
    );
    assert!(ended.iter().all(|e| e.decode_failures == 0));
    assert_eq!(node.node.stats().decode_failures(), 0);
}

/// A [`Recorder`] whose connections time out after 100 ms of silence.
#[derive(Clone)]
struct Impatient(Recorder);

impl Pea2Pea for Impatient {
    fn node(&self) -> &Node {
        &self.0.node
    }
}

impl Reading for Impatient {
    const IDLE_TIMEOUT_MS: u64 = 100;
    type Message = Bytes;
    type Codec = TestCodec;

    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }

    async fn process_message(&self, _: SocketAddr, _: Bytes) {}
}

impl OnDisconnect for Impatient {
    async fn on_disconnect(&self, addr: SocketAddr, origin: DisconnectOrigin) {
        self.0.on_disconnect(addr, origin).await
    }
}

// HOOK-14: an idle timeout says so, with the limit.
#[tokio::test]
async fn hook_14_an_idle_timeout_is_the_close_reason() {
    let node = Impatient(Recorder::new(test_config()));
    node.enable_reading().await;
    node.enable_on_disconnect().await;
    let addr = start_listening(&node.0.node).await;
    let _raw = raw_connect(addr).await;
    let ended = node.0.wait_ended(1).await;
    assert_eq!(
        ended[0].reason.as_deref(),
        Some("no message came for 100ms (the idle timeout)")
    );
    node.0.node.shut_down().await;
}

// HOOK-15: a reason recorded first is kept: a teardown that comes later (here the node's own
// disconnect) does not replace it, and `disconnect_with_reason` to an unknown address is false.
#[tokio::test]
async fn hook_15_the_first_reason_is_kept() {
    let (node, addr) = Recorder::listening(test_config()).await;
    let _raw = raw_connect(addr).await;
    wait_for_connections(&node.node, 1).await;
    let peer = node.node.connected_addrs()[0];
    let info = node.node.connection_info(peer).unwrap();
    assert!(info.record_close_reason("first"));
    assert!(!info.record_close_reason("second"));
    assert!(node.node.disconnect_with_reason(peer, "third").await);
    let ended = node.wait_ended(1).await;
    assert_eq!(ended[0].reason.as_deref(), Some("first"));
    assert_eq!(info.close_reason().as_deref(), Some("first"));
    assert!(!node.node.disconnect_with_reason(peer, "gone").await);
    node.node.shut_down().await;
}
