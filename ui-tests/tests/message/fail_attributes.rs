use pea2pea::Message;

#[derive(Message)]
#[message(rename = "x")]
enum Cmd {
    #[message(tag = "seven")]
    Start,
    #[message(max_len = 4)]
    Stop,
    Say(#[message(max_len)] String),
}

#[derive(Message)]
#[message(extensible = true)]
enum Evolving {
    #[message(other(all))]
    Unknown(u32, bytes::Bytes),
}

#[derive(Message)]
#[message(reserved)]
enum NoList {
    A(#[message(default = 5)] u8),
    #[message(extensible)]
    B,
}

fn main() {}
