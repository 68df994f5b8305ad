//! Shutting a node down, once, in a task of its own so that a cancelled caller cannot leave it
//! half done.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use tokio::{sync::watch, task::JoinSet};
use tokio_util::{
    sync::{CancellationToken, WaitForCancellationFuture},
    task::{TaskTracker, task_tracker::TaskTrackerToken},
};
use tracing::{debug, warn};

use super::listener;
use crate::{DisconnectOrigin, Node};

/// How long shutdown waits for connections to be torn down before cutting them off.
const DRAIN_DEADLINE: Duration = Duration::from_secs(3);

pub(crate) struct Shutdown {
    begun: AtomicBool,
    /// Cancelled when shutdown begins: stops dials and handshakes in progress.
    cancel: CancellationToken,
    /// Counts setups and teardowns in flight, which shutdown waits for.
    in_flight: TaskTracker,
    done: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            begun: AtomicBool::new(false),
            cancel: CancellationToken::new(),
            in_flight: TaskTracker::new(),
            done: watch::Sender::new(false),
        }
    }
}

impl Shutdown {
    pub(crate) fn has_begun(&self) -> bool {
        self.begun.load(Ordering::Acquire)
    }

    pub(crate) fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.cancel.cancelled()
    }

    pub(crate) fn track(&self) -> TaskTrackerToken {
        self.in_flight.token()
    }
}

pub(super) async fn shut_down(node: &Node) {
    let shutdown = &node.0.shutdown;
    let mut done = shutdown.done.subscribe();
    if !shutdown.begun.swap(true, Ordering::AcqRel) {
        node.registry().begin_shutdown();
        shutdown.cancel.cancel();
        debug!(parent: node.span(), "shutting down");
        let node = node.clone();
        tokio::spawn(async move {
            drain(&node).await;
            node.0.shutdown.done.send_replace(true);
        });
    }
    let _ = done.wait_for(|done| *done).await;
}

async fn drain(node: &Node) {
    listener::stop_for_shutdown(node).await;

    let mut teardowns = JoinSet::new();
    for entry in node.registry().entries() {
        let node = node.clone();
        teardowns.spawn(async move {
            node.disconnect_with(
                entry.info.addr(),
                DisconnectOrigin::Shutdown,
                Some(entry.id),
            )
            .await;
        });
    }
    let in_flight = &node.0.shutdown.in_flight;
    in_flight.close();
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while teardowns.join_next().await.is_some() {}
        in_flight.wait().await;
    })
    .await;
    if drained.is_err() {
        warn!(parent: node.span(), "connections took longer than {DRAIN_DEADLINE:?} to close; cutting them off");
    }
    // cancelling one of our teardowns still removes its connection
    teardowns.shutdown().await;
    // What is still registered belongs to teardowns started elsewhere (a user's disconnect, a
    // task's guard) that are still running: a hook slower than the deadline, or a caller that
    // stopped polling. Cut those connections off now, so that none is registered when
    // shut_down returns; their hooks go on in their own tasks (each bounded by its
    // TIMEOUT_MS), and their own removal later finds nothing to do.
    let left = node.registry().remove_all();
    for entry in &left {
        entry.close();
    }
    if !left.is_empty() {
        warn!(
            parent: node.span(),
            "cut off {} connection(s) whose teardown, started elsewhere, was still running",
            left.len()
        );
    }
    // the protocols hold clones of the user's type, and so of this node: let them go
    node.protocols().clear();
    debug!(parent: node.span(), "shut down");
}
