use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Note {
    Text(String),
}

#[derive(Message, Debug)]
struct Ping;

#[derive(Message, Debug)]
struct Pong;

#[derive(Message, Debug)]
struct Other;

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Note {
        on _ => {},
        rpc Ping -> Pong,
    }
}

async fn ask(peer: &Peer, addr: std::net::SocketAddr) {
    let _ = peer.call(addr, Other).await;
}

fn main() {
    let _ = ask;
}
