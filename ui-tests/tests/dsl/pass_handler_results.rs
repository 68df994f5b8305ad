use std::{fmt, io};

use pea2pea::{Message, Node, Pea2Pea, protocol};

#[derive(Message, Debug)]
enum Chat {
    Say(String),
    Count(String),
    Relay(String),
    Check(u32),
    Quiet,
}

#[derive(Debug)]
struct TooBig(u32);

impl fmt::Display for TooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is too big", self.0)
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
}

protocol! {
    Peer speaks Chat {
        // `?` at the handler's level: an `io::Result<()>`
        on Chat::Say(text) from addr => {
            self.send(addr, Chat::Relay(text)).await?;
            Ok(())
        }
        // a result of its own error type, said
        on Chat::Count(text) -> Result<(), std::num::ParseIntError> => {
            let _n: u32 = text.parse()?;
            Ok(())
        }
        // a typed tail needs nothing said
        on Chat::Relay(text) from addr => self.send(addr, Chat::Count(text)).await,
        on Chat::Check(n) -> Result<(), TooBig> => if n > 10 { Err(TooBig(n)) } else { Ok(()) },
        // `?` inside a closure or an async block is theirs: the handler is still `()`
        on Chat::Quiet => {
            let _ = || -> io::Result<()> { Err(io::ErrorKind::Other)? };
        }
    }
}

fn main() {}
