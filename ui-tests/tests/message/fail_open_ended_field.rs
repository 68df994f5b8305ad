use pea2pea::{Message, message::Delimited};

#[derive(Message)]
struct Profile {
    name: String,
    #[message(default)]
    bio: Option<String>,
}

// Profile finds its end at the end of the frame: as a field, its end is unknown.
#[derive(Message)]
struct Roster {
    owner: Profile,
    members: Vec<Profile>,
    channel: String,
}

#[derive(Message)]
enum Event {
    Joined(Option<Profile>),
    // Fine: the length prefix tells where the profile ends.
    Left(Delimited<Profile>),
}

fn main() {}
