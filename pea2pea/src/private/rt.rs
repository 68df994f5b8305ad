//! Everything the code that `protocol!` and `#[node]` generate names, in one place (reached as
//! `::pea2pea::__private_0_1::rt`). Not part of the public API: no semver guarantees.

pub use bytes::Bytes;
pub use core::{
    clone::Clone,
    convert::From,
    default::Default,
    future::{Future, Ready},
    iter::IntoIterator,
    option::Option::{self, None, Some},
    primitive::{bool, str, u32, u64, usize},
    result::Result,
};
pub use std::{boxed::Box, io, net::SocketAddr};

pub use super::checked::{CloneNode, ProtocolMessage};
pub use super::undeclared::{NoRpcDeclared, NoWritesDeclared};
pub use super::unhandled::{Unhandled, unhandled};
pub use crate::dsl::{
    Call, Protocol, Rpc, RpcAnswer, SendReport, WhenFull,
    codec::DslCodec,
    describe::{Declared, DeclaredRpc},
    ext::first_enable,
    fanout::{send_to_many_cloned, send_to_many_encoded},
    frame::{Frame, Inbound, frame_bound},
    handshake::{fingerprint_handshake, fp_mix, fp_start, method_of, rpc_shape},
    identity::connect_if_needed,
    ordered::deliver_in_order,
    outcome::settle,
    refusal::{refuse_frame, refused_by_peer},
    rpc::{complete, decode_request, respond, unknown_method},
    send::{length_delimited, send, send_fast},
    serve::serve,
};
pub use crate::message::schema_of;
pub use crate::{
    Connection, ConnectionId, ConnectionSide, DisconnectOrigin, Message, Node, Pea2Pea,
    codec::{MessageCodec, Outgoing},
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};
