//! Procedural macros for [pea2pea](https://docs.rs/pea2pea): `#[derive(Message)]`, `protocol!`
//! and `#[node]`. Use them through the `pea2pea` crate, which re-exports all three.
//!
//! Each macro lives in its own module and runs in three steps: parse the input, check it
//! (collecting every error rather than stopping at the first), then expand it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod crate_path;
mod errors;
mod message;
mod text;

use proc_macro::TokenStream;

/// Derives `pea2pea::Message`: a compact binary encoding (postcard's wire format) with bounded
/// decoding. See the `pea2pea::Message` docs for the attributes it accepts.
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    message::derive(input.into()).into()
}

mod node;
mod protocol;

/// Declares what a node speaks and how it handles it, and writes the engine's trait impls.
///
/// ```ignore
/// use pea2pea::{Message, Node, protocol};
///
/// #[derive(Message, Debug)]
/// enum Chat { Hello { name: String }, Say(String), Bye }
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Peer { node: Node }
///
/// protocol! {
///     Peer speaks Chat over length_delimited(max_frame = 64 KiB) {
///         on Chat::Hello { name } from addr => println!("{addr} is {name}"),
///         on Chat::Say(text) from addr      => println!("{addr}: {text}"),
///         on Chat::Bye from addr            => { self.node().disconnect(addr).await; }
///         on_disconnect(addr)               => println!("{addr} left"),
///     }
/// }
/// // let addr = peer.start().await?; peer.send(other, Chat::Say("hi".into())).await?;
/// ```
///
/// It generates `impl Reading`, `Writing`, and, when declared, `Handshake`, `OnConnect` and
/// `OnDisconnect` for the node type, and inherent methods on it: `start`, `enable_protocols`,
/// `send`, `send_fast`, `send_to_many` and (with `rpc` declarations) `call`. The grammar,
/// the settings and the expansion are described in `pea2pea-macros/DSL.md`; the runnable
/// examples are on `pea2pea::protocol`.
#[proc_macro]
pub fn protocol(input: TokenStream) -> TokenStream {
    protocol::protocol(input.into()).into()
}

/// Implements `pea2pea::Pea2Pea` for a struct by returning its `Node` field: the field whose
/// type is a path ending in `Node`, or the one marked `#[node]`.
///
/// ```ignore
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Peer {
///     node: pea2pea::Node,
///     name: String,
/// }
/// ```
///
/// It adds nothing to the struct. Argument: `crate = path` when pea2pea is renamed
/// (`#[p2p::node(crate = ::p2p)]`). It is an error on an enum or a union, and on a struct with
/// no `Node` field or with two and no `#[node]` mark. Runnable examples are on `pea2pea::node`.
#[proc_macro_attribute]
pub fn node(args: TokenStream, item: TokenStream) -> TokenStream {
    node::node(args.into(), item.into()).into()
}
