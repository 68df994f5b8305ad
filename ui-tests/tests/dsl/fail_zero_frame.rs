use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Note {
    Text(String),
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

#[pea2pea::node]
#[derive(Clone)]
struct Other {
    node: Node,
}

protocol! {
    Peer speaks Note over length_delimited(max_frame = 0) {
        write_queue = 0,
        on _ => {},
    }
}

protocol! {
    Other speaks Note over length_delimited(max_frame = 1 MiB, length_width = 2) {
        on _ => {},
    }
}

fn main() {}
