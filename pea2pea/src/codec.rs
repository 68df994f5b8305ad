//! Framing for [`Message`](crate::Message) types: a length-delimited tokio-util codec.
//!
//! CONTRACT STUB (to be filled in by the derive/wire work).

use std::marker::PhantomData;

use bytes::Bytes;

/// A length-delimited codec that decodes `In` and encodes `Out` (both [`Message`](crate::Message)s).
pub struct MessageCodec<In, Out = In> {
    _types: PhantomData<fn(Out) -> In>,
}

/// A message encoded once, to be sent to many peers without encoding it again.
pub struct Encoded<M> {
    _bytes: Bytes,
    _type: PhantomData<fn() -> M>,
}

/// What a node writes: a message to encode, or one that is already encoded.
pub enum Outgoing<M> {
    /// A message, encoded when it is written.
    Message(M),
    /// A message encoded earlier, written as is.
    Encoded(Encoded<M>),
}
