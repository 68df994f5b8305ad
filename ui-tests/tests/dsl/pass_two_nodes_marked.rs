//! `#[node]` picks the marked field among several `Node`s; a tuple struct works too.

use pea2pea::{Config, Node, Pea2Pea};

#[pea2pea::node]
#[derive(Clone)]
struct Relay {
    upstream: Node,
    #[node]
    own: Node,
}

#[pea2pea::node]
#[derive(Clone)]
struct Bare(Node);

fn main() {
    let relay = Relay {
        upstream: Node::new(Config {
            name: Some("up".into()),
            ..Default::default()
        }),
        own: Node::new(Config {
            name: Some("own".into()),
            ..Default::default()
        }),
    };
    assert_eq!(relay.node().name(), "own");
    let bare = Bare(Node::new(Config::default()));
    assert_eq!(bare.node().num_connected(), 0);
}
