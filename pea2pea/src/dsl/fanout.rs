//! `send_to_many`: one message to many peers, what to do with a peer whose outbound queue is
//! full ([`WhenFull`]), and what happened at each peer ([`SendReport`]).

use std::{
    future::{Future, poll_fn},
    io,
    net::SocketAddr,
    sync::atomic::Ordering,
    task::Poll,
};

use super::ext;
use crate::{Message, codec::Encoded, protocols::Writing};

/// What the generated `send_to_many_with` does with a peer whose outbound queue is full
/// (its `write_queue` messages are waiting for the socket: the peer reads slower than the
/// node sends). The message is queued for every other peer first, so a full peer never
/// delays the others' copy of this message; the policy says what happens to its own.
///
/// ```
/// # use pea2pea::dsl::WhenFull;
/// assert_eq!(WhenFull::default(), WhenFull::Wait);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WhenFull {
    /// Wait for room in that peer's queue, for at most the protocol's `write_timeout`, then
    /// queue the message ([`SendOutcome::Queued`]) or report why not
    /// ([`SendOutcome::Failed`]; `TimedOut` after the write timeout). A peer that keeps up
    /// never loses a message, and the slowest peer sets the sender's pace: the call returns
    /// once every full peer has room. Several full peers are waited for at the same time.
    #[default]
    Wait,
    /// Skip that peer for this message ([`SendOutcome::Dropped`]), and count it in
    /// [`dsl::messages_dropped`](super::messages_dropped). The call never waits; a peer that
    /// falls behind misses messages, which the caller sees in the report.
    Drop,
    /// Disconnect that peer ([`SendOutcome::Disconnected`]; origin `User`, with its
    /// `on_disconnect`), and count it in
    /// [`dsl::slow_peers_disconnected`](super::slow_peers_disconnected). The call waits for
    /// the teardowns, which run concurrently. Raise `write_queue` to tolerate short stalls.
    Disconnect,
}

/// What happened to one peer's copy of a message sent with `send_to_many`.
///
/// ```
/// use std::io;
///
/// use pea2pea::{Config, Message, Node, Pea2Pea, dsl::SendOutcome, protocol};
///
/// #[derive(Message, Debug)]
/// struct Note(String);
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Peer {
///     node: Node,
/// }
///
/// protocol! {
///     Peer speaks Note {
///         on Note(text) => println!("{text}"),
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let peer = Peer { node: Node::new(Config::loopback()) };
/// peer.enable_protocols().await;
/// let nobody = "127.0.0.1:9".parse().unwrap();
/// let report = peer.send_to_many([nobody], &Note("hi".into())).await;
///
/// let outcome = report.get(nobody).unwrap();
/// assert!(!outcome.is_queued());
/// assert!(matches!(outcome, SendOutcome::Failed(e) if e.kind() == io::ErrorKind::NotConnected));
/// peer.node().shut_down().await;
/// # }
/// ```
#[derive(Debug)]
pub enum SendOutcome {
    /// Queued for the socket: it will be written unless the connection fails first (which
    /// ends the connection). Like `send_fast`, this does not wait for the write.
    Queued,
    /// Not sent: the peer's queue was full and the policy was [`WhenFull::Drop`].
    Dropped,
    /// Not sent: the peer's queue was full and the policy was [`WhenFull::Disconnect`], so the
    /// peer was disconnected.
    Disconnected,
    /// Not sent, for this reason: `NotConnected` (no such peer), `TimedOut` (it stayed full
    /// for the whole write timeout under [`WhenFull::Wait`]), the connection's failure, or
    /// the encoder's error.
    Failed(io::Error),
}

impl SendOutcome {
    /// Whether the message was queued for this peer.
    pub fn is_queued(&self) -> bool {
        matches!(self, Self::Queued)
    }
}

/// What `send_to_many` did for each peer, in the order the peers were given.
///
/// ```
/// # use pea2pea::dsl::{SendOutcome, SendReport};
/// # fn f(report: SendReport) {
/// if !report.all_queued() {
///     for (peer, outcome) in report.iter() {
///         if let SendOutcome::Failed(e) = outcome {
///             eprintln!("couldn't send to {peer}: {e}");
///         }
///     }
/// }
/// # }
/// ```
#[derive(Debug, Default)]
pub struct SendReport {
    outcomes: Vec<(SocketAddr, SendOutcome)>,
}

impl SendReport {
    /// Every peer with its outcome.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &SendOutcome)> {
        self.outcomes.iter().map(|(addr, outcome)| (*addr, outcome))
    }

    /// The outcome for `addr`, if it was one of the peers.
    pub fn get(&self, addr: SocketAddr) -> Option<&SendOutcome> {
        self.iter().find(|(a, _)| *a == addr).map(|(_, o)| o)
    }

    /// Whether the message was queued for every peer.
    pub fn all_queued(&self) -> bool {
        self.outcomes.iter().all(|(_, o)| o.is_queued())
    }

    /// How many peers it was queued for.
    pub fn queued(&self) -> usize {
        self.count(|o| matches!(o, SendOutcome::Queued))
    }

    /// How many peers missed it under [`WhenFull::Drop`].
    pub fn dropped(&self) -> usize {
        self.count(|o| matches!(o, SendOutcome::Dropped))
    }

    /// How many peers were disconnected under [`WhenFull::Disconnect`].
    pub fn disconnected(&self) -> usize {
        self.count(|o| matches!(o, SendOutcome::Disconnected))
    }

    /// The peers it could not be sent to, with why.
    pub fn failures(&self) -> impl Iterator<Item = (SocketAddr, &io::Error)> {
        self.iter().filter_map(|(addr, outcome)| match outcome {
            SendOutcome::Failed(e) => Some((addr, e)),
            _ => None,
        })
    }

    /// The number of peers.
    pub fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// Whether there were no peers.
    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    fn count(&self, f: impl Fn(&SendOutcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| f(o)).count()
    }
}

impl IntoIterator for SendReport {
    type Item = (SocketAddr, SendOutcome);
    type IntoIter = std::vec::IntoIter<(SocketAddr, SendOutcome)>;

    fn into_iter(self) -> Self::IntoIter {
        self.outcomes.into_iter()
    }
}

/// Encodes `message` once and sends the same bytes to every address.
pub async fn send_to_many_encoded<W, M>(
    this: &W,
    addrs: impl IntoIterator<Item = SocketAddr>,
    message: &M,
    when_full: WhenFull,
) -> SendReport
where
    W: Writing,
    W::Message: From<Encoded<M>>,
    M: Message,
{
    let encoded = Encoded::new(message);
    fan_out(this, addrs, || encoded.clone().into(), when_full).await
}

/// Sends a clone of `message` to every address (a user codec encodes each one itself).
pub async fn send_to_many_cloned<W, M>(
    this: &W,
    addrs: impl IntoIterator<Item = SocketAddr>,
    message: &M,
    when_full: WhenFull,
) -> SendReport
where
    W: Writing,
    W::Message: From<M>,
    M: Clone,
{
    fan_out(this, addrs, || message.clone().into(), when_full).await
}

/// Queues a message made by `make` for every peer that has room, then applies `when_full` to
/// the others, all at once.
async fn fan_out<W: Writing>(
    this: &W,
    addrs: impl IntoIterator<Item = SocketAddr>,
    make: impl Fn() -> W::Message,
    when_full: WhenFull,
) -> SendReport {
    let mut full = Vec::new();
    let outcomes = addrs
        .into_iter()
        .enumerate()
        .map(|(i, addr)| match this.unicast_fast(addr, make()) {
            Ok(()) => (addr, SendOutcome::Queued),
            Err(e) if e.kind() == io::ErrorKind::QuotaExceeded => {
                full.push(i);
                (addr, SendOutcome::Dropped) // settled below
            }
            Err(e) => (addr, SendOutcome::Failed(e)),
        })
        .collect();
    let mut report = SendReport { outcomes };
    if full.is_empty() {
        return report;
    }
    let addr_of = |i: usize| report.outcomes[i].0;
    // the waits and teardowns run at the same time, in this task
    let settled = match when_full {
        WhenFull::Drop => {
            let ext = ext::of(this.node());
            let dropped = full.len() as u64;
            ext.messages_dropped.fetch_add(dropped, Ordering::Relaxed);
            return report; // already marked `Dropped`
        }
        WhenFull::Wait => {
            let waits = full.iter().map(|&i| {
                let (addr, message) = (addr_of(i), make());
                async move {
                    match this.unicast_when_ready(addr, message).await {
                        Ok(_written) => SendOutcome::Queued,
                        Err(e) => SendOutcome::Failed(e),
                    }
                }
            });
            join_all(waits).await
        }
        WhenFull::Disconnect => {
            let teardowns = full.iter().map(|&i| disconnect_laggard(this, addr_of(i)));
            join_all(teardowns).await
        }
    };
    for (i, outcome) in full.into_iter().zip(settled) {
        report.outcomes[i].1 = outcome;
    }
    report
}

/// Disconnects the peer at `addr`, whose queue was full, and counts it.
async fn disconnect_laggard<W: Writing>(this: &W, addr: SocketAddr) -> SendOutcome {
    let node = this.node();
    let Some(info) = node.connection_info(addr) else {
        return SendOutcome::Failed(io::Error::new(
            io::ErrorKind::NotConnected,
            format!("not connected to {addr}"),
        ));
    };
    info.record_close_reason("its outbound queue was full (WhenFull::Disconnect)");
    if node.disconnect_connection(addr, info.id()).await {
        let ext = ext::of(node);
        ext.slow_peers_disconnected.fetch_add(1, Ordering::Relaxed);
    }
    SendOutcome::Disconnected
}

/// Runs `futures` at the same time in the calling task and returns their outputs in order:
/// a few waits at once, with no task to spawn and nothing to clone for one.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut running: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut done = true;
        for (slot, output) in running.iter_mut().zip(&mut outputs) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => {
                        *output = Some(out);
                        *slot = None;
                    }
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
