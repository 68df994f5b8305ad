// A field whose type means something only in this process: the error says what to send instead.
use std::time::Instant;

use pea2pea::Message;

#[derive(Message)]
struct Heartbeat {
    sent: Instant,
}

fn main() {}
