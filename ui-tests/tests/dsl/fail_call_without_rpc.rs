// `call` on a node whose protocol declares no rpc: one error, saying what to declare.
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
        on _ => {},
    }
}

async fn ask(peer: &Peer, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let _pong: Pong = peer.call(addr, Ping).await?;
    Ok(())
}

fn main() {
    let _ = ask;
}
