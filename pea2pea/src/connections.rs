//! The types that describe a connection: who started it, how it ended, and the [`Connection`]
//! that a [`Handshake`] works on.

use std::{
    fmt,
    net::SocketAddr,
    ops::Not,
    sync::{Arc, OnceLock},
};

use tracing::Span;

use crate::{
    Stats,
    io::{BoxedReader, BoxedWriter},
    net::TcpStream,
};

#[cfg(doc)]
use crate::{
    Node,
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};

/// Which end opened a connection.
///
/// [`ConnectionInfo::side`] is the *peer's* role: on the node that dialled, it says
/// `Responder`. A node's own role is therefore `!info.side()`, which is what
/// [`Reading::codec`] and [`Writing::codec`] receive.
///
/// ```
/// use pea2pea::ConnectionSide;
///
/// let peer = ConnectionSide::Responder; // as seen by the node that dialled
/// assert_eq!(!peer, ConnectionSide::Initiator); // that node's own role
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionSide {
    /// The end that dialled.
    Initiator,
    /// The end that accepted.
    Responder,
}

impl Not for ConnectionSide {
    type Output = Self;

    fn not(self) -> Self {
        match self {
            Self::Initiator => Self::Responder,
            Self::Responder => Self::Initiator,
        }
    }
}

/// What started the teardown of a connection; passed to [`OnDisconnect::on_disconnect`].
///
/// When several causes race, the first one to claim the connection is the only one reported.
/// [`OnDisconnect`] shows it in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisconnectOrigin {
    /// [`OnConnect::on_connect`] panicked.
    OnConnectAbort,
    /// The reading side stopped: the peer closed the connection, the codec rejected a frame,
    /// [`Reading::process_message`] panicked, or [`Reading::IDLE_TIMEOUT_MS`] passed in silence.
    Reading,
    /// [`Node::shut_down`] is tearing down every connection.
    Shutdown,
    /// [`Node::disconnect`] was called.
    User,
    /// The writing side stopped: a write failed or exceeded [`Writing::TIMEOUT_MS`], or the
    /// encoder failed. The write half is already closed, so the hook cannot send a last message.
    Writing,
}

/// The identity of one connection of a [`Node`], unique for the node's whole life.
///
/// A connection is keyed by its peer's address, and a peer that reconnects gets the same key;
/// the id tells the two connections apart. Pass it to [`Node::connection_closed`] and
/// [`Node::disconnect_connection`] to act only on the connection you mean, never on a newer
/// one at the same address.
///
/// ```
/// # async fn f(node: pea2pea::Node, addr: std::net::SocketAddr) {
/// if let Some(info) = node.connection_info(addr) {
///     println!("{addr} is connection {}", info.id());
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

impl ConnectionId {
    /// The id as a number (the node counts its connections from 0).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A cheap, clonable description of an established connection, from
/// [`Node::connection_info`] (which has an example) or [`Connection::info`].
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    id: ConnectionId,
    addr: SocketAddr,
    side: ConnectionSide,
    stats: Arc<Stats>,
    span: Span,
    /// Why the connection ended: set once, by the first cause, shared by every clone.
    close_reason: Arc<OnceLock<String>>,
}

impl ConnectionInfo {
    pub(crate) fn new(id: u64, addr: SocketAddr, side: ConnectionSide, span: Span) -> Self {
        Self {
            id: ConnectionId(id),
            addr,
            side,
            stats: Default::default(),
            span,
            close_reason: Default::default(),
        }
    }

    /// The connection's id: unlike the address, never shared with another connection of the
    /// node (see [`ConnectionId`]).
    #[inline]
    pub fn id(&self) -> ConnectionId {
        self.id
    }

    /// The peer's address: the one dialled if this node initiated, the peer's (usually
    /// ephemeral) source address otherwise. It is the key of the connection in the [`Node`].
    #[inline]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The peer's role in the connection (see [`ConnectionSide`]).
    #[inline]
    pub fn side(&self) -> ConnectionSide {
        self.side
    }

    /// The connection's own message and byte counters.
    #[inline]
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// The tracing span of the connection, `conn{addr=..}`, a child of the node's span and,
    /// like it, at ERROR level so that it is on whenever any event is.
    #[inline]
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Why the connection is ending, once it is: `None` while it is up. Every teardown records
    /// a reason before [`OnDisconnect::on_disconnect`] runs, so the hook always finds one (its
    /// [docs](OnDisconnect) show how): what the reader met ("the peer closed the connection",
    /// the codec's error, a read error, the idle timeout), the writer's error, a panic, the
    /// reason given to [`Node::disconnect_with_reason`], or else the teardown's own ("this node
    /// disconnected it", "this node is shutting down").
    ///
    /// The first reason recorded is the one kept. When causes race, it is the first cause's,
    /// which is not always the one that won the teardown (the [`DisconnectOrigin`]).
    pub fn close_reason(&self) -> Option<String> {
        self.close_reason.get().cloned()
    }

    /// Records why the connection is ending, unless a reason is already recorded (the first
    /// one is kept); returns whether `reason` was recorded. For code that ends a connection
    /// in steps, as a layer over the engine does: record, then disconnect (by id, with
    /// [`Node::disconnect_connection`]). A reason recorded on a connection that then stays up
    /// is reported whenever it ends: [`Node::disconnect_with_reason`] is the one-step form.
    pub fn record_close_reason(&self, reason: impl Into<String>) -> bool {
        self.close_reason.set(reason.into()).is_ok()
    }

    /// Records the reason made by `reason` if none is recorded yet (made only then).
    pub(crate) fn record_close_reason_with(&self, reason: impl FnOnce() -> String) {
        if self.close_reason.get().is_none() {
            let _ = self.close_reason.set(reason());
        }
    }
}

/// A connection that is being set up, as handed to [`Handshake::perform_handshake`].
///
/// It owns the socket until the handshake returns it. Use [`Handshake::borrow_stream`] to talk
/// over the raw TCP stream, or [`Handshake::take_stream`] and [`Handshake::return_stream`] to
/// replace it with a wrapper (TLS, Noise) that reading and writing will then use. The
/// [`Handshake`] docs show one in use.
pub struct Connection {
    pub(crate) id: u64,
    pub(crate) info: ConnectionInfo,
    pub(crate) stream: Option<TcpStream>,
    pub(crate) reader: Option<BoxedReader>,
    pub(crate) writer: Option<BoxedWriter>,
}

impl Connection {
    pub(crate) fn new(id: u64, info: ConnectionInfo, stream: TcpStream) -> Self {
        Self {
            id,
            info,
            stream: Some(stream),
            reader: None,
            writer: None,
        }
    }

    /// The connection's description.
    #[inline]
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The peer's address (see [`ConnectionInfo::addr`]).
    #[inline]
    pub fn addr(&self) -> SocketAddr {
        self.info.addr
    }

    /// The peer's role (see [`ConnectionInfo::side`]).
    #[inline]
    pub fn side(&self) -> ConnectionSide {
        self.info.side
    }

    /// The connection's counters (see [`ConnectionInfo::stats`]).
    #[inline]
    pub fn stats(&self) -> &Arc<Stats> {
        &self.info.stats
    }

    /// The connection's tracing span.
    #[inline]
    pub fn span(&self) -> &Span {
        &self.info.span
    }
}
