//! The expansions work in a module without the prelude, beside user items that shadow common
//! names, with every feature declared.

#![deny(warnings)]

#[derive(::pea2pea::Message, Debug)]
pub enum Chat {
    Hello { name: ::std::string::String },
    Bye,
}

#[derive(::pea2pea::Message, Debug)]
pub struct Ping(pub u32);

#[derive(::pea2pea::Message, Debug)]
pub struct Pong(pub u32);

#[no_implicit_prelude]
mod prelude_free {
    use super::{Chat, Ping, Pong};

    // user names that a careless expansion would pick up
    #[allow(dead_code, non_camel_case_types)]
    struct u64;
    #[allow(dead_code)]
    struct Result;
    #[allow(dead_code)]
    struct Option;
    #[allow(dead_code)]
    struct Box;
    #[allow(dead_code)]
    struct Clone;
    #[allow(dead_code)]
    struct Some;
    #[allow(dead_code)]
    struct Reading;
    #[allow(dead_code)]
    struct SocketAddr;
    #[allow(dead_code)]
    mod io {}

    #[::pea2pea::node]
    #[derive(::core::clone::Clone)]
    pub struct Peer {
        node: ::pea2pea::Node,
    }

    ::pea2pea::protocol! {
        Peer speaks Chat over length_delimited(max_frame = 16 KiB, length_width = 2, little_endian) {
            crate = ::pea2pea,
            handshake = fingerprint,
            handshake_timeout = 1 s,
            read_queue = 8,
            backpressure = false,
            idle_timeout = 1 min,
            read_buffer = 4 KiB,
            write_queue = 8,
            write_timeout = 500 ms,
            write_buffer = 4 KiB,
            disconnect_timeout = 1 s,
            call_timeout = 2 s,
            max_calls = 16,
            on Chat::Hello { name } from addr => { let _ = (name, addr); }
            on Chat::Bye from addr => {
                // `?` and a `Result` handler, without the prelude
                self.send(addr, Chat::Bye).await?;
                ::core::result::Result::Ok(())
            }
            rpc Ping(n) from _peer -> Pong => Pong(n),
            on_connect(_addr) => {},
            on_disconnect(_addr, _origin) => {},
        }
    }
}

fn main() {
    let _ = prelude_free::Peer::start;
    let _ = prelude_free::Peer::connect_if_needed;
}
