//! A node with the DSL handshake (`handshake = fingerprint`) meeting one without, either side
//! dialling (DSL-55): each side says so in one warning line naming the node, and in the close
//! reason or the error it returns.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
use pea2pea_tests::{logs::LogCapture, wait_until_10s};
use tracing::Level;

#[derive(Message, Debug, Clone, PartialEq)]
enum Note {
    Hi,
}

#[pea2pea::node]
#[derive(Clone)]
struct Shaken {
    node: Node,
}

protocol! {
    Shaken speaks Note {
        handshake = fingerprint,
        on Note::Hi => {},
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Plain {
    node: Node,
    ended: Arc<Mutex<Vec<Option<String>>>>,
}

protocol! {
    Plain speaks Note {
        on Note::Hi => {},
        on_disconnect(addr, _) => {
            let reason = self.node().connection_info(addr).and_then(|i| i.close_reason());
            self.ended.lock().unwrap().push(reason);
        }
    }
}

fn config(name: &str) -> Config {
    Config {
        name: Some(name.into()),
        ..Config::loopback()
    }
}

/// Both nodes, started; returns them with their listening addresses.
async fn pair() -> (Shaken, SocketAddr, Plain, SocketAddr) {
    let shaken = Shaken {
        node: Node::new(config("shaken")),
    };
    let plain = Plain {
        node: Node::new(config("plain")),
        ended: Default::default(),
    };
    let shaken_addr = shaken.start().await.unwrap();
    let plain_addr = plain.start().await.unwrap();
    (shaken, shaken_addr, plain, plain_addr)
}

/// Waits until each side has logged its warning about the other, and checks what they say.
async fn both_sides_say_so(capture: &LogCapture, plain: &Plain) {
    let plain_says = "a pea2pea DSL hello: the peer declares `handshake = fingerprint` and this node's protocol does not";
    let shaken_says = "the peer closed the connection instead of sending a pea2pea DSL hello";
    wait_until_10s("both warnings", || {
        capture.any_line_contains(Level::WARN, plain_says)
            && capture.any_line_contains(Level::WARN, shaken_says)
    })
    .await;
    let warnings = capture.lines_at(Level::WARN);
    let plain_line = warnings.iter().find(|l| l.contains(plain_says)).unwrap();
    assert!(plain_line.contains("node{name=plain}"), "{plain_line}");
    let shaken_line = warnings.iter().find(|l| l.contains(shaken_says)).unwrap();
    assert!(shaken_line.contains("node{name=shaken}"), "{shaken_line}");
    wait_until_10s("plain's on_disconnect", || {
        !plain.ended.lock().unwrap().is_empty()
    })
    .await;
    let reason = plain.ended.lock().unwrap()[0].clone().unwrap();
    assert!(reason.contains(plain_says), "{reason}");
}

// DSL-55: the node without the handshake dials the one with it: both say so.
#[tokio::test(flavor = "current_thread")]
async fn dsl_55_a_plain_node_dials_one_with_the_dsl_handshake() {
    let (capture, _guard) = LogCapture::install(Level::WARN);
    let (shaken, shaken_addr, plain, _) = pair().await;
    // no handshake: the TCP connection is all it waits for
    plain.node().connect(shaken_addr).await.unwrap();
    both_sides_say_so(&capture, &plain).await;
    assert_eq!(plain.node().num_connected(), 0);
    shaken.node().shut_down().await;
    plain.node().shut_down().await;
}

// DSL-55: the node with the handshake dials the one without: both say so, and its `connect`
// fails with the same words.
#[tokio::test(flavor = "current_thread")]
async fn dsl_55_a_node_with_the_dsl_handshake_dials_a_plain_one() {
    let (capture, _guard) = LogCapture::install(Level::WARN);
    let (shaken, _, plain, plain_addr) = pair().await;
    let err = shaken.node().connect(plain_addr).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("the peer closed the connection instead of sending a pea2pea DSL hello"),
        "{err}"
    );
    both_sides_say_so(&capture, &plain).await;
    shaken.node().shut_down().await;
    plain.node().shut_down().await;
}
