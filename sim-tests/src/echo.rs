//! A request/response protocol for the tests of calls and timeouts: [`echo_node!`] declares a
//! node type that speaks it with the settings given. Settings are not part of the protocol's
//! fingerprint, so nodes of all these types talk to each other.

use pea2pea::Message;

/// Asks for `Echoed` with the same number.
#[derive(Message, Debug)]
pub struct Echo(pub u32);

#[derive(Message, Debug, PartialEq)]
pub struct Echoed(pub u32);

/// The one-way messages (none is sent; a protocol declares at least one).
#[derive(Message, Debug)]
pub enum Note {
    Hello,
}

/// `echo_node!(Name { setting = value, ... })`: a `#[pea2pea::node]` struct `Name` (with
/// `Name::new(config)`) whose protocol answers every `Echo(n)` with `Echoed(n)`, over the
/// fingerprint handshake.
#[macro_export]
macro_rules! echo_node {
    ($name:ident { $($setting:tt)* }) => {
        #[pea2pea::node]
        #[derive(Clone)]
        struct $name {
            node: pea2pea::Node,
        }

        pea2pea::protocol! {
            $name speaks $crate::echo::Note {
                name = "echo/1",
                handshake = fingerprint,
                $($setting)*
                on $crate::echo::Note::Hello => {},
                rpc $crate::echo::Echo(n) -> $crate::echo::Echoed => $crate::echo::Echoed(n),
            }
        }

        impl $name {
            fn new(config: pea2pea::Config) -> Self {
                Self { node: pea2pea::Node::new(config) }
            }
        }
    };
}
