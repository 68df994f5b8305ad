//! A node type may implement `Clone` by hand: the protocol's impls need `Clone`, not the derive.

#![deny(warnings)]

use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Chat {
    Say(String),
}

#[pea2pea::node]
struct Peer {
    node: Node,
}

impl Clone for Peer {
    fn clone(&self) -> Self {
        Peer {
            node: self.node.clone(),
        }
    }
}

protocol! {
    Peer speaks Chat {
        on Chat::Say(text) => println!("{text}"),
    }
}

fn main() {
    let _ = Peer::start;
}
