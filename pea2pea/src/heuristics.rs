use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[cfg(doc)]
use crate::{
    Config, Node,
    protocols::{Handshake, Reading, Writing},
};

/// Counters of the events that say a node is under pressure or being misused. Each one counts
/// a single cause; none of them overlaps another.
#[derive(Debug, Default)]
pub struct Heuristics {
    pub(crate) connect_budget_rejections: AtomicU64,
    pub(crate) inbound_connections_rejected: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
    pub(crate) handshake_timeouts: AtomicU64,
    pub(crate) idle_timeouts: AtomicU64,
    pub(crate) write_timeouts: AtomicU64,
}

impl Heuristics {
    /// Outbound [`Node::connect`] calls refused because [`Config::max_connecting`] setups were
    /// already running.
    pub fn connect_budget_rejections(&self) -> u64 {
        self.connect_budget_rejections.load(Relaxed)
    }

    /// Inbound connections accepted by the kernel and then dropped by an admission limit
    /// (a duplicate address, [`Config::max_connections_per_ip`] or [`Config::max_connections`]).
    /// Connections dropped only because the node is shutting down are not counted.
    pub fn inbound_connections_rejected(&self) -> u64 {
        self.inbound_connections_rejected.load(Relaxed)
    }

    /// Failed `accept` calls on the listener, other than a peer aborting or resetting its
    /// connection first. Each one pauses accepting for 500ms.
    pub fn accept_errors(&self) -> u64 {
        self.accept_errors.load(Relaxed)
    }

    /// Connections dropped because [`Handshake::perform_handshake`] exceeded
    /// [`Handshake::TIMEOUT_MS`]. Handshakes that fail with an error are not counted here.
    pub fn handshake_timeouts(&self) -> u64 {
        self.handshake_timeouts.load(Relaxed)
    }

    /// Connections dropped because no message arrived within [`Reading::IDLE_TIMEOUT_MS`].
    pub fn idle_timeouts(&self) -> u64 {
        self.idle_timeouts.load(Relaxed)
    }

    /// Connections dropped because a batch of messages could not be written within
    /// [`Writing::TIMEOUT_MS`].
    pub fn write_timeouts(&self) -> u64 {
        self.write_timeouts.load(Relaxed)
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
