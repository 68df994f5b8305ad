use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Note {
    Text(String),
}

#[derive(Message, Debug)]
struct Ping(u32);

#[derive(Message, Debug)]
struct Pong(u32);

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Note {
        on _ => {},
        rpc Ping(n) -> Pong => n + 1,
    }
}

fn main() {}
