use bytes::Bytes;
use pea2pea::Message;

// A catch-all needs exactly the tag and the bytes.
#[derive(Message)]
enum NoFields {
    Hello,
    #[message(other)]
    Unknown,
}

#[derive(Message)]
enum ThreeFields {
    Hello,
    #[message(other)]
    Unknown { tag: u32, body: Bytes, seen_at: u64 },
}

// It has no tag of its own, and comes last.
#[derive(Message)]
enum Tagged {
    Hello,
    #[message(other, tag = 7)]
    Unknown(u32, Bytes),
}

#[derive(Message)]
enum NotLast {
    #[message(other)]
    Unknown(u32, Bytes),
    Hello,
}

// Its fields hold whatever arrived: no defaults or limits.
#[derive(Message)]
enum WithAttributes {
    Hello,
    #[message(other)]
    Unknown(u32, #[message(max_len = 64)] Bytes),
}

fn main() {}
