use std::{
    collections::VecDeque,
    fmt,
    future::Future,
    io,
    marker::PhantomData,
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use tokio::time::Instant;

use bytes::{Buf, BytesMut};
use tokio::{
    io::AsyncWriteExt,
    sync::{Notify, oneshot},
};
use tokio_util::codec::Encoder;
use tracing::{debug, error, warn};

use super::{
    ConnCtx, WriterParts, WritingSlot, enable,
    own_writes::{self, OwnWrites},
};
use crate::{
    ConnectionSide, DisconnectOrigin, Heuristics, Node, Pea2Pea, ShuttingDown, io::ConnWriter,
    net::WriteHalf, node::registry::lock,
};

type Confirmation = oneshot::Sender<io::Result<()>>;

/// A connection's outbound queue. Senders encode straight into `pending.buf` (so encoding
/// runs on the sender's thread, and a message costs no allocation and no channel hop); the
/// writer task swaps that buffer for an empty one and writes it whole: one batch per wake-up.
///
/// The depth bounds the messages *waiting*; a batch is bounded by bytes. A sender that finds
/// the queue full while the buffer is small takes the waiting messages into the batch in hand
/// (`Pending::held`) instead of writing them at once, so that a burst of small messages goes
/// out in writes of up to the buffer's starting capacity rather than one per `depth` messages.
/// Once the buffer holds `batch_bytes`, the next messages wait unencoded (`Pending::later`)
/// until a buffer empties: the next send after the writer took the batch encodes them (so
/// that encoding stays on the senders' threads while the writer writes), or the writer does
/// as it takes a batch with room left. A burst of large messages then costs no more memory
/// than two batches, and each batch is written soon after it is encoded.
pub(crate) struct Outbox<C, M> {
    pending: Mutex<Pending<C, M>>,
    /// The TCP socket, when the stream is not wrapped: a sender that finds the queue full
    /// writes the batch out itself, without waiting for the writer task (see `write_now`).
    direct: Option<Arc<WriteHalf>>,
    /// Where a direct write is counted.
    ctx: ConnCtx,
    /// Wakes the writer when the first message of a batch arrives or the outbox is stopped.
    ready: Notify,
    /// Wakes the senders waiting for room (`push_when_ready`) when a batch leaves the queue or
    /// the outbox is stopped. Rung only when `Pending::room_wanted` says someone waits, so the
    /// path of a sender that finds room costs nothing more.
    room: Notify,
    depth: usize,
    initial_capacity: usize,
    /// A batch takes messages until it holds this many bytes (so it passes it by less than one
    /// message): `BATCH_GROWTH` times `initial_capacity`.
    batch_bytes: usize,
    /// Part of the type, so that a sender with another message type cannot find this outbox.
    _message: PhantomData<fn(M)>,
}

struct Pending<C, M> {
    codec: C,
    buf: BytesMut,
    /// Messages waiting in `buf`; with those in `later`, the queue is full at `depth`.
    count: usize,
    /// Messages queued after `buf` reached `batch_bytes`, oldest first, not encoded yet: their
    /// bytes follow all of `buf`'s. A send that finds `buf` emptied, or the writer taking a
    /// batch with room left, encodes them (`Outbox::encode_later`).
    later: VecDeque<(M, Option<Confirmation>)>,
    /// Messages in `buf` before the waiting ones, already taken into the batch in hand: a
    /// full queue moved them there (`Outbox::make_room`). They go out with the next write, the
    /// writer task's or a sender's, and no longer count against the depth.
    held: usize,
    confirms: Vec<Confirmation>,
    /// The writer has stopped, or must: nothing more is accepted.
    stopped: bool,
    /// The writer task holds a batch it is writing; nothing may be written before it.
    writing: bool,
    /// Bytes of `buf`'s batch that a direct write already sent (it was cut short).
    pre_written: usize,
    /// A sender waits for room: ring `Outbox::room` when the queue empties.
    room_wanted: bool,
    /// Why the writer stopped, if a write failed: what a sender waiting for room is told
    /// (boxed: it is set once in a connection's life, and the hot fields stay close).
    failure: Option<Box<(io::ErrorKind, String)>>,
}

/// How many times its starting capacity a batch may hold: big enough that a write carries
/// many large messages (fewer system calls), small enough that a connection's two batch buffers
/// stay in cache and are not regrown for each burst (see benches/PROFILE.md, 10->1).
const BATCH_GROWTH: usize = 8;

impl<C, M> Pending<C, M> {
    /// The messages that count against the queue's depth.
    fn waiting(&self) -> usize {
        self.count + self.later.len()
    }

    /// Messages to be written: encoded, held in the batch in hand, or waiting to be encoded.
    fn has_work(&self) -> bool {
        self.count + self.held != 0 || !self.later.is_empty()
    }
}

impl<C, M> Outbox<C, M> {
    fn new(
        codec: C,
        depth: usize,
        initial_capacity: usize,
        writer: &ConnWriter,
        ctx: ConnCtx,
    ) -> Self {
        let pending = Pending {
            codec,
            buf: BytesMut::new(),
            count: 0,
            later: VecDeque::new(),
            held: 0,
            confirms: Vec::new(),
            stopped: false,
            writing: false,
            pre_written: 0,
            room_wanted: false,
            failure: None,
        };
        Self {
            pending: Mutex::new(pending),
            direct: writer.shared_tcp(),
            ctx,
            ready: Notify::new(),
            room: Notify::new(),
            depth,
            initial_capacity,
            batch_bytes: initial_capacity.saturating_mul(BATCH_GROWTH),
            _message: PhantomData,
        }
    }

    /// What identifies this outbox to its reader task (`own_writes`).
    fn address(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>() as usize
    }

    /// Stops the outbox for good; the confirmations of unsent messages see a closed channel.
    fn stop(&self) {
        drop(StopOnDrop(self));
    }

    /// Wakes the senders waiting for room, if any; messages have just left the queue.
    #[inline]
    fn made_room(&self, pending: &mut Pending<C, M>) {
        if std::mem::take(&mut pending.room_wanted) {
            self.room.notify_waiters();
        }
    }
}

impl<C: Encoder<M, Error = io::Error>, M> Outbox<C, M> {
    /// Encodes `message` into the pending batch, or says why it can't (a full queue hands the
    /// message back).
    fn push(&self, message: M, confirm: Option<Confirmation>) -> Result<(), PushError<M>> {
        let mut pending = lock(&self.pending);
        let pending = &mut *pending;
        if pending.stopped {
            return Err(PushError::Stopped);
        }
        if pending.waiting() >= self.depth {
            // the message is refused, as the queue is full; but room is made now rather than
            // when the writer task next runs, so a retry finds it at once
            self.make_room(pending);
            return Err(PushError::Full(message, confirm));
        }
        let was_empty = pending.count == 0;
        if !pending.later.is_empty() && pending.buf.len() < self.batch_bytes {
            // the writer took the batch ahead of the waiting messages: encode them now, on the
            // sender's thread, while the writer writes (as the messages of a batch are)
            let (codec, later) = (&mut pending.codec, &mut pending.later);
            let encoded = self.encode_later(codec, later, &mut pending.buf, &mut pending.confirms);
            match encoded {
                Ok(n) => pending.count += n,
                Err(EncoderPanicked) => return Err(PushError::EncoderPanicked(confirm)),
            }
        }
        if pending.buf.len() >= self.batch_bytes || !pending.later.is_empty() {
            // the batch is full: this one waits, and the writer (rung for the batch) or a
            // later sender encodes it
            pending.later.push_back((message, confirm));
            if was_empty && pending.count != 0 {
                self.ring(); // messages that waited are now a new batch
            }
            return Ok(());
        }
        if pending.buf.capacity() == 0 {
            pending.buf.reserve(self.initial_capacity);
        }
        let before = pending.buf.len();
        // the guard stays alive across a panic here, so the mutex is not poisoned
        match catch_unwind(AssertUnwindSafe(|| {
            pending.codec.encode(message, &mut pending.buf)
        })) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                pending.buf.truncate(before);
                return Err(PushError::Encode(e));
            }
            Err(_) => {
                pending.buf.truncate(before);
                return Err(PushError::EncoderPanicked(confirm));
            }
        }
        pending.count += 1;
        pending.confirms.extend(confirm);
        if was_empty {
            self.ring();
        }
        Ok(())
    }

    /// Tells the writer that a batch has begun. A batch queued by this connection's own reader
    /// task is written when its poll ends (`own_writes`); any other sender rings the writer.
    #[inline]
    fn ring(&self) {
        if !(self.direct.is_some() && own_writes::defer_to_reader(self.address())) {
            self.ready.notify_one();
        }
    }

    /// Like `push`, but a full queue makes it wait (until `deadline`) for the writer to take
    /// the batch, instead of refusing. Nothing is queued until it returns `Ok`, so dropping
    /// it part-way loses nothing that was accepted. (It retries `push`, so that the path of a
    /// sender that finds room stays exactly that of `unicast`.)
    async fn push_when_ready(
        &self,
        mut message: M,
        confirm: Confirmation,
        deadline: Instant,
    ) -> Result<(), PushError<M>> {
        let mut confirm = Some(confirm);
        loop {
            match self.push(message, confirm) {
                Err(PushError::Full(refused, unsent)) => (message, confirm) = (refused, unsent),
                Err(PushError::Stopped) => return Err(PushError::Closed),
                done => return done,
            }
            let room = {
                let mut pending = lock(&self.pending);
                if pending.waiting() < self.depth || pending.stopped {
                    continue; // room was made (or the end came) since the push
                }
                pending.room_wanted = true;
                // made under the lock, so the writer's next `made_room` is sure to wake it
                self.room.notified()
            };
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(PushError::TimedOut);
            }
        }
    }
}

impl<C, M> Outbox<C, M> {
    /// Makes room in a full queue without waiting for the writer task. While the buffer is
    /// less than half full, the waiting messages join the batch in hand (a write of a few KiB
    /// costs the kernel nearly what one of 32 KiB does, and wakes the reader at the other end
    /// as often); past that, the whole buffer is written now (`write_now`). Half, so that the
    /// next `depth` small messages still fit without the buffer growing. Not when a message
    /// in the buffer has a confirmation: its sender may be waiting for the write (as the
    /// waiting sends of a DSL node are), and holding would make it wait for the writer task.
    /// Only for a plain TCP socket with no batch being written: otherwise the writer task owns
    /// the writing, and a full queue waits for it. Nor when messages wait unencoded: the
    /// writer task is at work on a full batch, and the queue waits for it (writing here
    /// instead measured no better for large messages: benches/PROFILE.md, 10->1).
    fn make_room(&self, pending: &mut Pending<C, M>) {
        if self.direct.is_none() || pending.writing || !pending.later.is_empty() {
            return;
        }
        if pending.buf.len() < self.initial_capacity / 2 && pending.confirms.is_empty() {
            pending.held += std::mem::take(&mut pending.count);
            self.made_room(pending);
        } else {
            self.write_now(pending);
        }
    }

    /// Writes the full pending batch straight to the socket, without blocking: what a sender
    /// that finds the queue full does instead of waiting for the writer task to run (much as
    /// `FramedWrite` writes at its buffer limit). Only when no batch is being written, so that
    /// bytes stay in order; a write error is left for the writer task to meet and report.
    fn write_now(&self, pending: &mut Pending<C, M>) {
        let Some(socket) = &self.direct else {
            return;
        };
        if pending.writing {
            return;
        }
        match socket.try_write(&pending.buf) {
            Ok(n) if n == pending.buf.len() => {
                let bytes = n + std::mem::take(&mut pending.pre_written);
                let messages =
                    std::mem::take(&mut pending.count) + std::mem::take(&mut pending.held);
                self.ctx.count_sent(messages, bytes);
                for confirm in pending.confirms.drain(..) {
                    let _ = confirm.send(Ok(()));
                }
                pending.buf.clear();
                self.made_room(pending);
            }
            Ok(n) => {
                pending.buf.advance(n);
                pending.pre_written += n;
            }
            Err(_) => {}
        }
    }
}

impl<C: Send, M: Send> OwnWrites for Outbox<C, M> {
    fn flush_own(&self) {
        let mut pending = lock(&self.pending);
        let pending = &mut *pending;
        // written meanwhile (a full queue's `write_now`), or to be taken by the writer as soon
        // as it is done with the batch it is writing
        if pending.stopped || pending.writing || pending.count + pending.held == 0 {
            return;
        }
        self.write_now(pending);
        if pending.has_work() {
            self.ready.notify_one(); // the socket did not take it all, or more waits unencoded
        }
    }
}

/// An encoder panicked on a message that waited (met by the writer or by a send): the
/// connection is being torn down.
struct EncoderPanicked;

impl<C: Encoder<M, Error = io::Error>, M> Outbox<C, M> {
    /// Encodes messages that waited unencoded (`Pending::later`), oldest first, into `batch`
    /// until it holds `batch_bytes`: the batch the writer has just taken, or the pending one
    /// when a sender finds it emptied. Returns how many it encoded. They were accepted, so an
    /// encoder error loses only its message and says so (its confirmation, a log line,
    /// `Heuristics::encode_failures`); a panic ends the connection, as on the send path.
    fn encode_later(
        &self,
        codec: &mut C,
        later: &mut VecDeque<(M, Option<Confirmation>)>,
        batch: &mut BytesMut,
        confirms: &mut Vec<Confirmation>,
    ) -> Result<usize, EncoderPanicked> {
        let mut encoded = 0;
        if !later.is_empty() && batch.capacity() == 0 {
            batch.reserve(self.initial_capacity);
        }
        while batch.len() < self.batch_bytes {
            let Some((message, confirm)) = later.pop_front() else {
                break;
            };
            let before = batch.len();
            match catch_unwind(AssertUnwindSafe(|| codec.encode(message, batch))) {
                Ok(Ok(())) => {
                    encoded += 1;
                    confirms.extend(confirm);
                }
                Ok(Err(e)) => {
                    batch.truncate(before);
                    self.lost_to_encoder(e, confirm);
                }
                Err(_) => {
                    batch.truncate(before);
                    self.encoder_panicked(confirm);
                    return Err(EncoderPanicked);
                }
            }
        }
        Ok(encoded)
    }
}

impl<C, M> Outbox<C, M> {
    /// Reports a message the writer could not encode: it was accepted, so its loss is told.
    #[cold]
    fn lost_to_encoder(&self, e: io::Error, confirm: Option<Confirmation>) {
        Heuristics::bump(&self.ctx.node.heuristics().encode_failures);
        warn!(parent: self.ctx.info.span(), "a message queued for {} was dropped: encoding it failed: {e}", self.ctx.addr());
        if let Some(confirm) = confirm {
            let _ = confirm.send(Err(e));
        }
    }

    /// An encoder panicked on a message that waited: the connection ends (the writer task
    /// returns, or the sender's `push_failed` stops it), and the message's sender is told.
    #[cold]
    fn encoder_panicked(&self, confirm: Option<Confirmation>) {
        self.ctx.info.record_close_reason("the encoder panicked");
        if let Some(confirm) = confirm {
            let _ = confirm.send(Err(io::Error::other("the encoder panicked")));
        }
    }
}

enum PushError<M> {
    /// `push` found the outbox stopped (the published `BrokenPipe`).
    Stopped,
    /// `push_when_ready` found it stopped, or saw it stop: it says why.
    Closed,
    /// The queue is full: the message (and its confirmation) back.
    Full(M, Option<Confirmation>),
    /// `push_when_ready` found no room before its deadline.
    TimedOut,
    Encode(io::Error),
    EncoderPanicked(Option<Confirmation>),
}

/// Sends messages: [`unicast`](Writing::unicast) and
/// [`unicast_fast`](Writing::unicast_fast) encode a message with the connection's
/// [`Codec`](Writing::Codec) into its outbound buffer, right away and on the caller's thread;
/// the connection's writer task then writes everything that has accumulated in one batch.
///
/// A batch shares one deadline, [`TIMEOUT_MS`](Writing::TIMEOUT_MS), and one outcome. A write
/// error or timeout ends the connection with [`DisconnectOrigin::Writing`]. An encoder error
/// is returned to the sender and nothing is queued; an encoder *panic* ends the connection
/// (origin `Writing`), since the codec's state can no longer be trusted, and the send returns
/// `Ok` with a confirmation that carries the error. (A batch holds a bounded number of bytes;
/// the messages queued behind a full one are encoded by the writer, and their encoder's
/// errors reach their confirmations: see [`INITIAL_BUFFER_SIZE`](Writing::INITIAL_BUFFER_SIZE).)
///
/// ```
/// use std::net::SocketAddr;
///
/// use pea2pea::{Config, ConnectionSide, Node, Pea2Pea, codec::MessageCodec, protocols::*};
/// use tokio::sync::mpsc;
///
/// #[derive(Clone)]
/// struct Peer { node: Node, heard: mpsc::UnboundedSender<String> }
///
/// impl Pea2Pea for Peer {
///     fn node(&self) -> &Node { &self.node }
/// }
///
/// impl Writing for Peer {
///     type Message = String;
///     type Codec = MessageCodec<String>;
///
///     fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
///         MessageCodec::new().max_frame_len(64 * 1024)
///     }
/// }
///
/// impl Reading for Peer {
///     type Message = String;
///     type Codec = MessageCodec<String>;
///
///     fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
///         MessageCodec::new().max_frame_len(64 * 1024)
///     }
///
///     async fn process_message(&self, _source: SocketAddr, message: String) {
///         let _ = self.heard.send(message);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let peer = |heard| Peer { node: Node::new(Config::loopback()), heard };
/// let (tx, mut bob_heard) = mpsc::unbounded_channel();
/// let (alice, bob) = (peer(mpsc::unbounded_channel().0), peer(tx));
/// for p in [&alice, &bob] {
///     p.enable_reading().await;
///     p.enable_writing().await;
/// }
/// let bob_addr = bob.node().toggle_listener().await?.unwrap();
/// alice.node().connect(bob_addr).await?;
///
/// // queued at once; the confirmation resolves when the batch holding it is written
/// let written = alice.unicast(bob_addr, "hello".to_string())?;
/// written.await.expect("the connection dropped the confirmation")?;
/// alice.unicast_fast(bob_addr, "and goodbye".to_string())?; // no confirmation
///
/// assert_eq!(bob_heard.recv().await.as_deref(), Some("hello"));
/// assert_eq!(bob_heard.recv().await.as_deref(), Some("and goodbye"));
/// # alice.node().shut_down().await;
/// # bob.node().shut_down().await;
/// # Ok(())
/// # }
/// ```
pub trait Writing: Pea2Pea
where
    Self: Clone + Send + Sync + 'static,
{
    /// How many messages may wait for a connection's writer (not counting the batch being
    /// written); sending more fails with `QuotaExceeded`. Must not be 0.
    ///
    /// The message that finds the queue full is refused, but it makes room for the next: on
    /// a plain TCP stream with no batch being written, the waiting messages join the batch
    /// in hand while the buffer is under half of
    /// [`INITIAL_BUFFER_SIZE`](Writing::INITIAL_BUFFER_SIZE) and none of them has a
    /// confirmation, and are written at once otherwise; so a burst of small messages sent
    /// with [`unicast_fast`](Writing::unicast_fast) goes out in writes of up to that half.
    const MESSAGE_QUEUE_DEPTH: usize = 64;

    /// The outbound buffer's starting capacity, allocated when the first message is sent; a
    /// batch holds up to 8 times this many bytes (512 KiB by default). Messages queued while
    /// the batch is full wait unencoded, and the writer encodes them into the next batch: so
    /// a burst of large messages holds at most about two batches of encoded bytes (the one
    /// being written and the next), however deep the queue. The buffers grow to fit a batch;
    /// once grown past 4 times this size they are kept while batches keep coming, and released
    /// when none has come for a second.
    ///
    /// An encoder error is returned by the send, except for a message that waited unencoded:
    /// it was already accepted, so its error goes to its confirmation (if it has one), is
    /// logged and counted in [`Heuristics::encode_failures`], and only that message is lost.
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
                        let outbox = Arc::new(Outbox::<_, Self::Message>::new(
                            codec,
                            Self::MESSAGE_QUEUE_DEPTH,
                            Self::INITIAL_BUFFER_SIZE.max(1),
                            &writer,
                            ctx.clone(),
                        ));
                        let task = write_loop::<Self>(outbox.clone(), writer, ctx.clone());
                        Ok(WriterParts {
                            own_writes: outbox.clone(),
                            sender: Box::new(outbox),
                            task: Box::pin(task),
                        })
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
    ///
    /// Called once per connection, after the handshake and before the connection is
    /// registered, and always after [`Reading::codec`](crate::protocols::Reading::codec) when
    /// both protocols are enabled (the order of the published lifecycle), so it may take state
    /// that the reading codec has already read. A panic here fails this connection only.
    fn codec(&self, addr: SocketAddr, side: ConnectionSide) -> Self::Codec;

    /// Queues `message` for `addr` and returns a receiver of its delivery confirmation: `Ok`
    /// once the message was written to the socket (not an acknowledgement from the peer),
    /// the error of its batch if that failed, or a closed channel if the connection was torn
    /// down first.
    ///
    /// Errors at once with `Unsupported` (writing not enabled, or the node shared with a
    /// type whose `Message` differs), `NotConnected`, `QuotaExceeded` (the queue is full),
    /// `BrokenPipe` (the connection's writer has stopped), or the encoder's own error (but a
    /// message queued behind a full batch is encoded later, and its encoder's error comes
    /// through the confirmation: see [`INITIAL_BUFFER_SIZE`](Writing::INITIAL_BUFFER_SIZE)).
    fn unicast(
        &self,
        addr: SocketAddr,
        message: Self::Message,
    ) -> io::Result<oneshot::Receiver<io::Result<()>>> {
        let (confirm, confirmation) = oneshot::channel();
        enqueue(self, &addr, message, Some(confirm))?;
        Ok(confirmation)
    }

    /// Queues `message` for `addr` without a confirmation; the errors are those of
    /// [`unicast`](Writing::unicast).
    fn unicast_fast(&self, addr: SocketAddr, message: Self::Message) -> io::Result<()> {
        enqueue(self, &addr, message, None)
    }

    /// Like [`unicast`](Writing::unicast), but when the connection's queue is full it waits
    /// for room instead of failing with `QuotaExceeded`: the writer task wakes it as soon as
    /// it takes the waiting batch for the socket (no polling, no sleeping). It returns the
    /// same confirmation receiver once the message is queued, so it waits for room only, not
    /// for the write; await the receiver for that.
    ///
    /// Errors: those of `unicast` (`Unsupported`, `NotConnected`, the encoder's error) at
    /// once, but never `QuotaExceeded`; while waiting:
    /// * `TimedOut` when no room was made within [`TIMEOUT_MS`](Writing::TIMEOUT_MS), or when
    ///   the connection's write timed out meanwhile (the peer stopped reading);
    /// * the error of the failed write (`BrokenPipe`, `ConnectionReset`, ...) when a write
    ///   failed meanwhile, and `BrokenPipe` when the connection was torn down meanwhile (it
    ///   returns then, not at its deadline);
    /// * the [`ShuttingDown`](crate::ShuttingDown) error when the connection was torn down
    ///   by the node's shutdown.
    ///
    /// For a shorter deadline, wrap it in `tokio::time::timeout`: until it returns, nothing
    /// is queued, so dropping it loses nothing that was accepted. A sender waiting here does
    /// not hold up `unicast` callers, which keep failing at once while the queue is full.
    ///
    /// ```
    /// # use std::{io, net::SocketAddr, time::Duration};
    /// # use pea2pea::protocols::Writing;
    /// # async fn f<W: Writing<Message = bytes::Bytes>>(node: &W, addr: SocketAddr) -> io::Result<()> {
    /// for i in 0..10_000u32 {
    ///     // never refused for a full queue: each call waits until the writer makes room
    ///     let _written = node.unicast_when_ready(addr, i.to_be_bytes().to_vec().into()).await?;
    /// }
    /// // or with a deadline of your own
    /// let queued = tokio::time::timeout(
    ///     Duration::from_millis(100),
    ///     node.unicast_when_ready(addr, bytes::Bytes::from_static(b"last")),
    /// );
    /// match queued.await {
    ///     Ok(confirmation) => confirmation?.await.map_err(|_| io::ErrorKind::ConnectionAborted)??,
    ///     Err(_elapsed) => println!("{addr} is too slow; the message was not queued"),
    /// }
    /// # Ok(()) }
    /// ```
    fn unicast_when_ready(
        &self,
        addr: SocketAddr,
        message: Self::Message,
    ) -> impl Future<Output = io::Result<oneshot::Receiver<io::Result<()>>>> + Send {
        async move {
            let (confirm, confirmation) = oneshot::channel();
            let deadline = Instant::now() + Duration::from_millis(Self::TIMEOUT_MS);
            let (outbox, conn_id) = find_outbox(self, &addr)?;
            if let Err(e) = outbox.push_when_ready(message, confirm, deadline).await {
                push_failed(self.node(), addr, conn_id, &outbox, e)?;
            }
            Ok(confirmation)
        }
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

/// The send path: find the connection's outbox and encode the message into it, without
/// waiting and without holding the registry's lock while user code (the encoder) runs.
fn enqueue<W: Writing>(
    this: &W,
    addr: &SocketAddr,
    message: W::Message,
    confirm: Option<Confirmation>,
) -> io::Result<()> {
    let (outbox, conn_id) = find_outbox(this, addr)?;
    match outbox.push(message, confirm) {
        Ok(()) => Ok(()),
        Err(e) => push_failed(this.node(), *addr, conn_id, &outbox, e),
    }
}

type OutboxOf<W> = Outbox<<W as Writing>::Codec, <W as Writing>::Message>;

/// The outbox of the connection with `addr`, and the connection's id. (The address is
/// borrowed all the way down: see `Registry::with_entry`.)
#[inline]
fn find_outbox<W: Writing>(this: &W, addr: &SocketAddr) -> io::Result<(Arc<OutboxOf<W>>, u64)> {
    ensure_enabled(this)?;
    this.node().registry().with_entry(addr, |entry| {
        let entry = entry.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                format!("not connected to {addr}"),
            )
        })?;
        let outbox = entry
            .sender
            .as_ref()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotConnected, format!("no writer for {addr}"))
            })?
            .downcast_ref::<Arc<OutboxOf<W>>>()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::Unsupported,
                    "this node's Writing protocol sends a different Message type",
                )
            })?;
        Ok((outbox.clone(), entry.id))
    })
}

/// Turns a failed push into the sender's result (kept off the send path); an encoder panic
/// stops the outbox and tears the connection down, and the send then returns `Ok`.
#[cold]
fn push_failed<C, M>(
    node: &Node,
    addr: SocketAddr,
    conn_id: u64,
    outbox: &Outbox<C, M>,
    failure: PushError<M>,
) -> io::Result<()> {
    match failure {
        PushError::Full(..) => Err(io::Error::new(
            io::ErrorKind::QuotaExceeded,
            QueueFull(addr),
        )),
        PushError::Stopped => Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            format!("the writer for {addr} has stopped"),
        )),
        PushError::Closed => Err(closed_error(node, addr, outbox)),
        PushError::TimedOut => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the outbound queue for {addr} stayed full for the whole write timeout"),
        )),
        PushError::Encode(e) => Err(e),
        PushError::EncoderPanicked(confirm) => {
            error!(parent: node.span(), "the encoder for {addr} panicked; disconnecting");
            if let Some(confirm) = confirm {
                let _ = confirm.send(Err(io::Error::other("the encoder panicked")));
            }
            outbox.stop();
            if let Some(info) = node
                .connection_info(addr)
                .filter(|i| i.id().get() == conn_id)
            {
                info.record_close_reason("the encoder panicked");
            }
            let node = node.clone();
            tokio::spawn(async move {
                node.disconnect_with(addr, DisconnectOrigin::Writing, Some(conn_id))
                    .await;
            });
            Ok(())
        }
    }
}

/// The error of a send refused for a full queue, formatted only when it is displayed: a tight
/// loop of sends meets one per `depth` messages (the refusal that makes room), and formatting
/// the address into a `String` each time was ~2% of the small-message profile.
struct QueueFull(SocketAddr);

impl fmt::Display for QueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the outbound queue for {} is full", self.0)
    }
}

impl fmt::Debug for QueueFull {
    /// As a message string would show, so that the `io::Error`'s `Debug` reads the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl std::error::Error for QueueFull {}

/// What a sender waiting for room is told when the outbox stops: the write failure or the
/// shutdown that stopped it, or else `BrokenPipe` (the connection was torn down).
fn closed_error<C, M>(node: &Node, addr: SocketAddr, outbox: &Outbox<C, M>) -> io::Error {
    if let Some(failure) = &lock(&outbox.pending).failure {
        let (kind, reason) = &**failure;
        return io::Error::new(
            *kind,
            format!("the connection to {addr} failed while waiting for room: {reason}"),
        );
    }
    if node.is_shutting_down() {
        return ShuttingDown::error();
    }
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        format!("the connection to {addr} closed while waiting for room in its queue"),
    )
}

/// How long the writer keeps buffers grown past 4 times their starting capacity once no batch
/// is waiting: long enough to span the pauses within a burst.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// The connection's writer task: wait for a batch, take it whole, write it, confirm it.
async fn write_loop<W: Writing>(
    outbox: Arc<Outbox<W::Codec, W::Message>>,
    mut writer: ConnWriter,
    ctx: ConnCtx,
) {
    let _disconnect_when_done = ctx.guard(DisconnectOrigin::Writing, false);
    let _stop_when_done = StopOnDrop(&outbox);
    let (mut batch, mut confirms) = (BytesMut::new(), Vec::new());
    let timeout = Duration::from_millis(W::TIMEOUT_MS);

    loop {
        let (count, pre_written) = loop {
            {
                let mut guard = lock(&outbox.pending);
                let pending = &mut *guard;
                if pending.stopped {
                    return;
                }
                if pending.has_work() {
                    // the senders carry on filling the (empty) buffer we give back
                    std::mem::swap(&mut pending.buf, &mut batch);
                    std::mem::swap(&mut pending.confirms, &mut confirms);
                    pending.writing = true;
                    let pre_written = std::mem::take(&mut pending.pre_written);
                    let mut count =
                        std::mem::take(&mut pending.count) + std::mem::take(&mut pending.held);
                    let (codec, later) = (&mut pending.codec, &mut pending.later);
                    count += match outbox.encode_later(codec, later, &mut batch, &mut confirms) {
                        Ok(encoded) => encoded,
                        Err(EncoderPanicked) => {
                            error!(parent: ctx.info.span(), "the encoder for {} panicked; disconnecting", ctx.addr());
                            return;
                        }
                    };
                    outbox.made_room(pending);
                    break (count, pre_written);
                }
            }
            if batch.capacity() > 4 * outbox.initial_capacity {
                // a burst of large messages should not pin large buffers for good; but nor
                // should each batch of the burst regrow one from scratch (a reallocation and a
                // copy per doubling, and fresh pages to fault in): they go after a pause
                let next = tokio::time::timeout(RELEASE_AFTER, outbox.ready.notified());
                if next.await.is_err() {
                    batch = BytesMut::new();
                    let mut pending = lock(&outbox.pending);
                    if !pending.has_work() {
                        pending.buf = BytesMut::new();
                    }
                }
            } else {
                outbox.ready.notified().await;
            }
        };

        let written = tokio::time::timeout(timeout, async {
            writer.write_all(&batch).await?;
            writer.flush().await
        })
        .await
        .unwrap_or_else(|_| {
            Heuristics::bump(&ctx.node.heuristics().write_timeouts);
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("writing took longer than {timeout:?}"),
            ))
        });

        lock(&outbox.pending).writing = false;
        match written {
            Ok(()) => {
                ctx.count_sent(count, batch.len() + pre_written);
                for confirm in confirms.drain(..) {
                    let _ = confirm.send(Ok(()));
                }
                batch.clear();
            }
            Err(e) => {
                debug!(parent: ctx.info.span(), "couldn't write to {}: {e}", ctx.addr());
                ctx.info
                    .record_close_reason_with(|| format!("writing to the peer failed: {e}"));
                lock(&outbox.pending).failure = Some(Box::new((e.kind(), e.to_string())));
                for confirm in confirms.drain(..) {
                    let _ = confirm.send(Err(io::Error::new(e.kind(), e.to_string())));
                }
                return;
            }
        }
    }
}

/// Stops the outbox when the writer task ends, however it ends (error, abort, panic), so that
/// senders get `BrokenPipe` instead of filling a queue nobody drains, and those waiting for
/// room wake up to be told.
struct StopOnDrop<'a, C, M>(&'a Outbox<C, M>);

impl<C, M> Drop for StopOnDrop<'_, C, M> {
    fn drop(&mut self) {
        let mut pending = lock(&self.0.pending);
        pending.stopped = true;
        pending.buf = BytesMut::new();
        pending.count = 0;
        pending.held = 0;
        let unencoded = std::mem::take(&mut pending.later);
        pending.room_wanted = false;
        let unsent = std::mem::take(&mut pending.confirms);
        drop(pending);
        drop((unsent, unencoded));
        self.0.ready.notify_one();
        self.0.room.notify_waiters();
    }
}
