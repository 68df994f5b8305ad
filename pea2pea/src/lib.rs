//! **pea2pea** is a lean tokio TCP engine for peer-to-peer nodes.
//!
//! A user struct that holds a [`Node`] implements [`Pea2Pea`] and any of five opt-in
//! [`protocols`]; the node listens, dials, admits or rejects connections, frames messages with
//! tokio-util codecs, applies backpressure and timeouts, counts what happens, and tears down
//! cleanly. The [`Message`] derive, `protocol!` and `#[node]` macros write those impls for you.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod message;

#[doc(hidden)]
pub mod __private;

pub use message::{DecodeError, Message};
pub use pea2pea_macros::Message;
