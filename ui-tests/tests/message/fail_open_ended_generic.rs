use bytes::Bytes;
use pea2pea::Message;

#[derive(Message, Debug)]
#[message(extensible)]
struct Status {
    height: u64,
}

// The field's type is a parameter: checked when the decoder is compiled for `Status`.
#[derive(Message, Debug)]
struct Pair<T> {
    first: T,
    second: T,
}

fn main() {
    let _ = Pair::<Status>::from_bytes(Bytes::new());
    // Outside any derive, a Vec of open-ended values cannot be decoded either.
    let _ = Vec::<Status>::from_bytes(Bytes::new());
}
