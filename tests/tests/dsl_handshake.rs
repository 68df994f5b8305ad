//! Handshakes with the DSL: the built-in fingerprint check, and a hand-written `Handshake`
//! (an XOR-obfuscated stream, via take_stream/return_stream) beside DSL-routed messages.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use pea2pea::{
    Config, Connection, Message, Node, Pea2Pea,
    dsl::{self, Protocol},
    protocol,
    protocols::Handshake,
};
use pea2pea_tests::{XorStream, wait_until_10s};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn node(name: &str) -> Node {
    Node::new(Config {
        name: Some(name.into()),
        ..Default::default()
    })
}

// ---- the fingerprint handshake ----

mod v1 {
    use super::*;

    #[derive(Message, Debug)]
    pub enum Chat {
        Say(String),
    }

    #[pea2pea::node]
    #[derive(Clone)]
    pub struct Peer {
        pub node: Node,
        pub heard: Arc<AtomicUsize>,
    }

    protocol! {
        Peer speaks Chat {
            name = "chat",
            handshake = fingerprint,
            handshake_timeout = 2 s,
            on Chat::Say(_) => { self.heard.fetch_add(1, Ordering::Relaxed); }
        }
    }
}

mod v2 {
    use super::*;

    /// The same name, one more field: a different shape, so a different protocol.
    #[derive(Message, Debug)]
    pub enum Chat {
        Say(String, u8),
    }

    #[pea2pea::node]
    #[derive(Clone)]
    pub struct Peer {
        pub node: Node,
    }

    protocol! {
        Peer speaks Chat {
            name = "chat",
            handshake = fingerprint,
            on Chat::Say(..) => {},
        }
    }
}

#[tokio::test]
async fn a_fingerprint_mismatch_is_rejected_on_both_sides() {
    assert_ne!(
        <v1::Peer as Protocol>::FINGERPRINT,
        <v2::Peer as Protocol>::FINGERPRINT
    );
    let old = v1::Peer {
        node: node("v1"),
        heard: Default::default(),
    };
    let new = v2::Peer { node: node("v2") };
    old.start().await.unwrap();
    let new_addr = new.start().await.unwrap();

    let err = old.node().connect(new_addr).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("the protocols differ"), "{err}");
    assert_eq!(dsl::fingerprint_rejections(old.node()), 1);
    wait_until_10s("the other side to reject it too", || {
        dsl::fingerprint_rejections(new.node()) == 1
    })
    .await;
    assert_eq!(old.node().num_connected(), 0);
    wait_until_10s("no connection on the other side", || {
        new.node().num_connected() == 0 && new.node().num_connecting() == 0
    })
    .await;

    // two nodes that speak the same declaration pass, and talk
    let twin = v1::Peer {
        node: node("v1-twin"),
        heard: Default::default(),
    };
    let twin_addr = twin.start().await.unwrap();
    old.node().connect(twin_addr).await.unwrap();
    old.send(twin_addr, v1::Chat::Say("hi".into()))
        .await
        .unwrap();
    wait_until_10s("the twin to hear it", || {
        twin.heard.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(dsl::fingerprint_rejections(twin.node()), 0);

    for n in [old.node(), new.node(), twin.node()] {
        n.shut_down().await;
    }
}

// A client that reads what its server writes speaks the same protocol.
mod split {
    use super::*;

    #[derive(Message, Debug)]
    pub struct Ask(pub u32);

    #[derive(Message, Debug)]
    pub struct Tell(pub u32);

    #[pea2pea::node]
    #[derive(Clone)]
    pub struct Server {
        pub node: Node,
    }

    protocol! {
        Server reads Ask, writes Tell {
            handshake = fingerprint,
            on Ask(n) from addr => { let _ = self.send_fast(addr, Tell(n + 1)); }
        }
    }

    #[pea2pea::node]
    #[derive(Clone)]
    pub struct Client {
        pub node: Node,
        pub last: Arc<AtomicUsize>,
    }

    protocol! {
        Client writes Ask, reads Tell {
            handshake = fingerprint,
            on Tell(n) => self.last.store(n as usize, Ordering::Relaxed),
        }
    }
}

#[tokio::test]
async fn a_client_and_its_server_share_a_fingerprint() {
    assert_eq!(
        <split::Server as Protocol>::FINGERPRINT,
        <split::Client as Protocol>::FINGERPRINT
    );
    let server = split::Server {
        node: node("server"),
    };
    let client = split::Client {
        node: node("client"),
        last: Default::default(),
    };
    let server_addr = server.start().await.unwrap();
    client.enable_protocols().await;
    client.node().connect(server_addr).await.unwrap();
    client.send(server_addr, split::Ask(41)).await.unwrap();
    wait_until_10s("the answer", || client.last.load(Ordering::Relaxed) == 42).await;
    client.node().shut_down().await;
    server.node().shut_down().await;
}

// ---- a hand-written handshake beside DSL-routed messages ----

#[derive(Message, Debug)]
enum Secret {
    Word(String),
}

#[pea2pea::node]
#[derive(Clone)]
struct Masked {
    node: Node,
    key: u8,
    words: Arc<std::sync::Mutex<Vec<String>>>,
    handshakes: Arc<AtomicUsize>,
}

impl Handshake for Masked {
    const TIMEOUT_MS: u64 = 2_000;

    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        let mut stream = self.take_stream(&mut conn);
        // each side announces the key it masks with; both must agree
        stream.write_u8(self.key).await?;
        let theirs = stream.read_u8().await?;
        if theirs != self.key {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the peer masks with another key",
            ));
        }
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        self.return_stream(&mut conn, XorStream::new(stream, self.key));
        Ok(conn)
    }
}

protocol! {
    Masked speaks Secret {
        handshake = custom,
        on Secret::Word(word) => self.words.lock().unwrap().push(word),
    }
}

fn masked(name: &str, key: u8) -> Masked {
    Masked {
        node: node(name),
        key,
        words: Default::default(),
        handshakes: Default::default(),
    }
}

#[tokio::test]
async fn a_hand_written_handshake_works_beside_dsl_messages() {
    let (a, b) = (masked("a", 0x5a), masked("b", 0x5a));
    a.start().await.unwrap();
    let b_addr = b.start().await.unwrap();
    a.node().connect(b_addr).await.unwrap();
    a.send(b_addr, Secret::Word("open sesame".into()))
        .await
        .unwrap();
    wait_until_10s("b to hear the word", || {
        b.words.lock().unwrap().as_slice() == ["open sesame"]
    })
    .await;
    assert_eq!(a.handshakes.load(Ordering::Relaxed), 1);
    assert_eq!(b.handshakes.load(Ordering::Relaxed), 1);

    // a node with another key fails the custom handshake
    let c = masked("c", 0x11);
    c.start().await.unwrap();
    let err = c.node().connect(b_addr).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");

    for n in [a.node(), b.node(), c.node()] {
        n.shut_down().await;
    }
}
