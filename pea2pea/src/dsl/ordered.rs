//! In a protocol with rpcs, each connection's `on` handlers run in a task of their own, one at
//! a time and in the order the messages came, so that the reader goes on routing the answers
//! to this node's calls while a handler waits (a handler may `call` its own peer).

use std::{future::Future, net::SocketAddr, pin::Pin};

use tokio::sync::mpsc;
use tracing::error;

use super::ext::{self, lock};
use crate::{ConnectionId, Node, Pea2Pea};

/// One message's handler, ready to run.
pub type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The handler task of one connection.
pub(crate) struct Worker {
    id: ConnectionId,
    jobs: mpsc::Sender<Job>,
}

/// Hands the handler of a message from `addr` (made by `job` for its connection) to that
/// connection's handler task, waiting while `depth` handlers are already waiting there: then
/// the reader stops reading from that peer, as it would if it ran the handlers itself.
pub async fn deliver_in_order<P: Pea2Pea>(
    this: &P,
    addr: SocketAddr,
    depth: usize,
    job: impl FnOnce(ConnectionId) -> Job,
) {
    let node = this.node();
    // the reader runs only while its connection is registered
    let Some(id) = node.connection_info(addr).map(|info| info.id()) else {
        return;
    };
    let jobs = {
        let ext = ext::of(node);
        let mut workers = lock(&ext.ordered);
        match workers.get(&addr) {
            Some(worker) if worker.id == id => worker.jobs.clone(),
            _ => {
                let (jobs, queue) = mpsc::channel(depth.max(1));
                let worker = Worker {
                    id,
                    jobs: jobs.clone(),
                };
                workers.insert(addr, worker);
                tokio::spawn(run(node.clone(), addr, id, queue));
                jobs
            }
        }
    };
    // fails only if the task panicked, which disconnects the peer
    let _ = jobs.send(job(id)).await;
}

/// Runs the handlers as they come. Each one runs to its end, even if the connection closes
/// meanwhile; once it has closed, the task handles what was already delivered and ends.
async fn run(node: Node, addr: SocketAddr, id: ConnectionId, mut queue: mpsc::Receiver<Job>) {
    let _guard = WorkerGuard {
        node: node.clone(),
        addr,
        id,
    };
    let mut closed = std::pin::pin!(node.connection_closed(addr, id));
    let mut open = true;
    loop {
        let job = tokio::select! {
            // what was delivered first; and no random choice, for a simulated run's sake
            biased;
            job = queue.recv() => job,
            () = &mut closed, if open => {
                open = false;
                forget(&node, addr, id); // the last sender: `recv` ends once the queue is empty
                continue;
            }
        };
        match job {
            Some(job) => job.await,
            None => break,
        }
    }
}

/// Removes the connection's worker, if it is still the one registered for `addr`.
fn forget(node: &Node, addr: SocketAddr, id: ConnectionId) {
    if let Some(ext) = ext::existing(node) {
        let mut workers = lock(&ext.ordered);
        if workers.get(&addr).is_some_and(|worker| worker.id == id) {
            workers.remove(&addr);
        }
    }
}

/// Cleans up after the handler task; a handler's panic disconnects its peer, as a panic in the
/// reader would.
pub(crate) struct WorkerGuard {
    pub(crate) node: Node,
    pub(crate) addr: SocketAddr,
    pub(crate) id: ConnectionId,
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        forget(&self.node, self.addr, self.id);
        if std::thread::panicking() {
            disconnect_after_panic(&self.node, self.addr, self.id);
        }
    }
}

/// Logs a handler's panic and disconnects its peer (that connection only).
pub(crate) fn disconnect_after_panic(node: &Node, addr: SocketAddr, id: ConnectionId) {
    error!(parent: node.span(), "a handler panicked on a message from {addr}; disconnecting");
    if let Some(info) = node.connection_info(addr).filter(|info| info.id() == id) {
        info.record_close_reason("a handler panicked on its message");
    }
    let node = node.clone();
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { node.disconnect_connection(addr, id).await });
    }
}
