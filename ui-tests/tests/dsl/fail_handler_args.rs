use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Chat {
    Hello { name: String },
    Say(String),
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Chat {
        on Chat::Hello(name) => println!("{name}"),
        on Chat::Say { text } => println!("{text}"),
        on_connect(addr, origin) => {}
        on_disconnect() => {}
    }
}

fn main() {}
