//! One obligation per message type the user names in `protocol!`. The generated code names
//! such a type `T` only through this trait, as `<T as ProtocolMessage>::Type` or one of its
//! functions, spanned at the user's `T`: when `T` is not a `Message`, every use fails the same
//! way (`T: ProtocolMessage`, for want of `T: Message`) at the same place, and rustc, which
//! drops a diagnostic identical to one it already emitted, reports it once. Named directly,
//! each engine function and trait that needs `T: Message` would report it again, each with a
//! note about its own bound.
//!
//! The functions are the engine's, with the message type's bound moved here: called through
//! the trait, they add no bound on `T` of their own.

use std::{future::Future, net::SocketAddr};

use bytes::Bytes;

use crate::{
    codec::Encoded,
    dsl::{SendReport, WhenFull, fanout, frame::Frame, rpc},
    message::Message,
    protocols::Writing,
};

/// A message type named in `protocol!`; `Type` is always `Self`.
pub trait ProtocolMessage {
    /// `Self`.
    type Type: Message;

    /// [`fanout::send_to_many_encoded`] of this type.
    fn send_to_many_encoded<W>(
        this: &W,
        addrs: impl IntoIterator<Item = SocketAddr>,
        message: &Self::Type,
        when_full: WhenFull,
    ) -> impl Future<Output = SendReport>
    where
        W: Writing,
        W::Message: From<Encoded<Self::Type>>,
    {
        fanout::send_to_many_encoded(this, addrs, message, when_full)
    }

    /// [`rpc::decode_request`] of this request type.
    fn decode_request<W, M>(
        this: &W,
        addr: SocketAddr,
        id: u64,
        body: Bytes,
    ) -> impl Future<Output = Option<Self::Type>>
    where
        W: Writing<Message = Frame<M>>,
    {
        rpc::decode_request::<W, M, Self::Type>(this, addr, id, body)
    }

    /// [`rpc::respond`] with this response type (the handler's answer already made a
    /// `Result` by `RpcAnswer::into_answer`).
    fn respond<W, M>(
        this: &W,
        addr: SocketAddr,
        id: u64,
        answer: Result<Self::Type, String>,
        timeout_ms: u64,
    ) -> impl Future<Output = ()>
    where
        W: Writing<Message = Frame<M>>,
    {
        rpc::respond::<W, M, Self::Type, _>(this, addr, id, answer, timeout_ms)
    }
}

impl<T: Message> ProtocolMessage for T {
    type Type = T;
}

/// The node type of a `protocol!`, checked to be `Clone` once: the generated impls that need
/// `Clone` hold only for a `Clone` node (they are not errors without it), and
/// `CloneNode::check`, named once at the node type, is the error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Clone`, which a node type needs: the engine clones the node into each connection's tasks",
    label = "`{Self}` is not `Clone`",
    note = "add `#[derive(Clone)]` to `{Self}` (a clone is cheap: `Node` and the usual shared state, `Arc`s, are handles), or implement `Clone` for it by hand"
)]
pub trait CloneNode {
    /// Named (not called) by the generated code at the node type, to require the impl.
    fn check() {}
}

impl<T: Clone> CloneNode for T {}
