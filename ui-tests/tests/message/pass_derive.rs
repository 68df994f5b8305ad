#![no_implicit_prelude]

pub extern crate pea2pea;
extern crate std;

use pea2pea::Message as _;

mod renamed {
    pub use ::pea2pea as wire;
}

#[derive(::pea2pea::Message)]
struct Named<T> {
    id: u64,
    #[message(max_len = 16)]
    items: ::std::vec::Vec<T>,
}

#[derive(::pea2pea::Message)]
struct Tuple(u8, ::std::string::String);

#[derive(::pea2pea::Message)]
#[message(crate = renamed::wire)]
struct Unit;

#[derive(::pea2pea::Message)]
#[message(crate = "renamed::wire")]
enum Chat {
    Hello { name: ::std::string::String },
    Say(::std::string::String),
    #[message(tag = 9)]
    Bye,
    List(::std::boxed::Box<Chat>),
}

fn main() {
    let bytes = Chat::Bye.to_bytes();
    ::std::assert_eq!(&bytes[..], &[9u8][..]);
    let _ = Named::<u8> { id: 1, items: ::std::vec::Vec::new() }.to_bytes();
    let _ = Tuple(1, ::std::string::String::new()).to_bytes();
    let _ = Unit.to_bytes();
    ::std::assert!(<Chat as ::pea2pea::Message>::SHAPE.starts_with("enum Chat {"));
}
