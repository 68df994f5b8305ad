//! The end of a connection: an exactly-once claim, the `on_disconnect` hook, then removal.

use std::{net::SocketAddr, sync::Arc};

use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::{Instrument, debug, error, warn};

use super::registry::Entry;
use crate::{
    DisconnectOrigin, Node,
    task::{Panicked, catch_unwind},
};

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
        let entry_span = _finish.entry.info.span().clone();
        debug!(parent: &entry_span, "disconnecting ({origin:?})");

        if let Some(hook) = self.protocols().on_disconnect() {
            // inline, so that a cancelled disconnect drops the hook with it; a panic in the
            // hook is caught and does not unwind into our caller
            let span = entry_span.clone();
            let run = catch_unwind((hook.run)(addr, origin)).instrument(span);
            match tokio::time::timeout(hook.timeout, run).await {
                Ok(Ok(())) => {}
                Ok(Err(Panicked)) => error!(parent: self.span(), "on_disconnect({addr}) panicked"),
                Err(_) => warn!(
                    parent: self.span(),
                    "on_disconnect({addr}) took longer than {:?}; cut short", hook.timeout
                ),
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
