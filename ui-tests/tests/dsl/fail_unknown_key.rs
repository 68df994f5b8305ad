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

protocol! {
    Peer speaks Note over length_delimited(max_frame = 1 KiB, endianness = big) {
        queue_depth = 16,
        idle_timeout = 30,
        write_timeout = 5 parsecs,
        handshake = noise,
        on _ => {},
    }
}

fn main() {}
