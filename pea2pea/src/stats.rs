use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::Instant,
};

#[cfg(doc)]
use crate::{ConnectionInfo, Node};

/// Message and byte counters, kept for a whole [`Node`] and for each connection
/// ([`ConnectionInfo::stats`]).
///
/// Bytes include framing: they are what went through the codec, not just payloads. Node-level
/// counters accumulate over the node's life; a connection's counters go away with it.
#[derive(Debug)]
pub struct Stats {
    created: Instant,
    msgs_sent: AtomicU64,
    bytes_sent: AtomicU64,
    msgs_received: AtomicU64,
    bytes_received: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            created: Instant::now(),
            msgs_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            msgs_received: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Counts `msgs` messages totalling `bytes` bytes as sent. The engine calls this for every
    /// written batch; a handshake that writes to the stream itself may call it too.
    pub fn register_sent_messages(&self, msgs: usize, bytes: usize) {
        self.msgs_sent.fetch_add(msgs as u64, Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Relaxed);
    }

    /// Counts one received message of `size` bytes.
    pub fn register_received_message(&self, size: usize) {
        self.msgs_received.fetch_add(1, Relaxed);
        self.bytes_received.fetch_add(size as u64, Relaxed);
    }

    /// When these stats (and so the node or connection) were created.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// The messages and bytes sent so far, as `(messages, bytes)`.
    pub fn sent(&self) -> (u64, u64) {
        (self.msgs_sent.load(Relaxed), self.bytes_sent.load(Relaxed))
    }

    /// The messages and bytes received so far, as `(messages, bytes)`.
    pub fn received(&self) -> (u64, u64) {
        (
            self.msgs_received.load(Relaxed),
            self.bytes_received.load(Relaxed),
        )
    }
}
