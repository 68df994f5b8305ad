use pea2pea::Message;

// A field can be absent only where the message ends, so only the last fields can be defaulted.
#[derive(Message)]
struct Hello {
    #[message(default)]
    agent: Option<String>,
    name: String,
}

#[derive(Message)]
enum Chat {
    Say(#[message(default)] String, u64),
    // A run of defaulted fields at the end is fine.
    Join {
        room: String,
        #[message(default)]
        topic: Option<String>,
        #[message(default)]
        since: u64,
    },
}

fn main() {}
