// `version` and `accepts`: a range must include the node's own version, both need the
// fingerprint handshake (which exchanges them), and the values must be versions.
use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Note {
    Text(String),
}

#[pea2pea::node]
#[derive(Clone)]
struct Upgraded {
    node: Node,
}

protocol! {
    Upgraded speaks Note {
        handshake = fingerprint,
        version = 2,
        accepts = 3..,
        on _ => {},
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Plain {
    node: Node,
}

protocol! {
    Plain speaks Note {
        version = 2,
        accepts = 1..=2,
        on _ => {},
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Odd {
    node: Node,
}

protocol! {
    Odd speaks Note {
        handshake = fingerprint,
        version = 0,
        accepts = 1..3,
        on _ => {},
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Empty {
    node: Node,
}

protocol! {
    Empty speaks Note {
        handshake = fingerprint,
        accepts = 3..=1,
        on _ => {},
    }
}

fn main() {}
