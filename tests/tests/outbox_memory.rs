//! WR-15: a burst of large messages costs the sender about one batch of heap, not a queue's
//! depth of encoded copies.
//!
//! This file has its own test binary because it installs a counting global allocator; it holds
//! a single test, run on a current-thread runtime, so nothing else allocates meanwhile.

use std::{alloc::System, time::Duration};

use bytes::Bytes;
use pea2pea::protocols::Writing;
use pea2pea_tests::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::time::timeout;

/// Counts every allocation, so that the test can read the live heap.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What a batch may hold with [`Peer`]'s default `INITIAL_BUFFER_SIZE` of 64 KiB, and the most
/// its buffer grows to (doubling past the message that crosses that bound).
const BATCH: usize = 8 * 64 * 1024;
const BATCH_BUFFER: isize = 2 * BATCH as isize;

// WR-15: 64 messages of 60 000 bytes (3.8 MB encoded) queued in one go, before the writer task
// can run: the sender's heap grows by one batch buffer (at most 1 MiB), not by the 3.8 MB the
// queue would hold if every message were encoded at its send; all 64 then arrive.
#[tokio::test]
async fn wr_15_a_burst_of_large_messages_holds_one_batch_of_heap() {
    let (sender, receiver, addr) = Peer::sender_and_receiver().await;
    let first = sender
        .unicast(addr, Bytes::from_static(b"warm-up"))
        .unwrap();
    timeout(Duration::from_secs(10), first)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let payload = Bytes::from(vec![7u8; 60_000]);
    let before = live_bytes(ALLOCATOR.stats());
    let confirmations: Vec<_> = (0..<Peer as Writing>::MESSAGE_QUEUE_DEPTH)
        .map(|_| sender.unicast(addr, payload.clone()).unwrap())
        .collect();
    let queued = live_bytes(ALLOCATOR.stats()) - before;
    assert!(
        queued < BATCH_BUFFER + 64 * 1024,
        "queueing 64 x 60 000 bytes grew the heap by {queued} bytes"
    );

    for confirmation in confirmations {
        let written = timeout(Duration::from_secs(10), confirmation).await;
        assert!(matches!(written, Ok(Ok(Ok(())))), "{written:?}");
    }
    wait_until(Duration::from_secs(10), || receiver.processed() == 65).await;
    shut_down_all([&sender.node, &receiver.node]).await;
}
