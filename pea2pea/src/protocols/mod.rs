//! The five opt-in protocols. A type that implements [`Pea2Pea`](crate::Pea2Pea) implements
//! any of them and calls their `enable_*` method once; the node then runs them for every new
//! connection, in this order:
//!
//! 1. [`Handshake`]: the connection is admitted and handed to `perform_handshake`;
//! 2. [`Reading`], then [`Writing`]: the stream is split, `Reading::codec` is called, then
//!    `Writing::codec`, and each half gets its task (reading starts only after step 3);
//! 3. the connection is registered, and [`Node::connect`](crate::Node::connect) returns;
//! 4. [`OnConnect`]: `on_connect` starts in a task of its own;
//! 5. [`OnDisconnect`]: `on_disconnect` runs when the connection is torn down, whatever the
//!    cause, exactly once, before it is removed.
//!
//! Enabling stores a clone of your type in the node, so that the node can call it for every
//! connection without a channel in between.
//!
//! # The life of a connection
//!
//! A protocol that is not enabled is skipped; everything else happens for every connection,
//! dialled or accepted, in this order:
//!
//! ```text
//!      Node::connect(addr)                     the listener accepts a socket
//!              │                                            │
//!              └──────────────────────┬─────────────────────┘
//!                                     ▼
//!   admitted? total, per-IP and setup limits   ── no ──▶ outbound: Err(QuotaExceeded)
//!                                     │                    inbound: closed, counted
//!                                     ▼
//!   TCP connect (outbound only), within Config::connection_timeout_ms
//!                                     ▼
//!   Handshake::perform_handshake, within Handshake::TIMEOUT_MS
//!                                     │ ── fails, times out or panics ──▶ closed; no hook runs
//!                                     ▼
//!   Reading::codec(addr, side)        (first: it may use what the handshake left behind)
//!                                     ▼
//!   Writing::codec(addr, side)
//!                                     ▼
//!   registered: is_connected(addr) is true; Node::connect returns Ok(())
//!                                     ▼
//!   reading starts (process_message);  OnConnect::on_connect starts in its own task
//!                                     ▼
//!                 ... messages in and out (unicast, process_message) ...
//!                                     ▼
//!   torn down by Node::disconnect, the peer, a read/write error or timeout, an idle
//!   timeout, a panic in on_connect, or Node::shut_down (DisconnectOrigin says which)
//!                                     ▼
//!   OnDisconnect::on_disconnect(addr, origin): once, within OnDisconnect::TIMEOUT_MS
//!                                     ▼
//!   removed: is_connected(addr) is false, the counts are released, the socket is closed
//! ```
//!
//! `ARCHITECTURE.md` in the repository walks the same path through the code.

mod handshake;
pub(crate) mod on_connect;
mod on_disconnect;
pub(crate) mod own_writes;
mod reading;
mod writing;

use std::{
    any::Any,
    io,
    net::SocketAddr,
    sync::{Arc, RwLock, atomic::AtomicBool},
    time::Duration,
};

pub use handshake::Handshake;
pub use on_connect::OnConnect;
pub use on_disconnect::OnDisconnect;
pub use reading::Reading;
pub use writing::Writing;

use crate::{
    Connection, ConnectionInfo, ConnectionSide, DisconnectOrigin, Node,
    io::{ConnReader, ConnWriter},
    task::BoxFuture,
};

/// What a connection's tasks know about it.
#[derive(Clone)]
pub(crate) struct ConnCtx {
    pub(crate) node: Node,
    pub(crate) id: u64,
    /// This node's role in the connection (the opposite of `info.side()`).
    pub(crate) own_side: ConnectionSide,
    pub(crate) info: ConnectionInfo,
    pub(crate) claimed: Arc<AtomicBool>,
}

impl ConnCtx {
    pub(crate) fn addr(&self) -> SocketAddr {
        self.info.addr()
    }

    /// Counts a written batch in the connection's and the node's stats.
    pub(crate) fn count_sent(&self, messages: usize, bytes: usize) {
        self.info.stats().register_sent_messages(messages, bytes);
        self.node.stats().register_sent_messages(messages, bytes);
    }

    pub(crate) fn guard(
        &self,
        origin: DisconnectOrigin,
        only_on_panic: bool,
    ) -> crate::task::DisconnectGuard {
        crate::task::DisconnectGuard {
            node: self.node.clone(),
            addr: self.addr(),
            conn_id: self.id,
            info: self.info.clone(),
            origin,
            claimed: self.claimed.clone(),
            only_on_panic,
        }
    }
}

pub(crate) struct HandshakeSlot {
    pub(crate) timeout: Duration,
    pub(crate) run: Box<dyn Fn(Connection) -> BoxFuture<io::Result<Connection>> + Send + Sync>,
}

/// The type-erased sender of a connection's outbound queue.
pub(crate) type AnySender = Box<dyn Any + Send + Sync>;
type StartReading = dyn Fn(ConnReader, &ConnCtx) -> io::Result<BoxFuture<()>> + Send + Sync;
type StartWriting = dyn Fn(ConnWriter, &ConnCtx) -> io::Result<WriterParts> + Send + Sync;

/// What starting a connection's writer makes.
pub(crate) struct WriterParts {
    /// The sender of its queue, for `unicast`.
    pub(crate) sender: AnySender,
    /// The writer task.
    pub(crate) task: BoxFuture<()>,
    /// The queue, as the connection's reader task flushes it (`own_writes`).
    pub(crate) own_writes: Arc<dyn own_writes::OwnWrites>,
}

/// Builds a connection's reader task (the codec is made here, before registration).
pub(crate) struct ReadingSlot {
    pub(crate) start: Box<StartReading>,
}

/// Builds a connection's writer task and the sender of its queue.
pub(crate) struct WritingSlot {
    pub(crate) start: Box<StartWriting>,
}

pub(crate) struct OnConnectSlot {
    pub(crate) abortable: bool,
    pub(crate) run: Box<dyn Fn(SocketAddr) -> BoxFuture<()> + Send + Sync>,
}

pub(crate) struct OnDisconnectSlot {
    pub(crate) timeout: Duration,
    pub(crate) run: Box<dyn Fn(SocketAddr, DisconnectOrigin) -> BoxFuture<()> + Send + Sync>,
}

/// One protocol's place in the node: empty until enabled, emptied at shutdown.
struct Slot<T>(RwLock<Option<Arc<T>>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self(RwLock::new(None))
    }
}

impl<T> Slot<T> {
    fn get(&self) -> Option<Arc<T>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn clear(&self) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).take();
    }
}

#[derive(Default)]
pub(crate) struct Protocols {
    handshake: Slot<HandshakeSlot>,
    reading: Slot<ReadingSlot>,
    writing: Slot<WritingSlot>,
    on_connect: Slot<OnConnectSlot>,
    on_disconnect: Slot<OnDisconnectSlot>,
    /// Read on every send, so kept apart from the slot's lock.
    pub(crate) writing_enabled: AtomicBool,
}

/// The protocols as they were when a connection started its setup.
pub(crate) struct Snapshot {
    pub(crate) handshake: Option<Arc<HandshakeSlot>>,
    pub(crate) reading: Option<Arc<ReadingSlot>>,
    pub(crate) writing: Option<Arc<WritingSlot>>,
    pub(crate) on_connect: Option<Arc<OnConnectSlot>>,
}

impl Protocols {
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            handshake: self.handshake.get(),
            reading: self.reading.get(),
            writing: self.writing.get(),
            on_connect: self.on_connect.get(),
        }
    }

    pub(crate) fn on_disconnect(&self) -> Option<Arc<OnDisconnectSlot>> {
        self.on_disconnect.get()
    }

    pub(crate) fn clear(&self) {
        self.handshake.clear();
        self.reading.clear();
        self.writing.clear();
        self.on_connect.clear();
        self.on_disconnect.clear();
    }
}

/// Installs a protocol and says whether it did: a no-op once shutdown has begun, a panic if it
/// is already enabled.
fn enable<T>(
    node: &Node,
    name: &str,
    pick: impl FnOnce(&Protocols) -> &Slot<T>,
    make: impl FnOnce() -> T,
) -> bool {
    if node.is_shutting_down() {
        return false;
    }
    let slot = pick(node.protocols());
    let mut current = slot.0.write().unwrap_or_else(|p| p.into_inner());
    assert!(
        current.is_none(),
        "the {name} protocol is already enabled on this node"
    );
    *current = Some(Arc::new(make()));
    tracing::debug!(parent: node.span(), "enabled {name}");
    true
}
