use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Chat {
    Hello { name: String },
    Say(String),
    Bye,
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Chat {
        on Chat::Hello { name } from addr => println!("{addr} is {name}"),
        on Chat::Say(text) => println!("{text}"),
    }
}

fn main() {}
