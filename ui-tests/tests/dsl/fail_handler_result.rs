use pea2pea::{Message, Node, protocol};

#[derive(Message, Debug)]
enum Chat {
    Say(String),
    Count(String),
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Chat {
        // a said result must be `()` or a `Result<(), E>`
        on Chat::Say(text) -> usize => text.len(),
        // `?` without a said result means `io::Result<()>`: a parse error does not convert
        on Chat::Count(text) => {
            let _n: u32 = text.parse()?;
            Ok(())
        }
    }
}

fn main() {}
