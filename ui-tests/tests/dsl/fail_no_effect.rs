// Settings that cannot apply to this protocol are errors, not silently ignored: each says what
// the protocol would need.
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
struct Listener {
    node: Node,
}

protocol! {
    Listener reads Note {
        write_queue = 16,
        call_timeout = 5 s,
        handshake_timeout = 2 s,
        on _ => {},
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Server {
    node: Node,
}

// rpc lines add no `OnDisconnect`: without the hook, `disconnect_timeout` would set nothing
protocol! {
    Server speaks Note {
        disconnect_timeout = 1 s,
        on _ => {},
        rpc Ping -> Pong => Pong,
    }
}

fn main() {}
