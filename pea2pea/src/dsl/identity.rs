//! Whom a connection leads to: the peer's listening address and name, learnt in the DSL
//! handshake; which of two connections between the same pair of nodes is kept; and
//! `connect_if_needed`, which reuses a connection in either direction.
//!
//! The tie-break: of two connections between the same two nodes, the one dialled by the node
//! whose advertised listening address is lower is kept. Each side decides in its handshake
//! (under its table's lock) and the two verdicts are exchanged, so a connection is kept only
//! if both sides keep it.

use std::{
    cmp::Ordering,
    collections::BTreeMap,
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

use super::ext::{self, lock};
use crate::{ConnectionId, ConnectionSide, Node};

/// Who is at the other end of a connection, as its DSL handshake said: what
/// [`peer_identity`](crate::dsl::peer_identity) returns (the [module's example](crate::dsl)
/// reads it in an rpc handler).
///
/// ```
/// use pea2pea::{Config, Message, Node, Pea2Pea, dsl, protocol};
///
/// #[derive(Message, Debug)]
/// enum Chat {
///     Say(String),
/// }
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Peer {
///     node: Node,
/// }
///
/// protocol! {
///     Peer speaks Chat {
///         handshake = fingerprint,
///         on Chat::Say(text) => println!("{text}"),
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let peer = |name: &str| Peer {
///     node: Node::new(Config { name: Some(name.into()), ..Config::loopback() }),
/// };
/// let (alice, bob) = (peer("alice"), peer("bob"));
/// alice.start().await?;
/// let bob_addr = bob.start().await?;
/// let conn = alice.connect_if_needed(bob_addr).await?;
///
/// let who = dsl::peer_identity(alice.node(), conn).expect("a DSL handshake took place");
/// assert_eq!(who.name(), "bob");
/// assert_eq!(who.listening_addr(), Some(bob_addr));
///
/// alice.node().shut_down().await;
/// bob.node().shut_down().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    listening: Option<SocketAddr>,
    name: String,
}

impl PeerIdentity {
    pub(crate) fn new(listening: Option<SocketAddr>, name: String) -> Self {
        Self { listening, name }
    }

    /// The address the peer listens on, dialable from this node (an unspecified IP it
    /// advertised, as `0.0.0.0`, is replaced by the IP its connection comes from); `None` for a
    /// peer that does not listen.
    pub fn listening_addr(&self) -> Option<SocketAddr> {
        self.listening
    }

    /// The peer's node name ([`Node::name`]).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What the handshake learnt about one connection.
struct Known {
    id: ConnectionId,
    peer: PeerIdentity,
    /// The method ids of the rpcs the peer serves, if its hello said.
    served: Option<Vec<u64>>,
    /// Whether the side that advertised the lower address dialled it (`None` when either
    /// side advertised none, or both the same).
    dialled_by_lower: Option<bool>,
    /// Both sides kept it, and its handshake returned.
    settled: bool,
    /// A connection dialled by the lower side came while this one was in its handshake: this
    /// one is dropped at the end of it.
    doomed: bool,
}

/// Ordered maps: which rival a search finds first must not depend on a per-process hash
/// seed (a simulated run depends on its seed alone).
#[derive(Default)]
struct Inner {
    /// By the connection's address (its key in the node).
    known: BTreeMap<SocketAddr, Known>,
    /// Listening addresses this node is dialling, with how many dials to each.
    dialling: BTreeMap<SocketAddr, usize>,
}

/// The identity table of one node.
#[derive(Default)]
pub(crate) struct Identities {
    inner: Mutex<Inner>,
    /// Rung whenever an entry settles or a dial ends.
    changed: Notify,
}

/// This side's verdict on a connection, in the handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    Keep,
    /// Another connection to the same peer wins, for this reason.
    Drop(&'static str),
}

/// A connection whose hello was just exchanged.
pub(crate) struct Arrival {
    pub(crate) addr: SocketAddr,
    pub(crate) id: ConnectionId,
    /// This node's role in it.
    pub(crate) side: ConnectionSide,
    pub(crate) peer: PeerIdentity,
    /// The method ids of the rpcs the peer serves, if its hello said.
    pub(crate) served: Option<Vec<u64>>,
    /// The listening addresses both sides advertised (as sent), for the tie-break.
    pub(crate) ours_advertised: Option<SocketAddr>,
    pub(crate) theirs_advertised: Option<SocketAddr>,
}

impl Arrival {
    /// Whether this connection was dialled by the side that advertised the lower address.
    fn dialled_by_lower(&self) -> Option<bool> {
        let (ours, theirs) = (self.ours_advertised?, self.theirs_advertised?);
        let we_are_lower = match ours.cmp(&theirs) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => return None,
        };
        let we_dialled = self.side == ConnectionSide::Initiator;
        Some(we_dialled == we_are_lower)
    }
}

/// Whether the connection `id` with `addr` is still there: in its setup or registered.
fn live(node: &Node, addr: SocketAddr, id: ConnectionId) -> bool {
    // in this order: a setup moves to the registered set atomically, so it is seen in one
    node.is_connecting(addr) || registered(node, addr, id)
}

fn registered(node: &Node, addr: SocketAddr, id: ConnectionId) -> bool {
    node.connection_info(addr)
        .is_some_and(|info| info.id() == id)
}

/// Decides on a connection whose hello was just exchanged, and records it (unless dropped).
pub(crate) fn judge(node: &Node, arrival: Arrival) -> Verdict {
    let ext = ext::of(node);
    let mut guard = lock(&ext.identities.inner);
    let inner = &mut *guard;
    inner
        .known
        .retain(|addr, known| live(node, *addr, known.id));
    let by_lower = arrival.dialled_by_lower();
    let verdict = match arrival.peer.listening {
        None => Verdict::Keep, // nobody can dial it: no duplicates
        Some(listening) => {
            let rival = inner.known.iter_mut().find(|(addr, known)| {
                **addr != arrival.addr && known.peer.listening == Some(listening)
            });
            match rival {
                // a connection dialled by the lower side beats one still in its handshake
                Some((_, rival))
                    if by_lower == Some(true)
                        && rival.dialled_by_lower == Some(false)
                        && !rival.settled =>
                {
                    rival.doomed = true;
                    Verdict::Keep
                }
                Some(_) => Verdict::Drop("this node is already connected to it"),
                // the lower side is dialling the higher one: its own dial will be kept
                None if by_lower == Some(false)
                    && arrival.side == ConnectionSide::Responder
                    && inner.dialling.contains_key(&listening) =>
                {
                    Verdict::Drop("this node is dialling it too, and its dial is kept")
                }
                None => Verdict::Keep,
            }
        }
    };
    if verdict == Verdict::Keep {
        inner.known.insert(
            arrival.addr,
            Known {
                id: arrival.id,
                peer: arrival.peer,
                served: arrival.served,
                dialled_by_lower: by_lower,
                settled: false,
                doomed: false,
            },
        );
    }
    verdict
}

/// Ends the handshake's part: `kept` says whether both sides kept the connection. Returns
/// `false` if it is to be dropped after all (doomed meanwhile, or refused by the peer).
pub(crate) fn settle(node: &Node, addr: SocketAddr, id: ConnectionId, kept: bool) -> bool {
    let ext = ext::of(node);
    let mut inner = lock(&ext.identities.inner);
    let ours = inner.known.get_mut(&addr).filter(|known| known.id == id);
    let kept = match ours {
        Some(known) if kept && !known.doomed => {
            known.settled = true;
            true
        }
        Some(_) => {
            inner.known.remove(&addr);
            false
        }
        None => false,
    };
    drop(inner);
    ext.identities.changed.notify_waiters();
    kept
}

/// The identity of the peer at `addr` (a connection's address, as a handler's `from` gives).
pub(crate) fn of_peer(node: &Node, addr: SocketAddr) -> Option<PeerIdentity> {
    let ext = ext::existing(node)?;
    let id = node.connection_info(addr)?.id();
    let inner = lock(&ext.identities.inner);
    let known = inner.known.get(&addr).filter(|known| known.id == id)?;
    Some(known.peer.clone())
}

/// Whether the peer at `addr` serves the rpc `method`: `None` if its handshake did not say
/// (no DSL handshake, or a hello without a description).
pub(crate) fn serves(node: &Node, addr: SocketAddr, method: u64) -> Option<bool> {
    let ext = ext::existing(node)?;
    let id = node.connection_info(addr)?.id();
    let inner = lock(&ext.identities.inner);
    let known = inner.known.get(&addr).filter(|known| known.id == id)?;
    Some(known.served.as_ref()?.contains(&method))
}

/// Counts a dial to `listening` while it runs.
pub(crate) struct Dialling {
    ext: Arc<ext::NodeExt>,
    listening: SocketAddr,
}

impl Dialling {
    /// Records a dial to `listening` until the returned guard drops.
    pub(crate) fn start(node: &Node, listening: SocketAddr) -> Self {
        let ext = ext::of(node);
        *lock(&ext.identities.inner)
            .dialling
            .entry(listening)
            .or_default() += 1;
        Self { ext, listening }
    }
}

impl Drop for Dialling {
    fn drop(&mut self) {
        let mut inner = lock(&self.ext.identities.inner);
        if let Some(count) = inner.dialling.get_mut(&self.listening) {
            *count -= 1;
            if *count == 0 {
                inner.dialling.remove(&self.listening);
            }
        }
        drop(inner);
        self.ext.identities.changed.notify_waiters();
    }
}

/// What `connect_if_needed` found for a listening address.
enum Found {
    /// A registered connection: its address.
    Ready(SocketAddr),
    /// A connection on its way (in a handshake, or settled but not registered yet), or
    /// another dial to it: wait.
    Coming,
    Nothing,
}

fn find(node: &Node, inner: &Inner, listening: SocketAddr) -> Found {
    if node.is_connected(listening) {
        return Found::Ready(listening);
    }
    let known = inner.known.iter().find(|(addr, known)| {
        known.peer.listening == Some(listening) && live(node, **addr, known.id)
    });
    match known {
        Some((addr, known)) if known.settled && registered(node, *addr, known.id) => {
            Found::Ready(*addr)
        }
        Some(_) => Found::Coming,
        None if inner.dialling.contains_key(&listening) || node.is_connecting(listening) => {
            Found::Coming
        }
        None => Found::Nothing,
    }
}

/// Returns the address of a connection to the node listening at `listening`, in either
/// direction, dialling it only if there is none and none is on its way; waits for at most
/// twice a dial's time (the connection timeout and `handshake_ms`), time for a dial dropped
/// as a duplicate and the peer's own dial.
pub async fn connect_if_needed(
    node: &Node,
    listening: SocketAddr,
    handshake_ms: u64,
) -> io::Result<SocketAddr> {
    let dial_ms = u64::from(node.config().connection_timeout_ms) + handshake_ms;
    let timeout = Duration::from_millis(2 * dial_ms);
    let deadline = Instant::now() + timeout;
    let ext = ext::of(node);
    loop {
        let changed = ext.identities.changed.notified();
        let found = {
            let mut inner = lock(&ext.identities.inner);
            let found = find(node, &inner, listening);
            if let Found::Nothing = found {
                *inner.dialling.entry(listening).or_default() += 1;
            }
            found
        };
        match found {
            Found::Ready(addr) => return Ok(addr),
            Found::Coming => {
                // a settled connection is registered right after its handshake: look again
                // soon even if nothing rings
                let soon = (Instant::now() + Duration::from_millis(5)).min(deadline);
                tokio::select! {
                    biased;
                    () = changed => {}
                    () = tokio::time::sleep_until(soon) => {}
                }
            }
            Found::Nothing => {
                let _dialling = Dialling {
                    ext: ext.clone(),
                    listening,
                };
                match tokio::time::timeout_at(deadline, node.connect(listening)).await {
                    Ok(Ok(())) => return Ok(listening),
                    // connected or connecting meanwhile, or dropped for a connection the
                    // peer dialled: look again
                    Ok(Err(e)) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => break,
                }
            }
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no connection to {listening} within {timeout:?}"),
    ))
}
