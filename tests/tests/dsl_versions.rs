//! Versioned protocols (DSL-40..45): two versions of one `protocol!` as two Rust modules, over
//! loopback. Compatible versions connect and talk both ways; the handshake refuses
//! incompatible ones on both sides, saying what differs; rpc lines are matched one by one.

use std::{
    io,
    sync::{Arc, Mutex},
};

use pea2pea::{Config, Node, Pea2Pea, dsl, dsl::Protocol};
use pea2pea_tests::{logs::LogCapture, raw, wait_until_10s};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Level;

/// What a node heard, in order.
type Heard = Arc<Mutex<Vec<String>>>;

fn node(name: &str) -> Node {
    Node::new(Config {
        name: Some(name.into()),
        ..Config::loopback()
    })
}

fn note(heard: &Heard, what: String) {
    heard.lock().unwrap().push(what);
}

/// Version 1, written to grow: its `Chat` skips trailing fields it does not know and keeps
/// unknown variants; it serves `Square`.
mod v1 {
    use bytes::Bytes;
    use pea2pea::{Message, Node, protocol};

    use super::{Heard, note};

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub enum Chat {
        Hello {
            name: String,
        },
        Say(String),
        #[message(other)]
        Unknown {
            tag: u32,
            body: Bytes,
        },
    }

    #[derive(Message, Debug, Clone, PartialEq)]
    pub struct Square(pub u32);

    #[derive(Message, Debug, Clone, PartialEq)]
    pub struct Squared(pub u64);

    #[pea2pea::node]
    #[derive(Clone)]
    pub struct Peer {
        pub node: Node,
        pub heard: Heard,
    }

    protocol! {
        Peer speaks Chat {
            name = "chat",
            handshake = fingerprint,
            version = 1,
            accepts = 1..=2,
            on Chat::Hello { name } => note(&self.heard, format!("hello {name}")),
            on Chat::Say(text) => note(&self.heard, format!("say {text}")),
            // a newer peer's variants land here, as `Chat::Unknown`
            on other => note(&self.heard, format!("other {other:?}")),
            rpc Square(n) -> Squared => Squared(u64::from(n) * u64::from(n)),
        }
    }
}

/// Version 2: a trailing defaulted field in `Hello`, a new variant, `Square`'s number widened
/// from `u32` to `u64` (the same varint on the wire), and a new rpc, `Cube`.
mod v2 {
    use bytes::Bytes;
    use pea2pea::{Message, Node, protocol};

    use super::{Heard, note};

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub enum Chat {
        Hello {
            name: String,
            #[message(default)]
            agent: Option<String>,
        },
        Say(String),
        React(char),
        #[message(other)]
        Unknown {
            tag: u32,
            body: Bytes,
        },
    }

    #[derive(Message, Debug, Clone, PartialEq)]
    pub struct Square(pub u64);

    #[derive(Message, Debug, Clone, PartialEq)]
    pub struct Squared(pub u64);

    #[derive(Message, Debug, Clone, PartialEq)]
    pub struct Cube(pub u64);

    #[derive(Message, Debug, Clone, PartialEq)]
    pub struct Cubed(pub u64);

    #[pea2pea::node]
    #[derive(Clone)]
    pub struct Peer {
        pub node: Node,
        pub heard: Heard,
    }

    protocol! {
        Peer speaks Chat {
            name = "chat",
            handshake = fingerprint,
            version = 2,
            accepts = 1..,
            on Chat::Hello { name, agent } => note(&self.heard, format!("hello {name} {agent:?}")),
            on Chat::Say(text) => note(&self.heard, format!("say {text}")),
            on Chat::React(c) => note(&self.heard, format!("react {c}")),
            on Chat::Unknown { tag, .. } => note(&self.heard, format!("unknown {tag}")),
            rpc Square(n) -> Squared => Squared(n * n),
            rpc Cube(n) -> Cubed => Cubed(n * n * n),
        }
    }

    /// A version-2 client that calls `Square` only.
    #[pea2pea::node]
    #[derive(Clone)]
    pub struct SquareClient {
        pub node: Node,
    }

    protocol! {
        SquareClient speaks Chat {
            name = "chat",
            handshake = fingerprint,
            version = 2,
            on _ => {},
            rpc Square -> Squared,
        }
    }

    /// A version-2 client that calls `Cube` only.
    #[pea2pea::node]
    #[derive(Clone)]
    pub struct CubeClient {
        pub node: Node,
    }

    protocol! {
        CubeClient speaks Chat {
            name = "chat",
            handshake = fingerprint,
            version = 2,
            on _ => {},
            rpc Cube -> Cubed,
        }
    }
}

/// A version 2 whose version 1 did not plan for new variants: extensible, but no catch-all.
mod strict {
    use pea2pea::{Message, Node, protocol};

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub enum Chat {
        Hello { name: String },
        Say(String),
    }

    pub use super::v1::{Square, Squared};

    #[pea2pea::node]
    #[derive(Clone)]
    pub struct Peer {
        pub node: Node,
    }

    protocol! {
        Peer speaks Chat {
            name = "chat",
            handshake = fingerprint,
            on _ => {},
            rpc Square(n) -> Squared => Squared(u64::from(n)),
        }
    }
}

/// Version 3, which no longer accepts version 1 or 2.
mod v3 {
    use pea2pea::{Node, protocol};

    pub use super::v2::{Chat, Cube, Cubed, Square, Squared};

    #[pea2pea::node]
    #[derive(Clone)]
    pub struct Peer {
        pub node: Node,
    }

    protocol! {
        Peer speaks Chat {
            name = "chat",
            handshake = fingerprint,
            version = 3,
            accepts = 3..,
            on _ => {},
            rpc Square(n) -> Squared => Squared(n * n),
            rpc Cube(n) -> Cubed => Cubed(n * n * n),
        }
    }
}

fn v1_peer(name: &str) -> v1::Peer {
    v1::Peer {
        node: node(name),
        heard: Default::default(),
    }
}

fn v2_peer(name: &str) -> v2::Peer {
    v2::Peer {
        node: node(name),
        heard: Default::default(),
    }
}

fn heard(h: &Heard) -> Vec<String> {
    h.lock().unwrap().clone()
}

/// Whether `logs` has a warning of the node named `name` containing `text`.
fn logged(logs: &LogCapture, name: &str, text: &str) -> bool {
    let tag = format!("node{{name={name}}}");
    logs.lines_at(Level::WARN)
        .iter()
        .any(|line| line.contains(&tag) && line.contains(text))
}

/// `dialler` connects to `target` and is refused; both sides log `reason` (from each one's
/// point of view) and count the rejection; neither keeps a connection.
async fn refused_both_ways(
    logs: &LogCapture,
    (dialler, dialler_says): (&Node, &str),
    (target, target_says): (&Node, &str),
) {
    let target_addr = target.listening_addr().await.unwrap();
    let err = dialler.connect(target_addr).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    assert!(
        err.to_string().contains(dialler_says),
        "{err}\nexpected: {dialler_says}"
    );
    wait_until_10s("the target to refuse too", || {
        dsl::fingerprint_rejections(target) == 1
    })
    .await;
    assert_eq!(dsl::fingerprint_rejections(dialler), 1);
    assert!(
        logged(logs, dialler.name(), dialler_says),
        "{:?}",
        logs.lines()
    );
    assert!(
        logged(logs, target.name(), target_says),
        "{:?}",
        logs.lines()
    );
    assert_eq!(dialler.num_connected(), 0);
    wait_until_10s("no connection at the target", || {
        target.num_connected() == 0 && target.num_connecting() == 0
    })
    .await;
}

// DSL-40: versions 1 and 2 of one protocol connect (either side dialling) and talk: every
// message of each side arrives, v2 reads v1's `Hello` with the new field defaulted, v1's `on
// other` gets v2's new variant, and each calls the other's `Square` (whose number is `u32` in
// v1 and `u64` in v2: one method id, compatible types).
#[tokio::test]
async fn dsl_40_compatible_versions_talk_both_ways() {
    assert_ne!(
        <v1::Peer as Protocol>::FINGERPRINT,
        <v2::Peer as Protocol>::FINGERPRINT
    );
    for v1_dials in [true, false] {
        let (old, new) = (v1_peer("old"), v2_peer("new"));
        let old_addr = old.start().await.unwrap();
        let new_addr = new.start().await.unwrap();
        let (at_old, at_new) = if v1_dials {
            old.node().connect(new_addr).await.unwrap();
            wait_until_10s("new to register old", || new.node().num_connected() == 1).await;
            (new_addr, new.node().connected_addrs()[0])
        } else {
            new.node().connect(old_addr).await.unwrap();
            wait_until_10s("old to register new", || old.node().num_connected() == 1).await;
            (old.node().connected_addrs()[0], old_addr)
        };

        old.send(at_old, v1::Chat::Hello { name: "ann".into() })
            .await
            .unwrap();
        old.send(at_old, v1::Chat::Say("hi".into())).await.unwrap();
        new.send(
            at_new,
            v2::Chat::Hello {
                name: "bo".into(),
                agent: Some("v2".into()),
            },
        )
        .await
        .unwrap();
        new.send(at_new, v2::Chat::Say("yo".into())).await.unwrap();
        new.send(at_new, v2::Chat::React('!')).await.unwrap();

        let v1::Squared(sq) = old.call(at_old, v1::Square(7)).await.unwrap();
        assert_eq!(sq, 49);
        let v2::Squared(sq) = new.call(at_new, v2::Square(9)).await.unwrap();
        assert_eq!(sq, 81);

        wait_until_10s("every message to arrive", || {
            heard(&old.heard).len() == 3 && heard(&new.heard).len() == 2
        })
        .await;
        assert_eq!(heard(&new.heard), ["hello ann None", "say hi"]);
        assert_eq!(
            heard(&old.heard),
            [
                "hello bo",
                "say yo",
                "other Unknown { tag: 2, body: b\"\\x01!\" }"
            ]
        );
        assert_eq!(dsl::fingerprint_rejections(old.node()), 0);
        assert_eq!(dsl::fingerprint_rejections(new.node()), 0);
        old.node().shut_down().await;
        new.node().shut_down().await;
    }
}

// DSL-41: a version 2 with a variant that version 1 has no catch-all for is refused in the
// handshake, on both sides, each naming the variant from its own side; counted.
#[tokio::test]
async fn dsl_41_an_incompatible_change_is_refused_naming_it() {
    let (logs, _guard) = LogCapture::install(Level::WARN);
    let old = strict::Peer {
        node: node("strict"),
    };
    let new = v2_peer("v2");
    old.start().await.unwrap();
    new.start().await.unwrap();
    refused_both_ways(
        &logs,
        (
            old.node(),
            "the peer's `Chat` has variant `React` (tag 2), which this node's `Chat` lacks and has no catch-all for",
        ),
        (
            new.node(),
            "this node's `Chat` has variant `React` (tag 2), which the peer's `Chat` lacks and has no catch-all for",
        ),
    )
    .await;
    old.node().shut_down().await;
    new.node().shut_down().await;
}

// DSL-42: a peer whose version is outside `accepts` is refused on both sides, each saying
// which version and range.
#[tokio::test]
async fn dsl_42_a_version_outside_the_accepted_range_is_refused() {
    let (logs, _guard) = LogCapture::install(Level::WARN);
    let old = v1_peer("v1");
    let newest = v3::Peer { node: node("v3") };
    old.start().await.unwrap();
    newest.start().await.unwrap();
    refused_both_ways(
        &logs,
        (
            old.node(),
            "the peer speaks version 3 of `chat`; this node accepts 1..=2",
        ),
        (
            newest.node(),
            "the peer speaks version 1 of `chat`; this node accepts 3..",
        ),
    )
    .await;
    old.node().shut_down().await;
    newest.node().shut_down().await;
}

// DSL-43: a client that calls a subset of a server's rpcs connects and calls; one that
// calls an rpc the server does not serve is refused on both sides, naming the rpc.
#[tokio::test]
async fn dsl_43_rpc_lines_are_matched_one_by_one() {
    let (logs, _guard) = LogCapture::install(Level::WARN);
    let server = v2_peer("server");
    let server_addr = server.start().await.unwrap();
    let client = v2::SquareClient {
        node: node("square-client"),
    };
    client.enable_protocols().await;
    client.node().connect(server_addr).await.unwrap();
    let v2::Squared(n) = client.call(server_addr, v2::Square(5)).await.unwrap();
    assert_eq!(n, 25);
    client.node().shut_down().await;
    server.node().shut_down().await;

    let old = v1_peer("v1");
    old.start().await.unwrap();
    let cuber = v2::CubeClient {
        node: node("cube-client"),
    };
    cuber.start().await.unwrap();
    refused_both_ways(
        &logs,
        (cuber.node(), "the peer serves no `rpc Cube`"),
        (
            old.node(),
            "the peer calls `rpc Cube`, which this node does not serve",
        ),
    )
    .await;
    cuber.node().shut_down().await;
    old.node().shut_down().await;
}

// DSL-44: a node may serve an rpc its peer lacks (the peer never calls it); calling that rpc
// on the peer fails at once with `Unsupported`, naming it, and sends nothing.
#[tokio::test]
async fn dsl_44_calling_an_rpc_the_peer_does_not_serve_fails_at_once() {
    let (old, new) = (v1_peer("v1"), v2_peer("v2"));
    let old_addr = old.start().await.unwrap();
    new.start().await.unwrap();
    new.node().connect(old_addr).await.unwrap();
    let err = new.call(old_addr, v2::Cube(3)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
    assert!(
        err.to_string()
            .contains(&format!("{old_addr} does not serve `rpc Cube`")),
        "{err}"
    );
    assert_eq!(dsl::calls_in_flight(new.node()), 0);
    // the connection is fine
    let v2::Squared(n) = new.call(old_addr, v2::Square(4)).await.unwrap();
    assert_eq!(n, 16);
    old.node().shut_down().await;
    new.node().shut_down().await;
}

/// Sends a hello of an older build (a fingerprint, no listening address, no name, and nothing
/// more) to a node at `addr`, reads its hello and, unless it closes, answers its verdict;
/// returns the socket if the node kept the connection.
async fn old_build_hello(
    addr: std::net::SocketAddr,
    fingerprint: u64,
) -> Option<tokio::net::TcpStream> {
    let mut socket = raw::raw_connect(addr).await;
    let mut body = Vec::new();
    let mut fp = fingerprint;
    // a varint, as the hello encodes a u64
    while fp >= 0x80 {
        body.push((fp as u8) | 0x80);
        fp >>= 7;
    }
    body.extend_from_slice(&[fp as u8, 0, 0]);
    let mut hello = b"p2pdsl/2".to_vec();
    hello.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hello.extend_from_slice(&body);
    socket.write_all(&hello).await.unwrap();
    let mut head = [0u8; 10];
    socket.read_exact(&mut head).await.unwrap();
    let mut theirs = vec![0u8; usize::from(u16::from_be_bytes([head[8], head[9]]))];
    socket.read_exact(&mut theirs).await.unwrap();
    let mut verdict = [0u8; 1];
    match socket.read_exact(&mut verdict).await {
        Ok(_) if verdict[0] == 0 => {
            socket.write_all(&[0]).await.unwrap();
            Some(socket)
        }
        _ => None,
    }
}

// DSL-45: a hello without a version or a description (an older build's) is judged by the
// fingerprint alone: the same fingerprint connects, another is refused and counted.
#[tokio::test]
async fn dsl_45_an_older_builds_hello_is_judged_by_its_fingerprint() {
    let old = v1_peer("v1");
    let addr = old.start().await.unwrap();
    let fingerprint = <v1::Peer as Protocol>::FINGERPRINT;
    let kept = old_build_hello(addr, fingerprint).await;
    assert!(kept.is_some());
    wait_until_10s("the connection to register", || {
        old.node().num_connected() == 1
    })
    .await;
    assert!(old_build_hello(addr, fingerprint ^ 1).await.is_none());
    wait_until_10s("the rejection to count", || {
        dsl::fingerprint_rejections(old.node()) == 1
    })
    .await;
    old.node().shut_down().await;
}
