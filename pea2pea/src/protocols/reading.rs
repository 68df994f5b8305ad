use std::{
    future::{Future, poll_fn},
    io,
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::pin,
    task::Poll,
    time::Duration,
};

use bytes::BytesMut;
// tokio's clock, not std's: the idle deadline follows the runtime's time, which a simulation
// drives (a deadline on std's clock would never pass there)
use tokio::{
    io::AsyncReadExt,
    sync::mpsc,
    time::{Instant, Sleep},
};
use tokio_util::codec::Decoder;
use tracing::{debug, info, warn};

use super::{ConnCtx, ReadingSlot, enable};
use crate::{
    ConnectionSide, DisconnectOrigin, Heuristics, Pea2Pea, io::ConnReader, stats::ReaderTally,
    task::AbortOnDrop,
};

#[cfg(doc)]
use crate::{Node, Stats};

/// Receives messages: every connection's bytes are decoded with [`Codec`](Reading::Codec) and
/// each message is passed to [`process_message`](Reading::process_message).
///
/// Messages from one connection are processed one at a time, in order; different connections
/// are processed concurrently. Reading starts once the connection is registered, so a message
/// handler can always reply. A decode error, the peer closing, a panic in the codec or handler,
/// or [`IDLE_TIMEOUT_MS`](Reading::IDLE_TIMEOUT_MS) of silence ends the connection with
/// [`DisconnectOrigin::Reading`], and its [close reason](crate::ConnectionInfo::close_reason)
/// says which. A decode error is counted ([`Stats::decode_failures`], of the node and of the
/// connection) and passed to [`on_decode_error`](Reading::on_decode_error) first.
///
/// ```
/// use std::net::SocketAddr;
/// use pea2pea::{ConnectionSide, Node, Pea2Pea, protocols::Reading};
/// use tokio_util::codec::LengthDelimitedCodec;
///
/// #[derive(Clone)]
/// struct Listener { node: Node }
///
/// impl Pea2Pea for Listener {
///     fn node(&self) -> &Node { &self.node }
/// }
///
/// impl Reading for Listener {
///     type Message = bytes::BytesMut;
///     type Codec = LengthDelimitedCodec;
///
///     fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
///         LengthDelimitedCodec::builder().max_frame_length(64 * 1024).new_codec()
///     }
///
///     async fn process_message(&self, source: SocketAddr, message: Self::Message) {
///         println!("{source} sent {} bytes", message.len());
///     }
/// }
/// ```
pub trait Reading: Pea2Pea
where
    Self: Clone + Send + Sync + 'static,
{
    /// How many decoded messages may wait for [`process_message`](Reading::process_message)
    /// when [`BACKPRESSURE`](Reading::BACKPRESSURE) is off. Must not be 0.
    const MESSAGE_QUEUE_DEPTH: usize = 64;

    /// With backpressure (the default), a connection's messages are processed as they are
    /// decoded and nothing more is read from it until the handler returns: a slow handler
    /// slows its sender down through TCP, and no message is ever dropped. Without it, decoded
    /// messages are queued (up to [`MESSAGE_QUEUE_DEPTH`](Reading::MESSAGE_QUEUE_DEPTH)) for
    /// a separate task, and messages that find the queue full are dropped (still counted in
    /// [`Stats`], with a rate-limited warning).
    const BACKPRESSURE: bool = true;

    /// The read buffer's starting capacity, allocated once bytes first arrive. The buffer
    /// grows as frames need; the codec must bound the frame size.
    const INITIAL_BUFFER_SIZE: usize = 64 * 1024;

    /// How long a connection may go without delivering a whole message, in milliseconds, before
    /// it is dropped (counted in [`Heuristics::idle_timeouts`](crate::Heuristics::idle_timeouts)).
    /// Time spent in [`process_message`](Reading::process_message) does not count, and neither
    /// do stray bytes of a frame that never completes. `0` disables it.
    const IDLE_TIMEOUT_MS: u64 = 60_000;

    /// The decoded message.
    type Message: Send;

    /// The decoder that turns the byte stream into messages.
    type Codec: Decoder<Item = Self::Message, Error = io::Error> + Send;

    /// Makes the node read from every connection established from now on.
    ///
    /// # Panics
    ///
    /// If [`MESSAGE_QUEUE_DEPTH`](Reading::MESSAGE_QUEUE_DEPTH) is 0, or reading is already
    /// enabled. Once shutdown has begun, enabling does nothing.
    fn enable_reading(&self) -> impl Future<Output = ()> {
        assert!(
            Self::MESSAGE_QUEUE_DEPTH != 0,
            "Reading::MESSAGE_QUEUE_DEPTH must not be 0"
        );
        let this = self.clone();
        async move {
            let node = this.node().clone();
            enable(
                &node,
                "Reading",
                |p| &p.reading,
                || ReadingSlot {
                    start: Box::new(move |reader, ctx| {
                        let codec =
                            catch_unwind(AssertUnwindSafe(|| this.codec(ctx.addr(), ctx.own_side)))
                                .map_err(|_| io::Error::other("Reading::codec panicked"))?;
                        Ok(Box::pin(read_loop(
                            this.clone(),
                            codec,
                            reader,
                            ctx.clone(),
                        )))
                    }),
                },
            );
        }
    }

    /// Called when the codec returns an error for what `source` sent (the `error`), before
    /// the connection is torn down: the last chance to tell the peer why, for a protocol that
    /// has a way to say so (the DSL's rpc envelope sends a "refused" frame). By then the
    /// failure is counted ([`Stats::decode_failures`]) and the connection's
    /// [close reason](crate::ConnectionInfo::close_reason) says what the codec said. The
    /// connection stays registered until this returns, and nothing more is read from it:
    /// bound any wait here (as by [`Writing::TIMEOUT_MS`](crate::protocols::Writing::TIMEOUT_MS)).
    /// Does nothing by default.
    ///
    /// Never answer a peer's own refusal with one: two such nodes would go on forever.
    fn on_decode_error(
        &self,
        source: SocketAddr,
        error: &io::Error,
    ) -> impl Future<Output = ()> + Send {
        let _ = (source, error);
        async {}
    }

    /// Creates the decoder for a connection; `side` is this node's own role in it.
    ///
    /// Called once per connection, after the handshake and before the connection is
    /// registered, and always before [`Writing::codec`](crate::protocols::Writing::codec) when
    /// both protocols are enabled (the order of the published lifecycle). So state that the
    /// handshake leaves for both codecs can be read here and taken by `Writing::codec`. A panic
    /// here fails this connection only.
    fn codec(&self, addr: SocketAddr, side: ConnectionSide) -> Self::Codec;

    /// Handles one message from `source`.
    fn process_message(
        &self,
        source: SocketAddr,
        message: Self::Message,
    ) -> impl Future<Output = ()> + Send;
}

/// The scratch space for a connection's first read, before it has a read buffer.
const FIRST_READ: usize = 256;

/// The connection's reader task: read, decode, count, deliver, until the connection ends.
async fn read_loop<R: Reading>(this: R, mut codec: R::Codec, mut reader: ConnReader, ctx: ConnCtx) {
    let _disconnect_when_done = ctx.guard(DisconnectOrigin::Reading, false);
    let _tally = ReaderTally::start(ctx.node.stats(), ctx.id, ctx.info.stats());
    let addr = ctx.addr();
    let mut deliver = Delivery::new(&this, addr, &ctx);
    let mut idle = IdleTimer::new(R::IDLE_TIMEOUT_MS);
    let mut buf = BytesMut::new();
    // bytes consumed by the codec since the last message: a frame's bytes are credited to it
    let mut uncredited = 0;

    loop {
        let mut any_message = false;
        loop {
            let before = buf.len();
            let decoded = codec.decode(&mut buf);
            uncredited += before - buf.len();
            match decoded {
                Ok(Some(message)) => {
                    count_received(&ctx, std::mem::take(&mut uncredited));
                    if let Some(message) = deliver.queue(message) {
                        this.process_message(addr, message).await;
                    }
                    any_message = true;
                }
                Ok(None) => break,
                // boxed: the rare path's state stays out of the reader's future
                Err(e) => return Box::pin(decode_failed(&this, &ctx, e)).await,
            }
        }

        // only whole messages count as activity: a peer that drips bytes of a frame it never
        // finishes is idle (and its partial frame is dropped with it)
        if any_message {
            idle.touch();
        }

        if buf.capacity() == 0 {
            // A connection that has sent nothing yet holds no read buffer: its first bytes are
            // read into a small scratch space, and the buffer is made once they are in hand.
            let mut first = [0u8; FIRST_READ];
            match idle.limit(reader.first_read(&mut first)).await {
                Some(Ok(Some(0))) => return peer_closed(&ctx),
                Some(Ok(Some(n))) => {
                    buf.reserve(R::INITIAL_BUFFER_SIZE.max(n));
                    buf.extend_from_slice(&first[..n]);
                    continue;
                }
                Some(Ok(None)) => {} // a wrapped stream: read straight into the buffer
                Some(Err(e)) => return read_failed(&ctx, e),
                None => return idle.expired(&ctx),
            }
        }
        if buf.capacity() == buf.len() {
            buf.reserve(R::INITIAL_BUFFER_SIZE.max(1));
        }
        match idle.limit(reader.read_buf(&mut buf)).await {
            Some(Ok(0)) => {
                peer_closed(&ctx);
                while let Ok(Some(message)) = codec.decode_eof(&mut buf) {
                    count_received(&ctx, std::mem::take(&mut uncredited));
                    if let Some(message) = deliver.queue(message) {
                        this.process_message(addr, message).await;
                    }
                }
                return;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return read_failed(&ctx, e),
            None => return idle.expired(&ctx),
        }
    }
}

/// The codec refused the peer's bytes: the reason is recorded and the failure counted before
/// the hook runs, so that it finds both (and a teardown racing it, the reason).
#[cold]
async fn decode_failed<R: Reading>(this: &R, ctx: &ConnCtx, e: io::Error) {
    let addr = ctx.addr();
    warn!(parent: ctx.info.span(), "invalid data from {addr}: {e}");
    ctx.info
        .record_close_reason_with(|| format!("the peer sent invalid data: {e}"));
    ctx.info.stats().register_decode_failure();
    ctx.node.stats().register_decode_failure();
    this.on_decode_error(addr, &e).await;
}

#[cold]
fn peer_closed(ctx: &ConnCtx) {
    debug!(parent: ctx.info.span(), "{} closed the connection", ctx.addr());
    ctx.info
        .record_close_reason_with(|| "the peer closed the connection".into());
}

#[cold]
fn read_failed(ctx: &ConnCtx, e: io::Error) {
    debug!(parent: ctx.info.span(), "read error from {}: {e}", ctx.addr());
    ctx.info
        .record_close_reason_with(|| format!("reading from the peer failed: {e}"));
}

// inline: `read_loop` is compiled in the user's crate, and a call back into this one per
// message costs more than these two loads and stores
#[inline]
fn count_received(ctx: &ConnCtx, bytes: usize) {
    // the connection's counters have one writer, this task; the node adds them up (its
    // `ReaderTally`), so they count for it too
    ctx.info.stats().register_received_by_reader(bytes);
}

/// Hands decoded messages to the handler: inline with backpressure (the reader awaits
/// `process_message` itself), through a bounded queue to a processing task without it.
enum Delivery<R: Reading> {
    Inline,
    Queued {
        queue: mpsc::Sender<R::Message>,
        _processor: AbortOnDrop<()>,
        dropped: DropLog,
    },
}

impl<R: Reading> Delivery<R> {
    fn new(this: &R, addr: SocketAddr, ctx: &ConnCtx) -> Self {
        if R::BACKPRESSURE {
            return Self::Inline;
        }
        let (queue, mut inbox) = mpsc::channel(R::MESSAGE_QUEUE_DEPTH);
        let this = this.clone();
        // a panic in the handler must end the connection, as it does inline
        let guard = ctx.guard(DisconnectOrigin::Reading, true);
        let processor = tokio::spawn(async move {
            let _guard = guard;
            while let Some(message) = inbox.recv().await {
                this.process_message(addr, message).await;
            }
        });
        Self::Queued {
            queue,
            _processor: AbortOnDrop(processor),
            dropped: DropLog::new(ctx),
        }
    }

    /// Queues `message` for the processing task, or hands it back to be processed inline.
    /// (Not an async fn that awaits the handler: the reader's own future holds the handler's,
    /// and the message moves into it once, not through a future of this function's too.)
    #[inline]
    fn queue(&mut self, message: R::Message) -> Option<R::Message> {
        match self {
            Self::Inline => Some(message),
            Self::Queued { queue, dropped, .. } => {
                if queue.try_send(message).is_err() {
                    dropped.record();
                }
                None
            }
        }
    }
}

/// Rate-limits the warning about messages dropped for want of queue space.
struct DropLog {
    span: tracing::Span,
    since_last_log: usize,
    last_log: Option<Instant>,
}

impl DropLog {
    const EVERY: Duration = Duration::from_secs(1);

    fn new(ctx: &ConnCtx) -> Self {
        Self {
            span: ctx.info.span().clone(),
            since_last_log: 0,
            last_log: None,
        }
    }

    fn record(&mut self) {
        self.since_last_log += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= Self::EVERY) {
            warn!(parent: &self.span, "the inbound queue is full; dropped {} message(s)", self.since_last_log);
            self.since_last_log = 0;
            self.last_log = Some(Instant::now());
        }
    }
}

/// The idle timeout, armed lazily: one timer per connection that is only re-armed when it
/// fires early, instead of one timer per read.
struct IdleTimer {
    limit: Option<Duration>,
    last_activity: Instant,
    sleep: Option<std::pin::Pin<Box<Sleep>>>,
}

impl IdleTimer {
    fn new(limit_ms: u64) -> Self {
        let limit = (limit_ms != 0).then(|| Duration::from_millis(limit_ms));
        Self {
            limit,
            last_activity: Instant::now(),
            sleep: None,
        }
    }

    /// Runs `io` unless the connection has been idle for the limit first (`None`).
    async fn limit<T>(&mut self, io: impl Future<Output = io::Result<T>>) -> Option<io::Result<T>> {
        let Some(limit) = self.limit else {
            return Some(io.await);
        };
        let mut io = pin!(io);
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(self.last_activity + limit)));
        poll_fn(|cx| {
            if let Poll::Ready(out) = io.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            while sleep.as_mut().poll(cx).is_ready() {
                let deadline = self.last_activity + limit;
                if Instant::now() >= deadline {
                    return Poll::Ready(None);
                }
                sleep.as_mut().reset(deadline);
            }
            Poll::Pending
        })
        .await
    }

    /// Restarts the idle period (a message has arrived).
    fn touch(&mut self) {
        self.last_activity = Instant::now();
    }

    fn expired(&self, ctx: &ConnCtx) {
        Heuristics::bump(&ctx.node.heuristics().idle_timeouts);
        let limit = self.limit.unwrap_or_default();
        info!(parent: ctx.info.span(), "{} was idle for longer than {limit:?}", ctx.addr());
        ctx.info.record_close_reason_with(|| {
            format!("no message came for {limit:?} (the idle timeout)")
        });
    }
}
