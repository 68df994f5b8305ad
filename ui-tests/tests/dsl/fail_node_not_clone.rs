// A node type without `Clone`: one error, at the node type as the protocol names it, saying
// what to add and why (not one for each engine trait and method that needs it). A call of a
// generated method is an error of its own, at the call, that names the same missing bound.
use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Chat {
    Say(String),
}

#[derive(Message, Debug)]
struct Ping(u32);

#[pea2pea::node]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Chat {
        handshake = fingerprint,
        on Chat::Say(text) => println!("{text}"),
        rpc Ping(n) -> Ping => Ping(n),
        on_connect(_addr) => {},
        on_disconnect(_addr) => {},
    }
}

async fn run(peer: Peer) {
    let _ = peer.start().await;
}

fn main() {
    let _ = run;
}
