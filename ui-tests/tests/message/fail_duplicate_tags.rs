use pea2pea::Message;

#[derive(Message)]
enum Cmd {
    #[message(tag = 1)]
    Start,
    #[message(tag = 2)]
    Stop,
    #[message(tag = 1)]
    Pause,
}

fn main() {}
