use pea2pea::Message;

#[derive(Message)]
struct Mode(u8);

#[derive(Message)]
struct Status {
    height: u64,
    #[message(default)]
    mode: Mode,
    #[message(default = missing_fn)]
    label: String,
}

fn main() {}
