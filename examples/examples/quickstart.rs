//! The smallest DSL node: a three-message protocol with logging handlers, and a run in which
//! two such nodes, alice and bob, say hello, chat, and part.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! `protocol!` writes the engine's `Reading`, `Writing` and `OnDisconnect` impls for `Peer`,
//! a typed `send`, and a `start` that enables them and listens. The handlers log at INFO; the
//! engine runs them in their connection's span, so each line says which node heard what from
//! whom (`RUST_LOG=debug` shows the engine's own events too).

use std::{io, time::Duration};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
use pea2pea_examples::wait_until;
use tracing::info;

// ---- the node: this is all a peer needs ----

#[derive(Message, Debug)]
enum Chat {
    Hello { name: String },
    Say(String),
    Bye,
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Chat over length_delimited(max_frame = 64 KiB) {
        on Chat::Hello { name } from addr => info!("{addr} is {name}"),
        on Chat::Say(text) from addr      => info!("{addr}: {text}"),
        on Chat::Bye from addr            => { self.node().disconnect(addr).await; }
        on_disconnect(addr)               => info!("{addr} left"),
    }
}

// ---- a run: two peers on loopback ----

#[tokio::main]
async fn main() -> io::Result<()> {
    pea2pea_examples::start_logger_at("info");

    let peer = |name: &str| Peer {
        node: Node::new(Config {
            name: Some(name.into()),
            ..Config::loopback() // listen on 127.0.0.1:0, admit many peers from one IP
        }),
    };
    let (alice, bob) = (peer("alice"), peer("bob"));
    alice.start().await?; // enables the protocols and listens
    let bob_addr = bob.start().await?;

    alice.node().connect(bob_addr).await?;
    // `send` returns once the message is written to the socket
    alice
        .send(
            bob_addr,
            Chat::Hello {
                name: "alice".into(),
            },
        )
        .await?;
    alice.send(bob_addr, Chat::Say("hi bob!".into())).await?;
    alice.send(bob_addr, Chat::Bye).await?;

    // Bye makes bob hang up, and then alice sees the connection close
    let parted = wait_until(Duration::from_secs(5), || {
        alice.node().num_connected() == 0 && bob.node().num_connected() == 0
    })
    .await;

    // the enabled protocols hold the nodes: shut them down explicitly
    alice.node().shut_down().await;
    bob.node().shut_down().await;
    if parted {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peers did not part within 5s",
        ))
    }
}
