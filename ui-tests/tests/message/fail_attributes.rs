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

fn main() {}
