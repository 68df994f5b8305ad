use bytes::Bytes;
use pea2pea::Message;

#[derive(Message)]
enum Chat {
    Hello,
    #[message(other)]
    Unknown(u32, Bytes),
    #[message(other)]
    Unrecognised(u32, Bytes),
}

fn main() {}
