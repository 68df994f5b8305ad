// Message types without `#[derive(Message)]`: one error for each, at the type as the protocol
// names it, however many places the expansion uses it.
use pea2pea::{Message, Node, protocol};

#[derive(Debug)]
enum Chat {
    Say(String),
}

#[derive(Message, Debug)]
struct Note(String);

#[derive(Debug)]
struct Ping(u32);

#[derive(Debug)]
struct Pong(u32);

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Chat {
        handshake = fingerprint,
        on Chat::Say(text) => println!("{text}"),
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Server {
    node: Node,
}

protocol! {
    Server speaks Note {
        on Note(text) => println!("{text}"),
        rpc Ping(n) -> Pong => Pong(n),
    }
}

fn main() {}
