// A generated `send` without `.await` sends nothing: the lint says so (denied here, a warning
// by default).
#![deny(unused_must_use)]

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
    Peer speaks Note {
        on _ => {},
    }
}

async fn tell(peer: &Peer, addr: std::net::SocketAddr) {
    peer.send(addr, Note::Text("hi".into()));
}

fn main() {
    let _ = tell;
}
