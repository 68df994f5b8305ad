use pea2pea::Message;

// Tags 1 and 3 belonged to variants that were removed.
#[derive(Message)]
#[message(reserved(1, 3, 3))]
enum Chat {
    Hello,
    // Would get tag 1, the previous tag plus one.
    Say(String),
    #[message(tag = 3)]
    React(char),
    #[message(tag = 4)]
    Bye,
}

#[derive(Message)]
#[message(reserved(2))]
struct Status {
    height: u64,
}

fn main() {}
