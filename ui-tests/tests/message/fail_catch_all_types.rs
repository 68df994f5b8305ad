use pea2pea::Message;

#[derive(Message)]
enum Chat {
    Hello,
    #[message(other)]
    Unknown { tag: u64, body: Vec<u8> },
}

fn main() {}
