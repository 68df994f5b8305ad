//! The typed send paths behind the generated `send`, `send_fast` and `send_to_many`.

use std::{io, net::SocketAddr, time::Duration};

// tokio's clock, not std's: deadlines follow the runtime's time, which a simulation drives
use tokio::{sync::oneshot, time::Instant};

use crate::{Message, Node, codec::Encoded, protocols::Writing};

/// Queues `message` for `addr` and waits until it is written to the socket.
pub async fn send<W: Writing>(this: &W, addr: SocketAddr, message: W::Message) -> io::Result<()> {
    let written = this.unicast(addr, message)?;
    confirmed(addr, written).await
}

async fn confirmed(addr: SocketAddr, written: oneshot::Receiver<io::Result<()>>) -> io::Result<()> {
    written.await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!("the connection to {addr} closed before the message was written"),
        ))
    })
}

/// Queues `message` for `addr` without waiting.
pub fn send_fast<W: Writing>(this: &W, addr: SocketAddr, message: W::Message) -> io::Result<()> {
    this.unicast_fast(addr, message)
}

/// Encodes `message` once and queues the same bytes for every address; returns the
/// addresses it could not be queued for, with why.
pub fn send_to_many_encoded<W, M>(
    this: &W,
    addrs: impl IntoIterator<Item = SocketAddr>,
    message: &M,
) -> Vec<(SocketAddr, io::Error)>
where
    W: Writing,
    W::Message: From<Encoded<M>>,
    M: Message,
{
    let encoded = Encoded::new(message);
    queue_to_each(this, addrs, || encoded.clone().into())
}

/// Queues a clone of `message` for every address (a user codec encodes each one itself).
pub fn send_to_many_cloned<W, M>(
    this: &W,
    addrs: impl IntoIterator<Item = SocketAddr>,
    message: &M,
) -> Vec<(SocketAddr, io::Error)>
where
    W: Writing,
    W::Message: From<M>,
    M: Clone,
{
    queue_to_each(this, addrs, || message.clone().into())
}

/// Queues a message built by `make` for every address without waiting; returns the addresses
/// it could not be queued for, with why.
fn queue_to_each<W: Writing>(
    this: &W,
    addrs: impl IntoIterator<Item = SocketAddr>,
    make: impl Fn() -> W::Message,
) -> Vec<(SocketAddr, io::Error)> {
    addrs
        .into_iter()
        .filter_map(|addr| this.unicast_fast(addr, make()).err().map(|e| (addr, e)))
        .collect()
}

/// Queues a message built by `make`, waiting for room in a full queue until `deadline`
/// (the engine's queue only offers a send that fails when full).
pub(crate) async fn enqueue_waiting<W: Writing>(
    this: &W,
    addr: SocketAddr,
    deadline: Instant,
    make: impl Fn() -> W::Message,
) -> io::Result<()> {
    let mut pause = Duration::from_micros(100);
    loop {
        match this.unicast_fast(addr, make()) {
            Err(e) if e.kind() == io::ErrorKind::QuotaExceeded && Instant::now() < deadline => {
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Starts the listener unless it is already on; returns the address it listens on.
pub async fn listen(node: &Node) -> io::Result<SocketAddr> {
    loop {
        if let Ok(addr) = node.listening_addr().await {
            return Ok(addr);
        }
        // `None` means a concurrent start turned it on first and this toggle turned it off
        if let Some(addr) = node.toggle_listener().await? {
            return Ok(addr);
        }
    }
}

/// The length-delimited codec of a declaration.
pub fn length_delimited<In, Out>(
    max_frame: usize,
    length_width: usize,
    little_endian: bool,
) -> crate::codec::MessageCodec<In, Out> {
    let codec = crate::codec::MessageCodec::new()
        .max_frame_len(max_frame)
        .length_width(length_width);
    if little_endian {
        codec.little_endian()
    } else {
        codec
    }
}
