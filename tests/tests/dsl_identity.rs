//! Peer identity (DSL-15..19, 21, 22): the DSL handshake tells each side the other's listening address
//! and name; `connect_if_needed` reuses a connection in either direction, and nodes that all
//! dial each other at once end with one connection per pair.

use std::{
    collections::{BTreeSet, HashSet},
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use pea2pea::{Config, Message, Node, Pea2Pea, dsl, protocol};
use pea2pea_tests::{logs::LogCapture, raw, wait_until_10s};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Level;

#[derive(Message, Debug, Clone, PartialEq)]
enum Note {
    Hi,
}

/// A `Hi`'s sender: its address, and its identity.
type Seen = (SocketAddr, Option<dsl::PeerIdentity>);

/// Records, for every `Hi`, the sender's identity as the handshake told it.
#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    seen: Arc<Mutex<Vec<Seen>>>,
}

protocol! {
    Peer speaks Note {
        handshake = fingerprint,
        on Note::Hi from addr => {
            let identity = dsl::peer_identity(self.node(), addr);
            self.seen.lock().unwrap().push((addr, identity));
        }
    }
}

fn peer(name: &str) -> Peer {
    Peer {
        node: Node::new(Config {
            name: Some(name.into()),
            ..Config::loopback()
        }),
        seen: Default::default(),
    }
}

// DSL-15: an inbound connection's `from` is the peer's ephemeral port, and `dsl::peer_identity`
// gives its listening address (dialable) and name; a peer without a listener still connects,
// and has no listening address.
#[tokio::test]
async fn dsl_15_inbound_from_gives_the_listening_address() {
    let (a, b, c) = (peer("a"), peer("b"), peer("c"));
    let a_addr = a.start().await.unwrap();
    let b_addr = b.start().await.unwrap();
    c.enable_protocols().await; // c does not listen
    a.node().connect(b_addr).await.unwrap();
    c.node().connect(b_addr).await.unwrap();
    a.send(b_addr, Note::Hi).await.unwrap();
    c.send(b_addr, Note::Hi).await.unwrap();
    wait_until_10s("b to hear from a and c", || {
        b.seen.lock().unwrap().len() == 2
    })
    .await;

    let seen = b.seen.lock().unwrap().clone();
    let from_a = seen
        .iter()
        .find(|(_, id)| id.as_ref().unwrap().name() == "a");
    let (a_seen_as, a_identity) = from_a.expect("a's message");
    assert_ne!(
        *a_seen_as, a_addr,
        "an inbound connection comes from another port"
    );
    assert_eq!(a_identity.as_ref().unwrap().listening_addr(), Some(a_addr));
    let from_c = seen
        .iter()
        .find(|(_, id)| id.as_ref().unwrap().name() == "c");
    let c_identity = from_c.expect("c's message").1.clone().unwrap();
    assert_eq!(c_identity.listening_addr(), None);
    // and the other way: a knows b by the address it dialled
    let b_identity = dsl::peer_identity(a.node(), b_addr).unwrap();
    assert_eq!(b_identity.listening_addr(), Some(b_addr));
    assert_eq!(b_identity.name(), "b");
    for p in [&a, &b, &c] {
        p.node().shut_down().await;
    }
}

// DSL-16: `connect_if_needed` reuses a connection the peer dialled: no second connection, and
// the address it returns is the one to send to.
#[tokio::test]
async fn dsl_16_connect_if_needed_reuses_an_inbound_connection() {
    let (a, b) = (peer("a"), peer("b"));
    let a_addr = a.start().await.unwrap();
    let b_addr = b.start().await.unwrap();
    a.node().connect(b_addr).await.unwrap();
    wait_until_10s("b to register a", || b.node().num_connected() == 1).await;

    let to_a = b.connect_if_needed(a_addr).await.unwrap();
    assert_ne!(to_a, a_addr, "b dialled a again");
    assert_eq!(b.node().connected_addrs(), vec![to_a]);
    b.send(to_a, Note::Hi).await.unwrap();
    wait_until_10s("a to hear from b", || a.seen.lock().unwrap().len() == 1).await;
    // and the dialler's side finds its own connection
    assert_eq!(a.connect_if_needed(b_addr).await.unwrap(), b_addr);
    assert_eq!(a.node().num_connected(), 1);
    assert_eq!(b.node().num_connected(), 1);
    for p in [&a, &b] {
        p.node().shut_down().await;
    }
}

// DSL-21: `connect_if_needed` to a peer that does not dial back connects, whichever of the
// two listens on the lower address.
#[tokio::test]
async fn dsl_21_connect_if_needed_dials_a_peer_either_way() {
    for lower_dials in [true, false] {
        let (a, b) = (peer("a"), peer("b"));
        let a_addr = a.start().await.unwrap();
        let b_addr = b.start().await.unwrap();
        let (dialler, to) = if (a_addr < b_addr) == lower_dials {
            (&a, b_addr)
        } else {
            (&b, a_addr)
        };
        let got = dialler.connect_if_needed(to).await.unwrap();
        assert_eq!(got, to, "a fresh dial is to the address asked for");
        dialler.send(got, Note::Hi).await.unwrap();
        assert_eq!(dsl::duplicate_connections(dialler.node()), 0);
        for p in [&a, &b] {
            p.node().shut_down().await;
        }
    }
}

// DSL-22: two nodes that dial each other at once keep the connection dialled by the lower
// listening address, on both sides (20 rounds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsl_22_of_two_dials_the_lower_ones_is_kept() {
    for _ in 0..20 {
        let (a, b) = (peer("a"), peer("b"));
        let a_addr = a.start().await.unwrap();
        let b_addr = b.start().await.unwrap();
        let (lower, higher, higher_addr) = if a_addr < b_addr {
            (&a, &b, b_addr)
        } else {
            (&b, &a, a_addr)
        };
        let (x, y) = tokio::join!(
            lower.connect_if_needed(higher_addr),
            higher.connect_if_needed(lower.node().listening_addr().await.unwrap()),
        );
        // the lower one dialled the kept connection: it knows it by the higher's listening
        // address, and the higher one by the lower's ephemeral port
        assert_eq!(x.unwrap(), higher_addr);
        let y = y.unwrap();
        assert_ne!(y, lower.node().listening_addr().await.unwrap());
        wait_until_10s("one connection on each side", || {
            lower.node().num_connected() == 1
                && higher.node().num_connected() == 1
                && lower.node().num_connecting() == 0
                && higher.node().num_connecting() == 0
        })
        .await;
        assert_eq!(lower.node().connected_addrs(), vec![higher_addr]);
        for p in [&a, &b] {
            p.node().shut_down().await;
        }
    }
}

/// The listening addresses of the peers of `node`'s connections.
fn peers_of(node: &Node) -> Vec<Option<SocketAddr>> {
    node.connected_addrs()
        .into_iter()
        .map(|addr| dsl::peer_identity(node, addr).and_then(|id| id.listening_addr()))
        .collect()
}

// DSL-17: 20 nodes that all dial each other at once with `connect_if_needed` end with exactly
// one connection per pair (the one dialled by the lower listening address, where two raced),
// and every dial's caller gets an address that leads to its peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsl_17_twenty_nodes_dialling_each_other_end_with_one_connection_per_pair() {
    const N: usize = 20;
    let nodes: Vec<Peer> = (0..N).map(|i| peer(&format!("n{i}"))).collect();
    let mut addrs = Vec::new();
    for n in &nodes {
        addrs.push(n.start().await.unwrap());
    }
    let mut dials = Vec::new();
    for n in &nodes {
        let own = n.node().listening_addr().await.unwrap();
        for to in addrs.iter().copied().filter(|to| *to != own) {
            let n = n.clone();
            dials.push(tokio::spawn(
                async move { (to, n.connect_if_needed(to).await) },
            ));
        }
    }
    let mut errors = Vec::new();
    for dial in dials {
        let (to, result) = dial.await.unwrap();
        if let Err(e) = result {
            errors.push((to, e.to_string()));
        }
    }
    assert!(errors.is_empty(), "some dials failed: {errors:#?}");
    let own: HashSet<_> = addrs.iter().copied().collect();
    assert_eq!(own.len(), N);

    wait_until_10s("every node to have one connection to every other", || {
        nodes
            .iter()
            .all(|n| n.node().num_connecting() == 0 && n.node().num_connected() == N - 1)
    })
    .await;
    for (n, own_addr) in nodes.iter().zip(&addrs) {
        let peers = peers_of(n.node());
        let distinct: BTreeSet<_> = peers.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            N - 1,
            "{} has two connections to one peer",
            n.node().name()
        );
        assert!(!distinct.contains(&Some(*own_addr)));
        assert!(
            !distinct.contains(&None),
            "a connection without an identity"
        );
    }
    let dropped: u64 = nodes
        .iter()
        .map(|n| dsl::duplicate_connections(n.node()))
        .sum();
    println!("{dropped} duplicate connections were dropped in handshakes");
    for n in &nodes {
        n.node().shut_down().await;
    }
}

// DSL-18: a peer that does not speak the DSL handshake gets a clear error, both ways, counted;
// the node lives on and serves a DSL peer that does not listen.
#[tokio::test]
async fn dsl_18_a_non_dsl_peer_gets_a_clear_error() {
    // a DSL node dials something else
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").await.unwrap();
        let mut sink = Vec::new();
        let _ = socket.read_to_end(&mut sink).await;
    });
    let a = peer("a");
    let a_addr = a.start().await.unwrap();
    let err = a.node().connect(other).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(
        err.to_string().contains("did not send a pea2pea DSL hello"),
        "{err}"
    );
    assert_eq!(dsl::fingerprint_rejections(a.node()), 1);
    server.await.unwrap();

    // something else dials a DSL node
    let mut socket = raw::raw_connect(a_addr).await;
    socket
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    raw::assert_closed_within(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(dsl::fingerprint_rejections(a.node()), 2);
    assert_eq!(a.node().num_connected(), 0);

    // a DSL node that does not listen still connects, and is served
    let b = peer("b");
    b.enable_protocols().await;
    b.node().connect(a_addr).await.unwrap();
    b.send(a_addr, Note::Hi).await.unwrap();
    wait_until_10s("a to hear from b", || a.seen.lock().unwrap().len() == 1).await;
    a.node().shut_down().await;
    b.node().shut_down().await;
}

/// Connects to `addr` with a raw socket, reads the node's hello (magic, length, body) and
/// sends `bytes`, then ends its writes; returns whether the node closed the connection within
/// 5 s.
async fn send_after_hello(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut socket = raw::raw_connect(addr).await;
    let mut head = [0u8; 10];
    socket.read_exact(&mut head).await.unwrap();
    assert_eq!(&head[..8], b"p2pdsl/2");
    let mut hello = vec![0u8; usize::from(u16::from_be_bytes([head[8], head[9]]))];
    socket.read_exact(&mut hello).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    socket.shutdown().await.unwrap();
    raw::closed_within(&mut socket, Duration::from_secs(5)).await
}

/// A hello whose description names a type it does not have: fingerprint 0, no listening
/// address, no name, version 1 accepting 1..=1, and a description (no name, framing 8) whose
/// inbound type is type 5 of none.
const BAD_INDEX_HELLO: &[u8] = &[0, 0, 0, 1, 1, 1, 1, 1, 0, 8, 1, 5, 0, 0, 0];

// DSL-19: hostile hellos are refused, each closed at once and counted: a hello cut short
// (its claimed 64 KiB never come), the first version's magic, a hello that does not decode,
// a description whose type index is out of range, and a verdict that is neither 0 nor 1; the
// node lives on.
#[tokio::test]
async fn dsl_19_hostile_hellos_are_refused() {
    let a = peer("a");
    let a_addr = a.start().await.unwrap();
    let mut cut_short = b"p2pdsl/2".to_vec();
    cut_short.extend_from_slice(&u16::MAX.to_be_bytes());
    cut_short.extend_from_slice(&[0; 100]);
    assert!(
        send_after_hello(a_addr, &cut_short).await,
        "a hello cut short"
    );
    let mut old = b"p2pfp/1\0".to_vec();
    old.extend_from_slice(&[0; 8]);
    assert!(send_after_hello(a_addr, &old).await, "the old magic");
    let mut garbled = b"p2pdsl/2".to_vec();
    garbled.extend_from_slice(&3u16.to_be_bytes());
    garbled.extend_from_slice(&[0xff, 0xff, 0xff]); // a varint that never ends
    assert!(
        send_after_hello(a_addr, &garbled).await,
        "a hello that does not decode"
    );
    let mut bad_index = b"p2pdsl/2".to_vec();
    bad_index.extend_from_slice(&(BAD_INDEX_HELLO.len() as u16).to_be_bytes());
    bad_index.extend_from_slice(BAD_INDEX_HELLO);
    let (logs, _guard) = LogCapture::install(Level::WARN);
    assert!(
        send_after_hello(a_addr, &bad_index).await,
        "a description with a bad index"
    );
    assert!(
        logs.any_line_contains(
            Level::WARN,
            "the peer's hello is invalid: its inbound message type refers to type 5, and the description has 0"
        ),
        "{:?}",
        logs.lines()
    );
    assert_eq!(dsl::fingerprint_rejections(a.node()), 4);

    // a valid hello (the node's own, echoed: the same fingerprint), then a bad verdict
    let mut socket = raw::raw_connect(a_addr).await;
    let mut head = [0u8; 10];
    socket.read_exact(&mut head).await.unwrap();
    let mut hello = vec![0u8; usize::from(u16::from_be_bytes([head[8], head[9]]))];
    socket.read_exact(&mut hello).await.unwrap();
    socket.write_all(&head).await.unwrap();
    socket.write_all(&hello).await.unwrap();
    socket.write_all(&[7]).await.unwrap();
    assert!(
        raw::closed_within(&mut socket, Duration::from_secs(5)).await,
        "a bad verdict"
    );
    assert_eq!(dsl::fingerprint_rejections(a.node()), 5);
    assert_eq!(a.node().num_connected(), 0);

    // and it still serves a DSL peer
    let b = peer("b");
    b.enable_protocols().await;
    b.node().connect(a_addr).await.unwrap();
    b.send(a_addr, Note::Hi).await.unwrap();
    wait_until_10s("a to hear from b", || a.seen.lock().unwrap().len() == 1).await;
    a.node().shut_down().await;
    b.node().shut_down().await;
}
