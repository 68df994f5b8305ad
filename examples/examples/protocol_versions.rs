//! Two versions of one protocol on one network: bob runs version 1, alice version 2, and each
//! reads what the other sends.
//!
//! ```text
//! cargo run --example protocol_versions
//! ```
//!
//! Version 1 was written to grow: its message types are `#[message(extensible)]` (they skip
//! fields added after the ones they know) and its enum has a `#[message(other)]` catch-all
//! (it keeps variants it does not know, with their bytes). Version 2 adds a trailing
//! `#[message(default)]` field to `Hello`, a trailing field to the `Status` struct, and a new
//! variant, `React`. So:
//!
//! * alice reads bob's `Hello` and `Status` with the new fields defaulted;
//! * bob reads alice's `Hello` and `Status` without the new fields, and her `React` as
//!   `Unknown { tag, body }`, which he relays back to her unchanged: she gets her `React`;
//! * nobody drops a connection.
//!
//! Both declare `handshake = fingerprint` with a `version` and the versions they `accept`: the
//! handshake compares their protocols part by part and lets them connect. Carol runs a build
//! that changed `Say`'s text into a number, a change old readers cannot follow: her handshake
//! with alice is refused on both sides, each saying what differs.
//!
//! Each node prints what it understood. Rust types in modules stand for the versions, as
//! separate builds of one program would.

use std::{
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use pea2pea::{Config, Node, Pea2Pea, message::Delimited, protocol};
use pea2pea_examples::{lock, wait_until};

/// Version 1, as first released.
mod v1 {
    use bytes::Bytes;
    use pea2pea::{Message, message::Delimited};

    #[derive(Message, Debug, Clone)]
    #[message(extensible)]
    pub enum Chat {
        Hello {
            name: String,
        },
        Say(String),
        // A struct that may grow is nested with its length, so that its end is known.
        Status(Delimited<Status>),
        #[message(other)]
        Unknown {
            tag: u32,
            body: Bytes,
        },
    }

    #[derive(Message, Debug, Clone)]
    #[message(extensible)]
    pub struct Status {
        pub height: u64,
        pub peers: u32,
    }
}

/// Version 2: one field more in `Hello` and in `Status`, and a new variant.
mod v2 {
    use bytes::Bytes;
    use pea2pea::{Message, message::Delimited};

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub enum Chat {
        Hello {
            name: String,
            #[message(default)]
            agent: Option<String>,
        },
        Say(String),
        Status(Delimited<Status>),
        React {
            to: String,
            emoji: char,
        },
        #[message(other)]
        Unknown {
            tag: u32,
            body: Bytes,
        },
    }

    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(extensible)]
    pub struct Status {
        pub height: u64,
        pub peers: u32,
        #[message(default = unknown_mode)]
        pub mode: String,
    }

    /// What a version-1 peer's status reads as: it never said.
    fn unknown_mode() -> String {
        "unknown".into()
    }
}

/// A build that broke the protocol: `Say` carries a number where version 1 has text.
mod broken {
    use pea2pea::Message;

    #[derive(Message, Debug, Clone)]
    #[message(extensible)]
    pub enum Chat {
        Hello { name: String },
        Say(u64),
    }
}

/// What a node understood, in order.
type Heard = Arc<Mutex<Vec<String>>>;

fn note(node: &Node, heard: &Heard, line: String) {
    println!("{:>5} understood {line}", node.name());
    lock(heard).push(line);
}

#[pea2pea::node]
#[derive(Clone)]
struct Bob {
    node: Node,
    heard: Heard,
}

protocol! {
    Bob speaks v1::Chat {
        name = "chat",
        handshake = fingerprint,
        version = 1,
        accepts = 1..=2,
        on v1::Chat::Hello { name } => note(self.node(), &self.heard, format!("Hello from {name}")),
        on v1::Chat::Say(text) => note(self.node(), &self.heard, format!("Say {text:?}")),
        on v1::Chat::Status(status) => note(self.node(), &self.heard, format!("{:?}", status.0)),
        // A variant from a newer version: kept whole, and relayed back as it came.
        on v1::Chat::Unknown { tag, body } from addr => {
            let line = format!("a variant it does not know (tag {tag}, {} bytes): relaying it back", body.len());
            note(self.node(), &self.heard, line);
            if let Err(e) = self.send(addr, v1::Chat::Unknown { tag, body }).await {
                eprintln!("bob could not relay: {e}");
            }
        }
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Alice {
    node: Node,
    heard: Heard,
}

protocol! {
    Alice speaks v2::Chat {
        name = "chat",
        handshake = fingerprint,
        version = 2,
        accepts = 1..,
        on v2::Chat::Hello { name, agent } => {
            note(self.node(), &self.heard, format!("Hello from {name}, agent {agent:?}"))
        }
        on v2::Chat::Say(text) => note(self.node(), &self.heard, format!("Say {text:?}")),
        on v2::Chat::Status(status) => note(self.node(), &self.heard, format!("{:?}", status.0)),
        on v2::Chat::React { to, emoji } => {
            note(self.node(), &self.heard, format!("React {emoji} to {to:?} (relayed intact)"))
        }
        on v2::Chat::Unknown { tag, .. } => {
            note(self.node(), &self.heard, format!("a variant it does not know (tag {tag})"))
        }
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Carol {
    node: Node,
}

protocol! {
    Carol speaks broken::Chat {
        name = "chat",
        handshake = fingerprint,
        version = 2,
        on _ => {},
    }
}

fn config(name: &str) -> Config {
    Config {
        name: Some(name.into()),
        ..Config::loopback() // listen on 127.0.0.1:0
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    pea2pea_examples::start_logger();
    let bob = Bob {
        node: Node::new(config("bob")),
        heard: Heard::default(),
    };
    let alice = Alice {
        node: Node::new(config("alice")),
        heard: Heard::default(),
    };
    let bob_addr = bob.start().await?;
    alice.start().await?;
    alice.node().connect(bob_addr).await?;
    let alice_addr = wait_for_peer(bob.node()).await?;
    println!("bob speaks version 1, alice version 2; they are connected\n");

    bob.send(alice_addr, v1::Chat::Hello { name: "bob".into() })
        .await?;
    bob.send(alice_addr, v1::Chat::Say("hello from version 1".into()))
        .await?;
    let status = v1::Status {
        height: 100,
        peers: 3,
    };
    bob.send(alice_addr, v1::Chat::Status(Delimited(status)))
        .await?;

    let hello = v2::Chat::Hello {
        name: "alice".into(),
        agent: Some("pea2pea-example/2".into()),
    };
    alice.send(bob_addr, hello).await?;
    alice
        .send(bob_addr, v2::Chat::Say("hello from version 2".into()))
        .await?;
    let status = v2::Status {
        height: 101,
        peers: 4,
        mode: "archive".into(),
    };
    alice
        .send(bob_addr, v2::Chat::Status(Delimited(status)))
        .await?;
    let react = v2::Chat::React {
        to: "hello from version 1".into(),
        emoji: '👋',
    };
    alice.send(bob_addr, react).await?;

    // alice: 3 from bob and her React back; bob: 4 from alice
    let done = wait_until(Duration::from_secs(10), || {
        lock(&alice.heard).len() == 4 && lock(&bob.heard).len() == 4
    })
    .await;
    let connected = alice.node().num_connected() == 1 && bob.node().num_connected() == 1;
    println!(
        "\nsummary: alice (v2) understood {} messages, bob (v1) understood {}; {}",
        lock(&alice.heard).len(),
        lock(&bob.heard).len(),
        if connected {
            "still connected"
        } else {
            "the connection dropped"
        }
    );
    let refused = carol_is_refused(&alice).await?;
    alice.node().shut_down().await;
    bob.node().shut_down().await;
    if !refused {
        return Err(io::Error::other(
            "carol's handshake with alice was not refused naming `Chat::Say.0`",
        ));
    }
    if done && connected {
        Ok(())
    } else {
        Err(io::Error::other(
            "not every message was understood within 10s",
        ))
    }
}

/// Carol dials alice; returns whether both refused, naming the field that changed.
async fn carol_is_refused(alice: &Alice) -> io::Result<bool> {
    let carol = Carol {
        node: Node::new(config("carol")),
    };
    carol.start().await?;
    let alice_addr = alice.node().listening_addr().await?;
    println!("\ncarol's build changed `Say(String)` into `Say(u64)`; she dials alice:");
    let refused = match carol.node().connect(alice_addr).await {
        Ok(()) => false,
        Err(e) => {
            println!("carol: {e}");
            e.to_string()
                .contains("`Chat::Say.0` is `String`, this node's is `u64`")
        }
    };
    // alice refuses too, and says so in her log (a warning naming her node)
    let alice_refused = wait_until(Duration::from_secs(5), || {
        pea2pea::dsl::fingerprint_rejections(alice.node()) == 1
    })
    .await;
    carol.node().shut_down().await;
    Ok(refused && alice_refused)
}

/// The address of the first peer connected to `node`, once there is one.
async fn wait_for_peer(node: &Node) -> io::Result<std::net::SocketAddr> {
    let connected = wait_until(Duration::from_secs(5), || node.num_connected() == 1).await;
    node.connected_addrs()
        .first()
        .copied()
        .filter(|_| connected)
        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "no peer within 5s"))
}
