//! The life of a new connection up to registration: dial or accept, admission, handshake,
//! wiring the reader and writer, and registration; then `on_connect` is started.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use tokio::sync::OwnedSemaphorePermit;
use tracing::{Instrument, debug, error};

use super::registry::{Entry, Refusal, Reservation};
use crate::{
    Connection, ConnectionInfo, ConnectionSide, Heuristics, Node, ShuttingDown,
    io::{ConnReader, ConnWriter},
    net::{self, TcpSocket, TcpStream},
    protocols::{ConnCtx, HandshakeSlot, on_connect, own_writes},
    task::{Panicked, catch_unwind},
};

pub(super) async fn connect(
    node: &Node,
    addr: SocketAddr,
    socket: Option<TcpSocket>,
) -> io::Result<()> {
    let result = dial_and_set_up(node, addr, socket).await;
    if let Err(e) = &result {
        debug!(parent: node.span(), "couldn't connect to {addr}: {e}");
    }
    result
}

async fn dial_and_set_up(
    node: &Node,
    addr: SocketAddr,
    socket: Option<TcpSocket>,
) -> io::Result<()> {
    if node.is_shutting_down() {
        return Err(ShuttingDown::error());
    }
    refuse_self(node, addr)?;
    let reservation = node.registry().admit(node, addr, None).map_err(|refusal| {
        if refusal == Refusal::SetupBudget {
            Heuristics::bump(&node.heuristics().connect_budget_rejections);
        }
        refusal.into_error(addr)
    })?;

    let timeout_ms = node.config().connection_timeout_ms;
    let dial = net::dial(addr, socket);
    // `biased`: the branches are polled in order rather than at random, which would make a
    // simulated run depend on something besides its seed
    let stream = tokio::select! {
        biased;
        dialled = tokio::time::timeout(Duration::from_millis(timeout_ms.into()), dial) => {
            dialled.map_err(|_| io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {addr} took longer than {timeout_ms}ms"),
            ))??
        }
        _ = node.0.shutdown.cancelled() => return Err(ShuttingDown::error()),
    };
    set_up(node, stream, addr, ConnectionSide::Responder, reservation).await
}

/// A node must not dial itself: its exact listening address, or, when it listens on a
/// wildcard IP, a loopback address with its port.
fn refuse_self(node: &Node, addr: SocketAddr) -> io::Result<()> {
    let Some(own) = node.0.listener.addr() else {
        return Ok(());
    };
    let is_self = own == addr
        || (own.ip().is_unspecified() && own.port() == addr.port() && addr.ip().is_loopback());
    if is_self {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "a node can't connect to itself",
        ));
    }
    Ok(())
}

/// Admits an accepted connection and sets it up in its own task; called by the accept loop
/// with the setup permit it waited for.
pub(super) fn accept(
    node: &Node,
    stream: TcpStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    match node.registry().admit(node, addr, Some(permit)) {
        Ok(reservation) => {
            let node = node.clone();
            tokio::spawn(async move {
                if let Err(e) =
                    set_up(&node, stream, addr, ConnectionSide::Initiator, reservation).await
                {
                    debug!(parent: node.span(), "couldn't set up the connection from {addr}: {e}");
                }
            });
        }
        // dropped unannounced: the node is going away, which is no fault of the peer
        Err(Refusal::ShuttingDown) => {}
        Err(refusal) => {
            Heuristics::bump(&node.heuristics().inbound_connections_rejected);
            debug!(parent: node.span(), "rejected {addr}: {}", refusal.into_error(addr));
        }
    }
}

/// Takes a connected stream through the handshake to registration. `peer_side` is the peer's
/// role. Nothing after registration awaits, so a caller that goes away after this point leaves
/// a complete connection behind, never half of one.
async fn set_up(
    node: &Node,
    stream: TcpStream,
    addr: SocketAddr,
    peer_side: ConnectionSide,
    reservation: Reservation,
) -> io::Result<()> {
    // The writer already coalesces messages into one write per batch, so Nagle's algorithm
    // would only add latency; a handshake may turn it back on with `set_nodelay(false)`.
    if let Err(e) = stream.set_nodelay(true) {
        debug!(parent: node.span(), "couldn't set TCP_NODELAY for {addr}: {e}");
    }
    let id = node.next_conn_id();
    let span = tracing::error_span!(parent: node.span(), "conn", %addr); // on as the node's is
    let mut conn = Connection::new(id, ConnectionInfo::new(id, addr, peer_side, span), stream);
    let protocols = node.protocols().snapshot();

    if let Some(handshake) = &protocols.handshake {
        conn = run_handshake(node, handshake, conn).await?;
    }
    let (reader, writer) = into_halves(conn.stream.take(), conn.reader.take(), conn.writer.take())?;

    let claimed = Arc::new(AtomicBool::new(false));
    let ctx = ConnCtx {
        node: node.clone(),
        id: conn.id,
        own_side: !peer_side,
        info: conn.info.clone(),
        claimed,
    };
    // Reading first, then Writing: the published lifecycle's order, which programs rely on
    // (a `Reading::codec` may take state that `Writing::codec` then consumes)
    let (mut reader_task, idle_reader) = match &protocols.reading {
        Some(reading) => (Some((reading.start)(reader, &ctx)?), None),
        None => (None, Some(reader)),
    };
    let (sender, writer_task, idle_writer) = match &protocols.writing {
        Some(writing) => {
            let parts = (writing.start)(writer, &ctx)?;
            // answers queued by handlers in the reader task go out when its poll ends
            reader_task =
                reader_task.map(|task| own_writes::flush_after_each_poll(task, parts.own_writes));
            (Some(parts.sender), Some(parts.task), None)
        }
        None => (None, None, Some(writer)),
    };
    let entry = Arc::new(Entry::new(
        id,
        conn.info,
        ctx.claimed.clone(),
        sender,
        idle_reader,
        idle_writer,
    ));
    node.registry()
        .register(reservation, entry.clone())
        .map_err(|r| r.into_error(addr))?;
    debug!(parent: entry.info.span(), "connected");

    for task in [reader_task, writer_task].into_iter().flatten() {
        // user code in these tasks logs inside the connection's span (a child of the node's)
        let task = task.instrument(entry.info.span().clone());
        entry.attach(tokio::spawn(task).abort_handle());
    }
    if let Some(hook) = &protocols.on_connect {
        on_connect::schedule(hook, &entry, ctx);
    }
    Ok(())
}

/// Runs the user's handshake with its timeout, stopping it if shutdown begins; a panic in it
/// fails this connection only.
async fn run_handshake(
    node: &Node,
    handshake: &HandshakeSlot,
    conn: Connection,
) -> io::Result<Connection> {
    let addr = conn.addr();
    let span = conn.span().clone();
    let run = catch_unwind((handshake.run)(conn)).instrument(span);
    let run = tokio::time::timeout(handshake.timeout, run);
    tokio::select! {
        biased; // deterministic, as in the dial above
        outcome = run => match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(Panicked)) => {
                error!(parent: node.span(), "the handshake with {addr} panicked");
                Err(io::Error::other("the handshake panicked"))
            }
            Err(_elapsed) => {
                Heuristics::bump(&node.heuristics().handshake_timeouts);
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the handshake with {addr} took longer than {:?}", handshake.timeout),
                ))
            }
        },
        _ = node.0.shutdown.cancelled() => Err(ShuttingDown::error()),
    }
}

/// Splits what the handshake left: the TCP stream it borrowed, or the halves of the stream it
/// returned in its place.
fn into_halves(
    stream: Option<TcpStream>,
    reader: Option<crate::io::BoxedReader>,
    writer: Option<crate::io::BoxedWriter>,
) -> io::Result<(ConnReader, ConnWriter)> {
    match (stream, reader, writer) {
        (Some(stream), _, _) => {
            let (read, write) = net::split(stream);
            Ok((ConnReader::Tcp(read), ConnWriter::Tcp(Arc::new(write))))
        }
        (None, Some(read), Some(write)) => Ok((ConnReader::Boxed(read), ConnWriter::Boxed(write))),
        _ => Err(io::Error::other(
            "the handshake took the stream and did not return it (call Handshake::return_stream)",
        )),
    }
}
