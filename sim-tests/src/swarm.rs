//! A gossip swarm made for a network that fails: the flood of `examples/swarm.rs` (a node
//! passes each rumour it hears for the first time to every other peer), plus what it takes to
//! recover from partitions and crashes:
//!
//! * every node pings its peers each [`MAINTENANCE`] period, and a link silent for
//!   [`IDLE`] is dropped (the simulated TCP does not retransmit, so a link that lost data in a
//!   partition never delivers again: only the idle timeout ends it);
//! * each node dials the peers of its [`Swarm`] links again whenever they are not connected;
//! * on every new connection both sides send each other every rumour they know, so what one
//!   side of a partition heard reaches the other after the repair.
//!
//! Node `i` runs on host `nNN` and listens on [`PORT`]; it dials `i + stride` (mod n) for each
//! stride, so each link has one dialer.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    ops::Range,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use pea2pea::{Config, DisconnectOrigin, Message, Node, Pea2Pea, dsl::WhenFull, protocol};
use turmoil::Sim;

use crate::{Trace, builder, step_for, step_until};

/// The port every node listens on (each host has its own address).
pub const PORT: u16 = 7000;
/// How often a node pings its peers, redials, and starts the rumours it was asked to.
pub const MAINTENANCE: Duration = Duration::from_millis(250);
/// How long a link may stay silent before it is dropped (`idle_timeout` below).
pub const IDLE: Duration = Duration::from_secs(2);

#[derive(Message, Debug)]
pub enum Gossip {
    Rumour(u32),
    /// Keeps a healthy link from looking idle.
    Ping,
}

#[pea2pea::node]
#[derive(Clone)]
pub struct Gossiper {
    node: Node,
    index: usize,
    swarm: Arc<Swarm>,
}

protocol! {
    Gossiper speaks Gossip over length_delimited(max_frame = 1 KiB) {
        handshake = fingerprint,
        idle_timeout = 2 s,
        write_timeout = 2 s,
        // a resync sends every rumour at once; a run spreads far fewer than this
        write_queue = 1024,
        on Gossip::Rumour(id) from peer => self.hear(id, Some(peer)).await,
        on Gossip::Ping => {},
        on_connect(addr) => self.resync(addr),
        on_disconnect(addr, origin) => self.lost(addr, origin),
    }
}

/// What one node has seen in its current life (a restart starts it afresh).
#[derive(Default)]
pub struct Seen {
    /// The node's handle, to read its connections from the test.
    pub node: Option<Node>,
    pub heard: BTreeSet<u32>,
    /// Each `on_disconnect`: the peer's index and the origin.
    pub disconnects: Vec<(usize, DisconnectOrigin)>,
    /// Rumours the test asked this node to start (at its next maintenance tick).
    to_start: Vec<u32>,
}

/// What the hosts share with the test.
pub struct Swarm {
    ips: Vec<IpAddr>,
    /// `dials[i]`: the nodes that node `i` dials.
    dials: Vec<Vec<usize>>,
    seen: Vec<Mutex<Seen>>,
    pub trace: Trace,
    /// Dials that failed (each is retried at the next maintenance tick).
    pub failed_dials: AtomicU64,
    /// Rumour messages queued, resyncs included.
    pub rumours_sent: AtomicU64,
}

impl Swarm {
    /// Adds `n` nodes to `sim`, node `i` dialling `i + s` (mod `n`) for each stride `s`.
    pub fn launch(sim: &mut Sim<'_>, n: usize, strides: &[usize]) -> Arc<Self> {
        let ips = (0..n).map(|i| sim.lookup(name(i))).collect();
        let dials = (0..n)
            .map(|i| strides.iter().map(|s| (i + s) % n).collect())
            .collect();
        let swarm = Arc::new(Self {
            ips,
            dials,
            seen: (0..n).map(|_| Default::default()).collect(),
            trace: Trace::default(),
            failed_dials: AtomicU64::new(0),
            rumours_sent: AtomicU64::new(0),
        });
        for i in 0..n {
            let swarm = swarm.clone();
            sim.host(name(i), move || run(swarm.clone(), i));
        }
        swarm
    }

    pub fn len(&self) -> usize {
        self.ips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    pub fn name(&self, i: usize) -> String {
        name(i)
    }

    pub fn seen(&self, i: usize) -> MutexGuard<'_, Seen> {
        self.seen[i].lock().unwrap()
    }

    /// Asks node `i` to start rumour `id`.
    pub fn start_rumour(&self, i: usize, id: u32) {
        self.seen(i).to_start.push(id);
    }

    /// Whether every node in `nodes` has heard every rumour in `ids`.
    pub fn all_heard(&self, nodes: impl IntoIterator<Item = usize>, ids: &BTreeSet<u32>) -> bool {
        nodes
            .into_iter()
            .all(|i| self.seen(i).heard.is_superset(ids))
    }

    /// The links of node `i` (those it dials and those that dial it).
    pub fn degree(&self, i: usize) -> usize {
        self.dials[i].len() + self.dials.iter().filter(|d| d.contains(&i)).count()
    }

    /// How many connections node `i` has now.
    pub fn connected(&self, i: usize) -> usize {
        self.seen(i).node.as_ref().map_or(0, Node::num_connected)
    }

    /// Whether every node has all its links up (and no more).
    pub fn all_links_up(&self) -> bool {
        (0..self.len()).all(|i| self.connected(i) == self.degree(i))
    }

    /// The connections between a node in `side` and one outside it.
    pub fn links_across(&self, side: &Range<usize>) -> usize {
        side.clone()
            .flat_map(|i| self.seen(i).node.as_ref().map(Node::connected_addrs))
            .flatten()
            .filter(|peer| !side.contains(&self.index_of(peer.ip())))
            .count()
    }

    fn index_of(&self, ip: IpAddr) -> usize {
        self.ips
            .iter()
            .position(|&a| a == ip)
            .expect("a peer outside the swarm")
    }

    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.ips[i], PORT)
    }
}

pub fn name(i: usize) -> String {
    format!("n{i:02}")
}

/// The software of node `i`'s host: a fresh node each time the host (re)starts.
async fn run(swarm: Arc<Swarm>, i: usize) -> turmoil::Result {
    let config = Config {
        name: Some(name(i)),
        listener_addr: Some((Ipv4Addr::UNSPECIFIED, PORT).into()),
        ..Default::default()
    };
    let gossiper = Gossiper {
        node: Node::new(config),
        index: i,
        swarm: swarm.clone(),
    };
    // a new life: whatever the node saw before a crash is gone
    *swarm.seen(i) = Seen {
        node: Some(gossiper.node().clone()),
        ..Default::default()
    };
    gossiper.start().await?;
    swarm.trace.record(format_args!("{} up", name(i)));
    let mut tick = tokio::time::interval(MAINTENANCE);
    loop {
        tick.tick().await;
        gossiper.maintain().await;
    }
}

impl Gossiper {
    async fn maintain(&self) {
        let to_start = std::mem::take(&mut self.swarm.seen(self.index).to_start);
        for id in to_start {
            self.hear(id, None).await;
        }
        let peers = self.node().connected_addrs();
        // a peer with no room for a ping gets the next one
        let _ = self
            .send_to_many_with(peers, &Gossip::Ping, WhenFull::Drop)
            .await;
        for &peer in &self.swarm.dials[self.index] {
            let addr = self.swarm.addr(peer);
            if self.node().is_connected(addr) || self.node().is_connecting(addr) {
                continue;
            }
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.node().connect(addr).await {
                    this.swarm.failed_dials.fetch_add(1, Relaxed);
                    let (me, peer) = (name(this.index), name(peer));
                    // turmoil's message is only the address; the kind says what happened
                    let why = e.kind();
                    this.swarm
                        .trace
                        .record(format_args!("{me} could not dial {peer}: {why}"));
                }
            });
        }
    }

    /// Records a rumour; the first time, passes it to every peer but the one it came from (not
    /// to a peer whose queue is full: a handler that waited would stop reading meanwhile).
    async fn hear(&self, id: u32, from: Option<SocketAddr>) {
        if !self.swarm.seen(self.index).heard.insert(id) {
            return;
        }
        let me = name(self.index);
        match from {
            Some(peer) => {
                let peer = name(self.swarm.index_of(peer.ip()));
                self.swarm
                    .trace
                    .record(format_args!("{me} heard r{id} from {peer}"));
            }
            None => self.swarm.trace.record(format_args!("{me} started r{id}")),
        }
        let peers: Vec<_> = self
            .node()
            .connected_addrs()
            .into_iter()
            .filter(|&p| Some(p) != from)
            .collect();
        let rumour = Gossip::Rumour(id);
        let sent = self.send_to_many_with(peers, &rumour, WhenFull::Drop).await;
        self.swarm
            .rumours_sent
            .fetch_add(sent.queued() as u64, Relaxed);
    }

    /// A new link: tell the peer every rumour this node knows.
    fn resync(&self, addr: SocketAddr) {
        let peer = self.swarm.index_of(addr.ip());
        let heard: Vec<u32> = self.swarm.seen(self.index).heard.iter().copied().collect();
        let (me, them) = (name(self.index), name(peer));
        self.swarm.trace.record(format_args!(
            "{me} linked to {them}, resyncs {} rumours",
            heard.len()
        ));
        let sent = heard
            .into_iter()
            .filter(|&id| self.send_fast(addr, Gossip::Rumour(id)).is_ok())
            .count();
        self.swarm.rumours_sent.fetch_add(sent as u64, Relaxed);
    }

    fn lost(&self, addr: SocketAddr, origin: DisconnectOrigin) {
        let peer = self.swarm.index_of(addr.ip());
        let (me, them) = (name(self.index), name(peer));
        self.swarm
            .trace
            .record(format_args!("{me} lost {them} ({origin:?})"));
        self.swarm.seen(self.index).disconnects.push((peer, origin));
    }
}

/// The virtual time each phase of [`partition_and_heal`] took.
#[derive(Debug)]
pub struct Phases {
    /// Until every link was up.
    pub formed: Duration,
    /// Until every node had the first rumours.
    pub spread: Duration,
    /// From the partition until the links across it were gone.
    pub split: Duration,
    /// Until each side had its own new rumours (and none of the other side's).
    pub spread_apart: Duration,
    /// From the repair until every node had every rumour and every link was up again.
    pub healed: Duration,
}

/// `n` nodes (`n` >= 10) form their links and spread `rumours` rumours; a partition splits
/// them in two halves, each of which spreads `rumours` more of its own; 3 s later the partition
/// heals,
/// and every rumour reaches every node. Panics if a phase takes longer than a minute of
/// virtual time, or if a rumour crosses the partition.
pub fn partition_and_heal(seed: u64, n: usize, rumours: u32) -> (Arc<Swarm>, Phases) {
    const PHASE: Duration = Duration::from_secs(60);
    const HELD: Duration = Duration::from_secs(3);
    let mut sim = builder(seed).build();
    let swarm = Swarm::launch(&mut sim, n, &[1, 2, 7]);
    let ids = |range: Range<u32>| range.collect::<BTreeSet<_>>();
    let first = ids(0..rumours);
    let (left_ids, right_ids) = (ids(rumours..2 * rumours), ids(2 * rumours..3 * rumours));
    let (left, right) = (0..n / 2, n / 2..n);

    let formed = step_until(&mut sim, PHASE, "forming the links", || {
        swarm.all_links_up()
    });
    for id in first.iter().copied() {
        swarm.start_rumour(id as usize * 7 % n, id);
    }
    let spread = step_until(&mut sim, PHASE, "spreading the first rumours", || {
        swarm.all_heard(0..n, &first)
    });

    for (a, b) in pairs(&left, &right) {
        sim.partition(name(a), name(b));
    }
    swarm.trace.record_at(sim.elapsed(), "partition");
    let split = step_until(&mut sim, PHASE, "dropping the links across", || {
        swarm.links_across(&left) == 0
    });
    for (k, id) in left_ids.iter().copied().enumerate() {
        swarm.start_rumour(left.start + k * 3 % left.len(), id);
    }
    for (k, id) in right_ids.iter().copied().enumerate() {
        swarm.start_rumour(right.start + k * 3 % right.len(), id);
    }
    let spread_apart = step_until(&mut sim, PHASE, "spreading on each side", || {
        swarm.all_heard(left.clone(), &left_ids) && swarm.all_heard(right.clone(), &right_ids)
    });
    for i in 0..n {
        let (theirs, side) = if left.contains(&i) {
            (&right_ids, "right")
        } else {
            (&left_ids, "left")
        };
        let leaked: Vec<_> = swarm.seen(i).heard.intersection(theirs).copied().collect();
        assert!(
            leaked.is_empty(),
            "{} heard {side} rumours {leaked:?} through the partition",
            name(i)
        );
    }

    // the partition lasts a while longer: the dialers keep failing across it
    step_for(&mut sim, HELD);
    for (a, b) in pairs(&left, &right) {
        sim.repair(name(a), name(b));
    }
    swarm.trace.record_at(sim.elapsed(), "repair");
    let everything = ids(0..3 * rumours);
    let healed = step_until(&mut sim, PHASE, "healing", || {
        swarm.all_heard(0..n, &everything) && swarm.all_links_up()
    });
    let phases = Phases {
        formed,
        spread,
        split,
        spread_apart,
        healed,
    };
    (swarm, phases)
}

fn pairs(a: &Range<usize>, b: &Range<usize>) -> impl Iterator<Item = (usize, usize)> {
    let b = b.clone();
    a.clone().flat_map(move |i| b.clone().map(move |j| (i, j)))
}
