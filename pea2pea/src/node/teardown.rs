//! The end of a connection: an exactly-once claim, the `on_disconnect` hook, then removal.

use std::{net::SocketAddr, sync::Arc};

use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::{debug, error, warn};

use super::registry::Entry;
use crate::{DisconnectOrigin, Node, task::AbortOnDrop};

impl Node {
    /// Tears down the connection with `addr` (only the one with `conn_id`, if given). Returns
    /// whether this call did it: exactly one caller wins the claim, whatever else races it.
    pub(crate) async fn disconnect_with(
        &self,
        addr: SocketAddr,
        origin: DisconnectOrigin,
        conn_id: Option<u64>,
    ) -> bool {
        let Some(entry) = self.registry().claim(addr, conn_id) else {
            return false;
        };
        // Finishes the teardown when dropped: at the end of this call or when it is cancelled.
        let _finish = Finish {
            node: self.clone(),
            entry,
            _in_flight: self.0.shutdown.track(),
        };
        debug!(parent: _finish.entry.info.span(), "disconnecting ({origin:?})");

        if let Some(hook) = self.protocols().on_disconnect() {
            // a task of its own, so that a panic in the hook cannot unwind into our caller
            let mut task = AbortOnDrop(tokio::spawn((hook.run)(addr, origin)));
            match tokio::time::timeout(hook.timeout, &mut task.0).await {
                Err(_) => {
                    warn!(parent: self.span(), "on_disconnect({addr}) took longer than {:?}; cut short", hook.timeout)
                }
                Ok(Err(e)) if e.is_panic() => {
                    error!(parent: self.span(), "on_disconnect({addr}) panicked")
                }
                Ok(_) => {}
            }
        }
        true
    }
}

struct Finish {
    node: Node,
    entry: Arc<Entry>,
    _in_flight: TaskTrackerToken,
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.node
            .registry()
            .remove(self.entry.info.addr(), self.entry.id);
        self.entry.close();
    }
}
