//! Procedural macros for [pea2pea](https://docs.rs/pea2pea): `#[derive(Message)]`, `protocol!`
//! and `#[node]`. Use them through the `pea2pea` crate, which re-exports all three.
//!
//! Each macro lives in its own module and runs in three steps: parse the input, check it
//! (collecting every error rather than stopping at the first), then expand it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod message;

use proc_macro::TokenStream;

/// Derives `pea2pea::Message`: a compact binary encoding (postcard's wire format) with bounded
/// decoding. See the `pea2pea::Message` docs for the attributes it accepts.
#[proc_macro_derive(Message, attributes(message))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    message::derive(input.into()).into()
}
