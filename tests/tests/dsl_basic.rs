//! protocol! + #[node] over loopback: every variant reaches its handler, the lifecycle hooks
//! fire, and the typed send paths (confirmed, fast, to many) deliver.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
use pea2pea_tests::wait_until_10s;

#[derive(Message, Debug, Clone, PartialEq)]
enum Chat {
    Hello { name: String },
    Say(String),
    Bye,
}

/// What a node saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    log: Log,
}

protocol! {
    Peer speaks Chat over length_delimited(max_frame = 64 KiB) {
        idle_timeout = off,
        write_queue = 128,
        on Chat::Hello { name } from addr => self.note(format!("hello {name} from {}", addr.ip())),
        on Chat::Say(text) => self.note(format!("say {text}")),
        on Chat::Bye from addr => {
            self.note("bye".into());
            self.node().disconnect(addr).await;
        }
        on_connect(_addr) => self.note("connect".into()),
        on_disconnect(_addr, origin) => self.note(format!("disconnect {origin:?}")),
    }
}

impl Peer {
    fn new(name: &str) -> Self {
        let config = Config {
            name: Some(name.into()),
            ..Default::default()
        };
        Self {
            node: Node::new(config),
            log: Default::default(),
        }
    }

    fn note(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }

    fn saw(&self, line: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l == line)
    }

    fn count(&self, prefix: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

async fn connected_pair() -> (Peer, Peer, SocketAddr, SocketAddr) {
    let (a, b) = (Peer::new("a"), Peer::new("b"));
    let a_addr = a.start().await.unwrap();
    let b_addr = b.start().await.unwrap();
    a.node().connect(b_addr).await.unwrap();
    wait_until_10s("b to register a", || b.node().num_connected() == 1).await;
    (a, b, a_addr, b_addr)
}

#[tokio::test]
async fn every_variant_reaches_its_handler_and_hooks_fire() {
    let (a, b, _, b_addr) = connected_pair().await;
    wait_until_10s("on_connect on both sides", || {
        a.saw("connect") && b.saw("connect")
    })
    .await;

    a.send(b_addr, Chat::Hello { name: "ann".into() })
        .await
        .unwrap();
    a.send(b_addr, Chat::Say("hi".into())).await.unwrap();
    wait_until_10s("hello and say", || {
        b.saw("hello ann from 127.0.0.1") && b.saw("say hi")
    })
    .await;

    // Bye makes b disconnect: both sides' on_disconnect fire, with their own origins.
    a.send_fast(b_addr, Chat::Bye).unwrap();
    wait_until_10s("bye", || b.saw("bye")).await;
    wait_until_10s("on_disconnect on both sides", || {
        b.saw("disconnect User") && a.saw("disconnect Reading")
    })
    .await;
    assert_eq!(a.node().num_connected(), 0);

    a.node().shut_down().await;
    b.node().shut_down().await;
}

#[tokio::test]
async fn send_to_many_encodes_once_and_reports_failures() {
    let hub = Peer::new("hub");
    let hub_addr = hub.start().await.unwrap();
    let mut spokes = Vec::new();
    for i in 0..3 {
        let spoke = Peer::new(&format!("spoke{i}"));
        spoke.start().await.unwrap();
        spoke.node().connect(hub_addr).await.unwrap();
        spokes.push(spoke);
    }
    wait_until_10s("hub to register the spokes", || {
        hub.node().num_connected() == 3
    })
    .await;

    let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let mut targets = hub.node().connected_addrs();
    targets.push(nobody);
    let report = hub.send_to_many(targets, &Chat::Say("all".into())).await;
    assert_eq!(report.len(), 4);
    assert_eq!(report.queued(), 3, "{report:?}");
    let failed: Vec<_> = report.failures().collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    assert_eq!(failed[0].0, nobody);
    assert_eq!(failed[0].1.kind(), std::io::ErrorKind::NotConnected);

    for spoke in &spokes {
        wait_until_10s("each spoke to get it", || spoke.saw("say all")).await;
        assert_eq!(spoke.count("say"), 1);
    }

    // a confirmed send to an unknown peer fails at once
    let err = hub.send(nobody, Chat::Bye).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);

    for spoke in &spokes {
        spoke.node().shut_down().await;
    }
    hub.node().shut_down().await;
}

#[tokio::test]
async fn an_oversize_message_is_refused_by_the_declared_max_frame() {
    let (a, b, _, b_addr) = connected_pair().await;
    let big = Chat::Say("x".repeat(64 * 1024 + 1));
    assert!(big.encoded_len() > 64 * 1024);
    let err = a.send(b_addr, big).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    a.node().shut_down().await;
    b.node().shut_down().await;
}

#[tokio::test]
async fn start_and_enable_protocols_can_be_called_again() {
    let (a, b, a_addr, b_addr) = connected_pair().await;
    // a second start neither panics (the engine panics on a protocol enabled twice) nor moves
    // the listener, and enable_protocols after start does nothing
    assert_eq!(a.start().await.unwrap(), a_addr);
    a.enable_protocols().await;
    // the node still works as declared, with one handler call per message
    a.send(b_addr, Chat::Say("again".into())).await.unwrap();
    wait_until_10s("the message", || b.saw("say again")).await;
    assert_eq!(b.count("say again"), 1);
    a.node().shut_down().await;
    b.node().shut_down().await;
}

#[derive(Message, Debug)]
struct Ask;

#[derive(Message, Debug)]
struct Answer;

/// A node with every setting that becomes an engine constant set to an unusual value.
#[pea2pea::node]
#[derive(Clone)]
struct Tuned {
    node: Node,
}

protocol! {
    Tuned speaks Chat {
        handshake = fingerprint,
        handshake_timeout = 3 s,
        read_queue = 17,
        backpressure = false,
        idle_timeout = 2 min,
        read_buffer = 4 KiB,
        write_queue = 33,
        write_timeout = 250 ms,
        write_buffer = 8 KiB,
        disconnect_timeout = 7 s,
        on _ => {},
        rpc Ask -> Answer => Answer,
        on_disconnect(_addr) => {},
    }
}

/// Each setting of DSL.md's table that names an engine constant becomes that constant.
#[test]
fn every_setting_becomes_its_engine_constant() {
    use pea2pea::protocols::{Handshake, OnDisconnect, Reading, Writing};
    assert_eq!(<Tuned as Handshake>::TIMEOUT_MS, 3_000);
    assert_eq!(<Tuned as Reading>::MESSAGE_QUEUE_DEPTH, 17);
    const { assert!(!<Tuned as Reading>::BACKPRESSURE) };
    assert_eq!(<Tuned as Reading>::IDLE_TIMEOUT_MS, 120_000);
    assert_eq!(<Tuned as Reading>::INITIAL_BUFFER_SIZE, 4 * 1024);
    assert_eq!(<Tuned as Writing>::MESSAGE_QUEUE_DEPTH, 33);
    assert_eq!(<Tuned as Writing>::TIMEOUT_MS, 250);
    assert_eq!(<Tuned as Writing>::INITIAL_BUFFER_SIZE, 8 * 1024);
    assert_eq!(<Tuned as OnDisconnect>::TIMEOUT_MS, 7_000);
}
