#![no_implicit_prelude]
#![deny(warnings)]

extern crate bytes;
extern crate pea2pea;
extern crate std;

use pea2pea::Message as _;

fn default_mode() -> ::std::string::String {
    ::std::string::ToString::to_string("full")
}

#[derive(::pea2pea::Message)]
#[message(extensible)]
struct Status {
    height: u64,
    #[message(default, max_len = 32)]
    peers: ::std::vec::Vec<u8>,
    #[message(default = default_mode)]
    mode: ::std::string::String,
}

#[derive(::pea2pea::Message)]
#[message(extensible, reserved(2))]
enum Chat {
    Hello {
        name: ::std::string::String,
        #[message(default)]
        agent: ::std::option::Option<::std::string::String>,
    },
    // A variant kept for old peers: the derive's code does not trip the lint.
    #[deprecated]
    Say(::std::string::String),
    #[message(tag = 3)]
    Status(::pea2pea::message::Delimited<Status>),
    #[message(other)]
    Unknown(u32, ::bytes::Bytes),
}

// A catch-all alone: every tag is unknown.
#[derive(::pea2pea::Message)]
enum Anything {
    #[message(other)]
    Unknown { tag: u32, body: ::bytes::Bytes },
}

// Open-ended types nest in Delimited, in any container, and in generics.
#[derive(::pea2pea::Message)]
struct Census<T> {
    statuses: ::std::vec::Vec<::pea2pea::message::Delimited<Status>>,
    extra: ::std::option::Option<::pea2pea::message::Delimited<T>>,
}

fn main() {
    let bytes = Chat::Hello { name: ::std::string::String::new(), agent: ::std::option::Option::None }.to_bytes();
    let _ = Chat::from_bytes(bytes);
    let _ = Anything::from_bytes(::bytes::Bytes::from_static(&[7, 1]));
    let _ = Status::from_bytes(::bytes::Bytes::from_static(&[1]));
    let _ = Census::<Chat>::from_bytes(::bytes::Bytes::from_static(&[0, 0]));
    // The outermost value may be open-ended, alone or last in a tuple.
    let _ = <(u8, Status)>::from_bytes(::bytes::Bytes::from_static(&[1, 1]));
}
