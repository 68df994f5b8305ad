//! The listening socket and its accept loop.

use std::{io, net::SocketAddr, sync::Mutex, time::Duration};

use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::{registry::lock, setup};
use crate::{
    Heuristics, Node, ShuttingDown,
    net::{self, TcpListener},
};

/// How long accepting pauses after an unexpected accept error (e.g. out of file descriptors),
/// so that a persistent error does not spin the loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Default)]
pub(crate) struct Listener {
    /// Serializes toggles (and shutdown's final stop) with each other.
    state: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    /// The bound address, readable without waiting on a toggle in progress.
    addr: Mutex<Option<SocketAddr>>,
}

impl Listener {
    pub(crate) fn addr(&self) -> Option<SocketAddr> {
        *lock(&self.addr)
    }
}

pub(super) async fn toggle(node: &Node) -> io::Result<Option<SocketAddr>> {
    let listener = &node.0.listener;
    let mut state = listener.state.lock().await;
    if node.is_shutting_down() {
        return Err(ShuttingDown::error());
    }
    if let Some(task) = state.take() {
        stop(task).await;
        *lock(&listener.addr) = None;
        debug!(parent: node.span(), "stopped listening");
        return Ok(None);
    }
    listen(node, &mut state).await.map(Some)
}

/// Starts listening unless the node already does; returns the address either way.
pub(super) async fn start(node: &Node) -> io::Result<SocketAddr> {
    let listener = &node.0.listener;
    let mut state = listener.state.lock().await;
    if node.is_shutting_down() {
        return Err(ShuttingDown::error());
    }
    match (state.is_some(), listener.addr()) {
        (true, Some(addr)) => Ok(addr),
        _ => listen(node, &mut state).await,
    }
}

/// Binds the listening socket and starts the accept loop; `state` must hold no loop.
async fn listen(node: &Node, state: &mut Option<JoinHandle<()>>) -> io::Result<SocketAddr> {
    let config = node.config();
    let wanted = config.listener_addr.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "Config::listener_addr is None",
        )
    })?;
    let tcp = net::listen(wanted, config.reuse_listener_port, config.listener_backlog).await?;
    let addr = tcp.local_addr()?;
    *state = Some(tokio::spawn(accept_loop(node.clone(), tcp)));
    *lock(&node.0.listener.addr) = Some(addr);
    debug!(parent: node.span(), "listening on {addr}");
    Ok(addr)
}

/// Stops listening for good (shutdown); the socket is closed when this returns.
pub(super) async fn stop_for_shutdown(node: &Node) {
    let listener = &node.0.listener;
    let mut state = listener.state.lock().await;
    if let Some(task) = state.take() {
        stop(task).await;
    }
    *lock(&listener.addr) = None;
}

/// Aborts the accept loop and waits until it is gone, so its socket is closed on return.
async fn stop(task: JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}

/// Accepts connections for as long as the node listens. A connection is taken from the kernel
/// only when a setup slot is free for it, so surplus peers wait in the accept queue; an idle
/// listener holds no slot.
async fn accept_loop(node: Node, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let Ok(permit) = node.registry().budget().clone().acquire_owned().await else {
                    return;
                };
                setup::accept(&node, stream, addr, permit);
            }
            // the peer gave up before we took the connection: nothing is wrong with us
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => {
                Heuristics::bump(&node.heuristics().accept_errors);
                warn!(parent: node.span(), "accept failed: {e}; pausing for {ACCEPT_ERROR_BACKOFF:?}");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}
