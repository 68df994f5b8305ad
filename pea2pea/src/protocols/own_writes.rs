//! A connection's reader task writes what it queued for its own connection itself.
//!
//! A handler that answers a message (`process_message` calling `unicast` back to the sender)
//! runs in the connection's reader task. Ringing the writer task for that answer costs a task
//! wake-up per exchange (often a thread wake-up too), which is most of a round trip's overhead
//! on loopback. Instead, while the reader task is polled, a push that starts a batch on its
//! own connection's outbox leaves the writer asleep and marks the poll; when the poll ends
//! (the handler awaits something, or the reader waits for the socket), the reader writes the
//! batch without blocking, and rings the writer only for what the socket did not take.
//!
//! Everything that a handler queued in one poll still goes out as one batch, and nothing
//! waits longer than the poll that queued it: the flush runs on every way out of a poll,
//! a panic included.

use std::{
    cell::Cell,
    sync::Arc,
    task::{Context, Poll},
};

use crate::task::BoxFuture;

/// The outbox of one connection, as its reader task sees it.
pub(crate) trait OwnWrites: Send + Sync {
    /// Writes the pending batch now, without blocking; leaves the rest to the writer task.
    fn flush_own(&self);
}

thread_local! {
    /// While a reader task is polled on this thread: the address of its connection's outbox,
    /// and whether a push to that outbox skipped ringing its writer.
    static POLLED: Cell<(usize, bool)> = const { Cell::new((0, false)) };
}

/// Called by a push that starts a batch on the outbox at `outbox`: `true` if the task being
/// polled is that connection's reader, which then writes the batch when its poll ends (so the
/// writer need not be rung).
#[inline]
pub(crate) fn defer_to_reader(outbox: usize) -> bool {
    POLLED.with(|polled| {
        let (current, _) = polled.get();
        let ours = current == outbox;
        if ours {
            polled.set((current, true));
        }
        ours
    })
}

/// Wraps a connection's reader task so that each of its polls flushes, on the way out, what it
/// queued for its own connection (`outbox`).
pub(crate) fn flush_after_each_poll(
    mut task: BoxFuture<()>,
    outbox: Arc<dyn OwnWrites>,
) -> BoxFuture<()> {
    let key = address_of(&outbox);
    Box::pin(std::future::poll_fn(
        move |cx: &mut Context<'_>| -> Poll<()> {
            let _polled = Polled::enter(key, &*outbox);
            task.as_mut().poll(cx)
        },
    ))
}

/// The address that identifies an outbox in [`POLLED`] (the same as `defer_to_reader`'s).
fn address_of(outbox: &Arc<dyn OwnWrites>) -> usize {
    Arc::as_ptr(outbox).cast::<()>() as usize
}

/// The mark of one poll; flushes on drop, however the poll ends.
struct Polled<'a> {
    outbox: &'a dyn OwnWrites,
    outer: (usize, bool),
}

impl<'a> Polled<'a> {
    fn enter(key: usize, outbox: &'a dyn OwnWrites) -> Self {
        let outer = POLLED.with(|polled| polled.replace((key, false)));
        Self { outbox, outer }
    }
}

impl Drop for Polled<'_> {
    fn drop(&mut self) {
        let (_, deferred) = POLLED.with(|polled| polled.replace(self.outer));
        if deferred {
            self.outbox.flush_own();
        }
    }
}
