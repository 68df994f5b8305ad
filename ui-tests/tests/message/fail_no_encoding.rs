use pea2pea::Message;

struct Opaque;

#[derive(Message)]
struct Envelope {
    id: u32,
    body: Opaque,
}

fn main() {}
