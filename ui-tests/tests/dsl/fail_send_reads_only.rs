// `send` on a node whose protocol only reads: one error per use, saying to declare `writes`.
use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Note {
    Text(String),
}

#[pea2pea::node]
#[derive(Clone)]
struct Listener {
    node: Node,
}

protocol! {
    Listener reads Note {
        on _ => {},
    }
}

async fn tell(listener: &Listener, addr: std::net::SocketAddr) -> std::io::Result<()> {
    listener.send(addr, Note::Text("hi".into())).await?;
    listener.send_fast(addr, Note::Text("hi".into()))?;
    Ok(())
}

fn main() {
    let _ = tell;
}
