use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Note {
    Text(String),
}

#[derive(Message, Debug)]
struct Ping;

#[derive(Message, Debug)]
struct Pong;

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Note {
        read_queue = 16,
        read_queue = 32,
        on _ => {},
        rpc Ping -> Pong,
        rpc Ping -> Pong,
        on_disconnect(addr) => println!("{addr} left"),
        on_disconnect(addr) => println!("{addr} is gone"),
    }
}

fn main() {}
