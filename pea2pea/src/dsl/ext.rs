//! Per-node state of the DSL runtime (calls in flight, counters).
//!
//! The user's struct has no room for it (`#[node]` adds no fields, so that the struct is built
//! as written), so it lives in the node's extension slot
//! ([`Node::extension_or_default`]), made on first use: a node that never uses the DSL has
//! none.

use std::{
    collections::{BTreeMap, HashMap},
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{identity, ordered};
use crate::Node;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The answer to a call: the encoded response, or the error that ended the call.
pub(crate) type Answer = io::Result<Bytes>;

#[derive(Default)]
pub(crate) struct PeerCalls {
    /// By id: an order that does not change from run to run (a simulated run must depend on
    /// its seed alone). A teardown no longer walks it: each call sees its connection close
    /// (`Node::connection_closed`) and removes itself.
    pending: BTreeMap<u64, oneshot::Sender<Answer>>,
}

/// The DSL's state for one node.
#[derive(Default)]
pub(crate) struct NodeExt {
    pub(crate) fingerprint_rejections: AtomicU64,
    pub(crate) invalid_requests: AtomicU64,
    /// Messages `send_to_many` skipped for a full peer (`WhenFull::Drop`).
    pub(crate) messages_dropped: AtomicU64,
    /// Peers `send_to_many` disconnected for a full queue (`WhenFull::Disconnect`).
    pub(crate) slow_peers_disconnected: AtomicU64,
    /// `on` handlers that returned an error (each disconnected its peer).
    pub(crate) handler_errors: AtomicU64,
    /// Connections dropped in the handshake as a second one between the same two nodes.
    pub(crate) duplicate_connections: AtomicU64,
    /// Whom each connection leads to.
    pub(crate) identities: identity::Identities,
    /// Requests refused because `max_calls` of the peer's were being served.
    pub(crate) requests_refused: AtomicU64,
    /// Refused frames from peers: each said the peer could not decode one of this node's.
    pub(crate) refused_by_peer: AtomicU64,
    next_call_id: AtomicU64,
    /// Set by the first `enable_protocols`, so that a second call (or `start`) does nothing.
    protocols_enabled: AtomicBool,
    calls: Mutex<HashMap<SocketAddr, PeerCalls>>,
    /// How many of each peer's requests are being served now.
    serving: Mutex<HashMap<SocketAddr, usize>>,
    /// The task that runs each connection's `on` handlers in order (protocols with rpcs).
    pub(crate) ordered: Mutex<HashMap<SocketAddr, ordered::Worker>>,
}

impl NodeExt {
    /// Reserves a call id for `addr`, unless `max` calls to it are already in flight.
    pub(crate) fn register(
        &self,
        addr: SocketAddr,
        max: usize,
    ) -> io::Result<(u64, oneshot::Receiver<Answer>)> {
        let mut calls = lock(&self.calls);
        let peer = calls.entry(addr).or_default();
        if peer.pending.len() >= max {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!("{max} calls to {addr} are already in flight (the protocol's max_calls)"),
            ));
        }
        // one sequence for the whole node, never reset: a peer's table is dropped when it
        // empties, and an id handed out again could match a late answer to an older call
        let id = self.next_call_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        peer.pending.insert(id, tx);
        Ok((id, rx))
    }

    /// Takes the pending call `id` to `addr`, if it is still waiting.
    pub(crate) fn take(&self, addr: SocketAddr, id: u64) -> Option<oneshot::Sender<Answer>> {
        let mut calls = lock(&self.calls);
        let peer = calls.get_mut(&addr)?;
        let tx = peer.pending.remove(&id);
        if peer.pending.is_empty() {
            calls.remove(&addr);
        }
        tx
    }

    /// Takes one of `addr`'s `max` serving slots, unless all are taken; the slot is given back
    /// when the returned guard drops.
    pub(crate) fn start_serving(self: &Arc<Self>, addr: SocketAddr, max: usize) -> Option<Serving> {
        let mut serving = lock(&self.serving);
        let count = serving.entry(addr).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Serving {
            ext: self.clone(),
            addr,
        })
    }

    /// How many requests are being served, over all peers.
    pub(crate) fn serving(&self) -> usize {
        lock(&self.serving).values().sum()
    }

    pub(crate) fn count_invalid_request(&self) {
        self.invalid_requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn in_flight(&self) -> usize {
        lock(&self.calls).values().map(|p| p.pending.len()).sum()
    }
}

/// One of a peer's serving slots, given back on drop (the handler's task ended in any way).
pub(crate) struct Serving {
    ext: Arc<NodeExt>,
    addr: SocketAddr,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let mut serving = lock(&self.ext.serving);
        if let Some(count) = serving.get_mut(&self.addr) {
            *count -= 1;
            if *count == 0 {
                serving.remove(&self.addr);
            }
        }
    }
}

/// Whether this is the first time the DSL enables `node`'s protocols (and so should do it).
pub fn first_enable(node: &Node) -> bool {
    !of(node).protocols_enabled.swap(true, Ordering::AcqRel)
}

/// The state of `node`, created on first use.
pub(crate) fn of(node: &Node) -> Arc<NodeExt> {
    node.extension_or_default()
}

/// The state of `node` if it has any, without creating it.
pub(crate) fn existing(node: &Node) -> Option<Arc<NodeExt>> {
    node.extension()
}
