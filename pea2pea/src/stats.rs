use std::{
    collections::BTreeMap,
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Instant,
};

use crate::node::registry::lock;

#[cfg(doc)]
use crate::{ConnectionInfo, Node};

/// Message and byte counters, kept for a whole [`Node`] and for each connection
/// ([`ConnectionInfo::stats`]).
///
/// Bytes include framing: they are what went through the codec, not just payloads. Node-level
/// counters accumulate over the node's life; a connection's counters go away with it.
///
/// The engine counts every message its codecs read and write; a handshake that talks over the
/// raw stream can count its own traffic too:
///
/// ```
/// use pea2pea::Stats;
///
/// let stats = Stats::default();
/// stats.register_sent_messages(2, 10); // two messages, 10 bytes with their framing
/// stats.register_received_message(4);
/// assert_eq!(stats.sent(), (2, 10));
/// assert_eq!(stats.received(), (1, 4));
/// stats.register_decode_failure(); // a frame that could not be decoded
/// assert_eq!(stats.decode_failures(), 1);
/// assert!(stats.created().elapsed().as_secs() < 60);
/// ```
pub struct Stats {
    created: Instant,
    sent: Counters,
    received: Counters,
    /// Frames the codec refused: the rare path, kept off the received half's cache line.
    decode_failures: AtomicU64,
    /// A node's running readers, by connection id: each counts what it receives in its own
    /// connection's stats only, and the node's `received` is the sum (see `ReaderTally`).
    /// Empty in a connection's stats.
    readers: Mutex<BTreeMap<u64, Arc<Stats>>>,
}

/// A message count and a byte count, on a cache line of their own: the sent and received
/// halves are updated by different tasks (the writer and the reader), usually on different
/// threads, which would otherwise fight over one line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Counters {
    msgs: AtomicU64,
    bytes: AtomicU64,
    /// Counted by the single task that owns this direction of a connection (its reader), with
    /// a load and a store where `msgs` and `bytes` need a locked add (a few ns each, per
    /// message); read as part of the sums.
    owned_msgs: AtomicU64,
    owned_bytes: AtomicU64,
}

impl Counters {
    #[inline]
    fn add(&self, msgs: u64, bytes: u64) {
        self.msgs.fetch_add(msgs, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    /// Adds without a read-modify-write: only for the one task that owns these counters.
    #[inline]
    fn add_owned(&self, msgs: u64, bytes: u64) {
        let add = |counter: &AtomicU64, n| counter.store(counter.load(Relaxed) + n, Relaxed);
        add(&self.owned_msgs, msgs);
        add(&self.owned_bytes, bytes);
    }

    fn get(&self) -> (u64, u64) {
        let (msgs, bytes) = self.owned();
        (
            self.msgs.load(Relaxed) + msgs,
            self.bytes.load(Relaxed) + bytes,
        )
    }

    /// What the owning task counted.
    fn owned(&self) -> (u64, u64) {
        (
            self.owned_msgs.load(Relaxed),
            self.owned_bytes.load(Relaxed),
        )
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            created: Instant::now(),
            sent: Default::default(),
            received: Default::default(),
            decode_failures: AtomicU64::new(0),
            readers: Default::default(),
        }
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("created", &self.created)
            .field("sent", &self.sent())
            .field("received", &self.received())
            .field("decode_failures", &self.decode_failures())
            .finish()
    }
}

impl Stats {
    /// Counts `msgs` messages totalling `bytes` bytes as sent. The engine calls this for every
    /// written batch; a handshake that writes to the stream itself may call it too.
    pub fn register_sent_messages(&self, msgs: usize, bytes: usize) {
        self.sent.add(msgs as u64, bytes as u64);
    }

    /// Counts one received message of `size` bytes.
    pub fn register_received_message(&self, size: usize) {
        self.received.add(1, size as u64);
    }

    /// Counts one received message, as [`register_received_message`](Stats::register_received_message)
    /// does, for the connection's reader task: the only caller, so it needs no locked add. Its
    /// node counts it too, through the reader's `ReaderTally`.
    #[inline]
    pub(crate) fn register_received_by_reader(&self, size: usize) {
        self.received.add_owned(1, size as u64);
    }

    /// Counts one frame that could not be decoded. The engine calls this when a connection's
    /// codec returns an error; code that decodes part of a message later (as the DSL decodes
    /// an rpc request in its handler) calls it for its own failures.
    pub fn register_decode_failure(&self) {
        self.decode_failures.fetch_add(1, Relaxed);
    }

    /// How many frames could not be decoded: each one ended its connection. A node counts
    /// those of all its connections over its life.
    pub fn decode_failures(&self) -> u64 {
        self.decode_failures.load(Relaxed)
    }

    /// When these stats (and so the node or connection) were created, on std's clock: in a
    /// simulation (see [`net`](crate::net)) that is real time, not the simulation's.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// The messages and bytes sent so far, as `(messages, bytes)`.
    pub fn sent(&self) -> (u64, u64) {
        self.sent.get()
    }

    /// The messages and bytes received so far, as `(messages, bytes)`.
    pub fn received(&self) -> (u64, u64) {
        // under the lock, so that a reader that ends meanwhile is counted once: either here
        // or in `self.received`, into which `retire_reader` folds it under the same lock
        let readers = lock(&self.readers);
        readers
            .values()
            .fold(self.received.get(), |(msgs, bytes), conn| {
                let (m, b) = conn.received.owned();
                (msgs + m, bytes + b)
            })
    }

    /// Starts counting what the reader of connection `id` counts in `conn` (with
    /// `register_received_by_reader`) as received by this node too.
    fn add_reader(&self, id: u64, conn: Arc<Stats>) {
        lock(&self.readers).insert(id, conn);
    }

    /// Stops counting the reader of connection `id` (it has ended): what it counted moves into
    /// this node's own counters.
    fn retire_reader(&self, id: u64) {
        let mut readers = lock(&self.readers);
        if let Some(conn) = readers.remove(&id) {
            let (msgs, bytes) = conn.received.owned();
            self.received.add(msgs, bytes);
        }
    }
}

/// Makes a connection's reader task count for its node without touching the node's counters
/// per message: those are shared by every reader of the node, and each locked add on them
/// costs a few ns (more when readers on other threads contend for the line). The reader
/// counts in its connection's stats alone (a load and a store: it is their only writer), and
/// the node's `received()` adds up its running readers' counts. Held by the reader task for
/// its whole life, so that it is dropped (and its counts folded into the node's) after the
/// reader's last count, however the task ends: finished, aborted or panicked.
pub(crate) struct ReaderTally<'a> {
    node: &'a Stats,
    id: u64,
}

impl<'a> ReaderTally<'a> {
    pub(crate) fn start(node: &'a Stats, id: u64, conn: &Arc<Stats>) -> Self {
        node.add_reader(id, conn.clone());
        Self { node, id }
    }
}

impl Drop for ReaderTally<'_> {
    fn drop(&mut self) {
        self.node.retire_reader(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // STAT-10: a running reader's counts are the node's too, and are folded into the node's
    // own counters exactly once when the reader ends.
    #[test]
    fn stat_10_reader_counts_fold_into_the_node_once() {
        let node = Stats::default();
        node.register_received_message(5); // counted by hand, not by a reader
        let conn = Arc::new(Stats::default());
        let tally = ReaderTally::start(&node, 7, &conn);
        conn.register_received_by_reader(10);
        conn.register_received_by_reader(20);
        assert_eq!(node.received(), (3, 35));
        assert_eq!(conn.received(), (2, 30));
        drop(tally);
        assert_eq!(node.received(), (3, 35));
        assert!(lock(&node.readers).is_empty(), "the ended reader is let go");
        node.retire_reader(7); // a second retirement finds nothing to fold
        assert_eq!(node.received(), (3, 35));
    }
}
