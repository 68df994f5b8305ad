use std::{
    future::Future,
    io,
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::atomic::Ordering,
    time::Duration,
};

use bytes::BytesMut;
use tokio::{
    io::AsyncWriteExt,
    sync::{mpsc, oneshot},
};
use tokio_util::codec::Encoder;
use tracing::{debug, warn};

use super::{ConnCtx, WritingSlot, enable};
use crate::{ConnectionSide, DisconnectOrigin, Heuristics, Pea2Pea, io::ConnWriter};

/// A message waiting in a connection's queue, with the sender of its delivery confirmation.
struct Queued<M> {
    message: M,
    confirm: Option<oneshot::Sender<io::Result<()>>>,
}

/// Sends messages: [`unicast`](Writing::unicast) and
/// [`unicast_fast`](Writing::unicast_fast) queue a message for a connection, whose writer task
/// encodes everything queued with [`Codec`](Writing::Codec) and writes it in one batch.
///
/// A batch shares one deadline, [`TIMEOUT_MS`](Writing::TIMEOUT_MS), and one outcome. A write
/// error or timeout ends the connection with [`DisconnectOrigin::Writing`]; so does an encoder
/// error, since the codec's state can no longer be trusted.
pub trait Writing: Pea2Pea
where
    Self: Clone + Send + Sync + 'static,
{
    /// How many messages a connection's queue holds; sending to a full queue fails with
    /// `QuotaExceeded`. Must not be 0.
    const MESSAGE_QUEUE_DEPTH: usize = 64;

    /// The write buffer's starting capacity, allocated when the first message is sent. A batch
    /// that grows past it is written out in parts of about this size.
    const INITIAL_BUFFER_SIZE: usize = 64 * 1024;

    /// How long writing one batch may take, in milliseconds, before the connection is dropped
    /// (counted in [`Heuristics::write_timeouts`](crate::Heuristics::write_timeouts)).
    const TIMEOUT_MS: u64 = 10_000;

    /// The message to send.
    type Message: Send;

    /// The encoder that turns messages into bytes.
    type Codec: Encoder<Self::Message, Error = io::Error> + Send;

    /// Makes the node able to send to every connection established from now on.
    ///
    /// # Panics
    ///
    /// If [`MESSAGE_QUEUE_DEPTH`](Writing::MESSAGE_QUEUE_DEPTH) is 0, or writing is already
    /// enabled. Once shutdown has begun, enabling does nothing.
    fn enable_writing(&self) -> impl Future<Output = ()> {
        assert!(
            Self::MESSAGE_QUEUE_DEPTH != 0,
            "Writing::MESSAGE_QUEUE_DEPTH must not be 0"
        );
        let this = self.clone();
        async move {
            let node = this.node().clone();
            let enabled = enable(
                &node,
                "Writing",
                |p| &p.writing,
                || WritingSlot {
                    start: Box::new(move |writer, ctx| {
                        let codec =
                            catch_unwind(AssertUnwindSafe(|| this.codec(ctx.addr(), ctx.own_side)))
                                .map_err(|_| io::Error::other("Writing::codec panicked"))?;
                        let (queue, inbox) =
                            mpsc::channel::<Queued<Self::Message>>(Self::MESSAGE_QUEUE_DEPTH);
                        let task = write_loop::<Self>(codec, writer, inbox, ctx.clone());
                        Ok((Box::new(queue) as _, Box::pin(task) as _))
                    }),
                },
            );
            if enabled {
                node.protocols()
                    .writing_enabled
                    .store(true, Ordering::Release);
            }
        }
    }

    /// Creates the encoder for a connection; `side` is this node's own role in it.
    fn codec(&self, addr: SocketAddr, side: ConnectionSide) -> Self::Codec;

    /// Queues `message` for `addr` and returns a receiver of its delivery confirmation: `Ok`
    /// once the message was written to the socket (not an acknowledgement from the peer),
    /// the error of its batch if that failed, or a closed channel if the connection was torn
    /// down first.
    ///
    /// Errors at once with `Unsupported` (writing not enabled, or the node shared with a
    /// type whose `Message` differs), `NotConnected`, `QuotaExceeded` (the queue is full) or
    /// `BrokenPipe` (the connection's writer has stopped).
    fn unicast(
        &self,
        addr: SocketAddr,
        message: Self::Message,
    ) -> io::Result<oneshot::Receiver<io::Result<()>>> {
        let (confirm, confirmation) = oneshot::channel();
        enqueue(
            self,
            addr,
            Queued {
                message,
                confirm: Some(confirm),
            },
        )?;
        Ok(confirmation)
    }

    /// Queues `message` for `addr` without a confirmation; the errors are those of
    /// [`unicast`](Writing::unicast).
    fn unicast_fast(&self, addr: SocketAddr, message: Self::Message) -> io::Result<()> {
        enqueue(
            self,
            addr,
            Queued {
                message,
                confirm: None,
            },
        )
    }

    /// Queues a clone of `message` for every connected peer, logging (and skipping) the peers
    /// it could not queue for. Fails only with `Unsupported`, when writing is not enabled.
    #[deprecated(
        since = "0.57.0",
        note = "use Node::connected_addrs with unicast or unicast_fast, which report each peer's error"
    )]
    fn broadcast(&self, message: Self::Message) -> io::Result<()>
    where
        Self::Message: Clone,
    {
        ensure_enabled(self)?;
        for addr in self.node().connected_addrs() {
            if let Err(e) = self.unicast_fast(addr, message.clone()) {
                warn!(parent: self.node().span(), "couldn't broadcast to {addr}: {e}");
            }
        }
        Ok(())
    }
}

fn ensure_enabled<W: Writing>(this: &W) -> io::Result<()> {
    if this
        .node()
        .protocols()
        .writing_enabled
        .load(Ordering::Acquire)
    {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the Writing protocol is not enabled",
        ))
    }
}

/// The send path: find the connection's queue and put the message in it, without waiting.
fn enqueue<W: Writing>(this: &W, addr: SocketAddr, queued: Queued<W::Message>) -> io::Result<()> {
    ensure_enabled(this)?;
    this.node().registry().with_entry(addr, |entry| {
        let entry = entry.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                format!("not connected to {addr}"),
            )
        })?;
        let queue = entry
            .sender
            .as_ref()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotConnected, format!("no writer for {addr}"))
            })?
            .downcast_ref::<mpsc::Sender<Queued<W::Message>>>()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this node's Writing protocol sends a different Message type",
                )
            })?;
        queue.try_send(queued).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!("the outbound queue for {addr} is full"),
            ),
            mpsc::error::TrySendError::Closed(_) => io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("the writer for {addr} has stopped"),
            ),
        })
    })
}

/// The connection's writer task: take everything queued, encode it, write it, confirm it.
async fn write_loop<W: Writing>(
    mut codec: W::Codec,
    mut writer: ConnWriter,
    mut inbox: mpsc::Receiver<Queued<W::Message>>,
    ctx: ConnCtx,
) {
    let _disconnect_when_done = ctx.guard(DisconnectOrigin::Writing, false);
    let timeout = Duration::from_millis(W::TIMEOUT_MS);
    let chunk = W::INITIAL_BUFFER_SIZE.max(1);
    let mut batch = Vec::new();
    let mut confirms = Vec::new();
    let mut buf = BytesMut::new();

    while inbox.recv_many(&mut batch, W::MESSAGE_QUEUE_DEPTH).await != 0 {
        let count = batch.len();
        // taken first, so that every message of a failed batch hears about the failure
        confirms.extend(
            batch
                .iter_mut()
                .filter_map(|q: &mut Queued<W::Message>| q.confirm.take()),
        );
        let written = tokio::time::timeout(
            timeout,
            write_batch(&mut codec, &mut writer, &mut buf, batch.drain(..), chunk),
        )
        .await
        .unwrap_or_else(|_| {
            Heuristics::bump(&ctx.node.heuristics().write_timeouts);
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("writing took longer than {timeout:?}"),
            ))
        });
        batch.clear();

        match written {
            Ok(bytes) => {
                ctx.info.stats().register_sent_messages(count, bytes);
                ctx.node.stats().register_sent_messages(count, bytes);
                for confirm in confirms.drain(..) {
                    let _ = confirm.send(Ok(()));
                }
                // a burst of large messages should not pin a large buffer for good
                if buf.capacity() > 4 * chunk {
                    buf = BytesMut::new();
                }
            }
            Err(e) => {
                debug!(parent: ctx.info.span(), "couldn't write to {}: {e}", ctx.addr());
                for confirm in confirms.drain(..) {
                    let _ = confirm.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                return;
            }
        }
    }
}

/// Encodes and writes one batch; returns the number of bytes written.
async fn write_batch<M, C: Encoder<M, Error = io::Error>>(
    codec: &mut C,
    writer: &mut ConnWriter,
    buf: &mut BytesMut,
    batch: impl Iterator<Item = Queued<M>>,
    chunk: usize,
) -> io::Result<usize> {
    if buf.capacity() == 0 {
        buf.reserve(chunk);
    }
    let mut bytes = 0;
    for queued in batch {
        let before = buf.len();
        codec.encode(queued.message, buf)?;
        bytes += buf.len() - before;
        if buf.len() >= chunk {
            writer.write_all_buf(buf).await?;
        }
    }
    writer.write_all_buf(buf).await?;
    writer.flush().await?;
    Ok(bytes)
}
