// A mistake in a derive's attributes is reported once, at the attribute: the type still gets an
// impl (never run), so its uses below add no "has no wire encoding" errors.
use pea2pea::Message;

#[derive(Message, Debug)]
enum Chat {
    Hello,
    #[message(tag = 0)]
    Bye,
}

#[derive(Message, Debug)]
struct Envelope {
    chat: Chat,
    seq: u32,
}

fn main() {
    let bytes = Envelope { chat: Chat::Bye, seq: 1 }.to_bytes();
    let _ = Chat::from_bytes(bytes);
}
