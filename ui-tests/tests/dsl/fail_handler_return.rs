use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Chat {
    Say(String),
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Chat {
        on Chat::Say(text) => text,
        on_connect(addr) => addr.port(),
    }
}

fn main() {}
