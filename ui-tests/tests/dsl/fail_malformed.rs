use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Note {
    Text(String),
    Ping,
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Note {
        on Note::Text(text) println!("{text}"),
        when Note::Ping => {}
    }
}

protocol! {
    Peer talks Note {}
}

fn main() {}
