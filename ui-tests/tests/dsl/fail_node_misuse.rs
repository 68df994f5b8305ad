use pea2pea::Node;

#[pea2pea::node]
enum Peer {
    A(Node),
}

#[pea2pea::node]
union Raw {
    a: u32,
}

#[pea2pea::node]
struct Lonely {
    name: String,
}

#[pea2pea::node]
struct Twins {
    left: Node,
    right: pea2pea::Node,
}

#[pea2pea::node]
struct Marked {
    #[node]
    left: Node,
    #[node]
    right: Node,
}

#[pea2pea::node(krate = ::pea2pea)]
struct BadArg {
    node: Node,
}

fn main() {}
