use pea2pea::Message;

#[derive(Message)]
struct Header {
    #[message(max_len = 8)]
    count: u32,
}

fn main() {}
