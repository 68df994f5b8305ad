//! **pea2pea** is a lean tokio TCP engine for peer-to-peer nodes.
//!
//! A user struct that holds a [`Node`] implements [`Pea2Pea`] and any of five opt-in
//! [`protocols`]; the node listens, dials, admits or rejects connections, frames messages with
//! tokio-util codecs, applies backpressure and timeouts, counts what happens, and tears down
//! cleanly. The [`Message`] derive, `protocol!` and `#[node]` macros write those impls for you.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod heuristics;
mod io;
mod node;
mod stats;
mod task;
mod topology;

pub mod codec;
pub mod connections;
pub mod dsl;
pub mod message;
pub mod net;
pub mod protocols;

#[doc(hidden)]
#[path = "private/mod.rs"]
pub mod __private_0_1;

pub use codec::{Encoded, MessageCodec, Outgoing};
pub use config::Config;
pub use connections::{Connection, ConnectionId, ConnectionInfo, ConnectionSide, DisconnectOrigin};
pub use heuristics::Heuristics;
pub use message::{DecodeError, DecodeErrorKind, Message, Reader};
pub use node::{Node, ShuttingDown};
pub use pea2pea_macros::Message;
#[doc = include_str!("dsl/node.md")]
pub use pea2pea_macros::node;
#[doc = include_str!("dsl/protocol.md")]
pub use pea2pea_macros::protocol;
pub use stats::Stats;
pub use topology::{Topology, connect_nodes};

/// Implemented by the types that hold a [`Node`]; every protocol builds on it.
///
/// ```
/// use pea2pea::{Config, Node, Pea2Pea};
///
/// #[derive(Clone)]
/// struct Peer {
///     node: Node,
/// }
///
/// impl Pea2Pea for Peer {
///     fn node(&self) -> &Node {
///         &self.node
///     }
/// }
///
/// let peer = Peer { node: Node::new(Config::default()) };
/// assert_eq!(peer.node().num_connected(), 0);
/// ```
pub trait Pea2Pea {
    /// The node this value holds.
    fn node(&self) -> &Node;
}
