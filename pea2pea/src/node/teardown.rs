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
        // counted in flight before the claim: shutdown, whose own claim fails once this one
        // is visible, then always waits for this teardown
        let in_flight = self.0.shutdown.track();
        let Some(entry) = self.registry().claim(addr, conn_id, &in_flight) else {
            return false;
        };
        // Finishes the teardown when dropped: at the end of this call or when it is cancelled.
        let _finish = Finish {
            node: self.clone(),
            entry,
            _in_flight: in_flight,
        };
        // a cause that recorded no reason of its own gets the teardown's
        _finish
            .entry
            .info
            .record_close_reason_with(|| default_reason(origin).into());
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

/// The close reason of a teardown whose cause recorded none.
fn default_reason(origin: DisconnectOrigin) -> &'static str {
    match origin {
        DisconnectOrigin::User => "this node disconnected it",
        DisconnectOrigin::Shutdown => "this node is shutting down",
        DisconnectOrigin::Reading => "the reader stopped",
        DisconnectOrigin::Writing => "the writer stopped",
        DisconnectOrigin::OnConnectAbort => "on_connect panicked",
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

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicBool, Ordering},
            mpsc,
        },
        time::{Duration, Instant},
    };

    use super::*;
    use crate::Config;

    async fn wait_for(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // SHUT-11: shut_down waits for a teardown from the moment its claim is visible. The user's
    // disconnect is frozen (its thread blocked) right after its claim, before anything else it
    // does; shutdown's own claim of that connection fails, and it must still wait for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn shut_11_shutdown_waits_for_a_teardown_frozen_after_its_claim() {
        let node = Node::new(Config {
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        });
        let addr = node.toggle_listener().await.unwrap().unwrap();
        let _peer = tokio::net::TcpStream::connect(addr).await.unwrap();
        wait_for("the connection", || node.num_connected() == 1).await;
        let peer = node.connected_addrs()[0];

        let (frozen_tx, frozen_rx) = mpsc::channel();
        let (thaw_tx, thaw_rx) = mpsc::channel::<()>();
        node.registry().set_after_claim(move || {
            frozen_tx.send(()).unwrap();
            let _ = thaw_rx.recv_timeout(Duration::from_secs(30));
        });
        let disconnect = tokio::spawn({
            let node = node.clone();
            async move { node.disconnect(peer).await }
        });
        tokio::task::spawn_blocking(move || frozen_rx.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the disconnect never claimed the connection");

        // thawed from another thread a little later; shut_down must not be done before that
        let thawed = Arc::new(AtomicBool::new(false));
        let thawer = std::thread::spawn({
            let thawed = thawed.clone();
            move || {
                std::thread::sleep(Duration::from_millis(300));
                thawed.store(true, Ordering::SeqCst);
                thaw_tx.send(()).unwrap();
            }
        });
        tokio::time::timeout(Duration::from_secs(10), node.shut_down())
            .await
            .expect("shut_down hung");
        assert!(
            thawed.load(Ordering::SeqCst),
            "shut_down returned while a teardown it could see had not run"
        );
        assert!(
            disconnect.await.unwrap(),
            "the user's disconnect won the claim"
        );
        assert_eq!(node.num_connected(), 0);
        thawer.join().unwrap();
    }
}
