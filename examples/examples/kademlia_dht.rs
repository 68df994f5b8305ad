//! A Kademlia distributed hash table, written with the DSL: four `rpc`s (PING, STORE,
//! FIND_NODE, FIND_VALUE) over the fingerprint handshake, k-buckets, and iterative lookups.
//!
//! ```text
//! cargo run --release --example kademlia_dht -- [--nodes N] [--keys K] [--leave L] [--k SIZE]
//! ```
//!
//! N nodes (default 32) join through one seed node, store K keys (default 200), each on the k
//! nodes closest to it (k = 8 by default); then L nodes leave (shut down; a quarter by default)
//! and every remaining node looks up every key. It prints what it found, the hops a lookup took,
//! and the connections each node keeps, and fails if a lookup misses a key that a remaining
//! node still holds.
//!
//! * **Ids** are 160 bits, as in the Kademlia paper (and BitTorrent's DHT): the first 160 bits
//!   of the SHA-256 of a node's listening address (or of a key's name), compared by XOR
//!   distance. A node learns its peer's listening address from the DSL handshake
//!   (`dsl::peer_identity`), so a request carries no "reply to" field, and contacts travel as
//!   addresses: the receiver derives their ids, and no node can pick the id it answers to.
//! * **k-buckets**: bucket i holds up to k contacts whose distance has i leading zero bits,
//!   least recently seen first. A contact for a full bucket is kept only if the bucket's least
//!   recently seen one fails to answer a PING.
//! * **Lookups** are iterative: ask the alpha = 3 closest contacts not yet asked, at the same
//!   time, for the k closest they know (or for the value), and repeat until the k closest
//!   answering contacts have all been asked. A hop is one such round. STORE goes to the k
//!   closest the lookup found (the publisher among them, if it is one); a contact that cannot
//!   be reached is dropped from the table. A joining node looks up its own id, then an id in
//!   each bucket farther away than its nearest neighbour, as the paper says.
//! * **Connections**: a node reaches a contact with the generated `connect_if_needed`, which
//!   reuses a connection in either direction and waits for one on its way, so two nodes that
//!   look each other up at once end with one connection between them (the handshake drops the
//!   other, counted in `dsl::duplicate_connections`). All nodes run in this process, on
//!   127.0.0.1, and keep their
//!   connections: a node ends up connected to most of the others.
//!
//! With 32 nodes and k = 8 a routing table knows most of the network, so most lookups take
//! one round; more nodes (`--nodes 120`) take more. The check at the end: every key was stored
//! on at least one node, and every lookup of a key that some remaining node still holds (all
//! of them, unless all k replicas of a key left) found its value; and no node keeps two
//! connections to one peer. A small k with many leaving (`--nodes 20 --k 2 --leave 8`) shows
//! why k is 8 or more: an answer's k closest nodes may all have left, a lookup may then never
//! hear of the replica that remains, and the check fails.
//!
//! Left out: republishing, expiry, caching values along the lookup path, and refreshing buckets
//! after the join; a node's table fills up from the lookups it makes and the requests it serves.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use pea2pea::{Config, Message, Node, Pea2Pea, dsl, protocol};
use pea2pea_examples::{Args, ensure_open_files, lock, wait_until};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

/// Queries sent at once in a lookup.
const ALPHA: usize = 3;
/// The largest k a node accepts (it bounds the contacts in an answer).
const MAX_K: usize = 20;
/// The most values one node keeps; beyond, a STORE is refused.
const MAX_VALUES: usize = 100_000;
/// The longest a phase of the run may take.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

// ---- ids and distance ----

/// A 160-bit node or key id. The derived order is the big-endian number's, so the order of
/// two distances is their order as numbers.
#[derive(Message, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
struct Id([u8; 20]);

impl Id {
    fn hash(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut id = [0; 20];
        id.copy_from_slice(&digest[..20]);
        Self(id)
    }

    /// A node's id: its listening address's.
    fn of_node(addr: SocketAddr) -> Self {
        Self::hash(addr.to_string().as_bytes())
    }

    fn of_key(key: &str) -> Self {
        Self::hash(key.as_bytes())
    }

    fn distance(&self, other: &Id) -> Id {
        Id(std::array::from_fn(|i| self.0[i] ^ other.0[i]))
    }

    /// An id in bucket `i` of this one (whose distance to it has `i` leading zero bits): its
    /// first `i` bits, bit `i` flipped, and the rest from a hash of the two.
    fn in_bucket(&self, i: usize) -> Id {
        let noise = Id::hash(format!("{:?} {i}", self.0).as_bytes());
        let mut id = self.0;
        for bit in i..160 {
            let (byte, mask) = (bit / 8, 0x80u8 >> (bit % 8));
            let value = match bit == i {
                true => !self.0[byte] & mask,
                false => noise.0[byte] & mask,
            };
            id[byte] = (id[byte] & !mask) | value;
        }
        debug_assert_eq!(self.distance(&Id(id)).leading_zeros(), i);
        Id(id)
    }

    fn leading_zeros(&self) -> usize {
        let zero_bytes = self.0.iter().take_while(|b| **b == 0).count();
        match self.0.get(zero_bytes) {
            Some(byte) => 8 * zero_bytes + byte.leading_zeros() as usize,
            None => 160,
        }
    }
}

/// A node as its routing table knows it: its listening address and the id derived from it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Contact {
    id: Id,
    addr: SocketAddr,
}

impl Contact {
    fn new(addr: SocketAddr) -> Self {
        Self {
            id: Id::of_node(addr),
            addr,
        }
    }
}

// ---- the protocol ----

#[derive(Message, Debug, Clone)]
struct Ping;

#[derive(Message, Debug)]
struct Pong;

#[derive(Message, Debug, Clone)]
struct Store {
    key: Id,
    #[message(max_len = 1024)]
    value: String,
}

/// Whether the value is kept (a node holding `MAX_VALUES` refuses new keys).
#[derive(Message, Debug)]
struct Stored(bool);

#[derive(Message, Debug, Clone)]
struct FindNode(Id);

/// The listening addresses of the closest nodes the answering node knows (at most `MAX_K`).
#[derive(Message, Debug)]
struct Closest(#[message(max_len = 20)] Vec<SocketAddr>);

#[derive(Message, Debug, Clone)]
struct FindValue(Id);

/// The answer to FIND_VALUE: the value, or the closest nodes (at most `MAX_K`).
#[derive(Message, Debug)]
enum ValueOrNodes {
    Value(#[message(max_len = 1024)] String),
    Nodes(#[message(max_len = 20)] Vec<SocketAddr>),
}

/// Kademlia has only requests and answers: no one-way message.
#[derive(Message, Debug)]
enum NoMessage {}

#[pea2pea::node]
#[derive(Clone)]
struct Kademlia {
    node: Node,
    table: Arc<Mutex<Table>>,
    values: Arc<Mutex<HashMap<Id, String>>>,
}

protocol! {
    Kademlia speaks NoMessage {
        name = "kademlia",
        handshake = fingerprint,
        call_timeout = 2 s,
        rpc Ping from peer -> Pong => {
            self.heard_from(peer).await;
            Pong
        }
        rpc Store { key, value } from peer -> Stored => {
            self.heard_from(peer).await;
            let mut values = lock(&self.values);
            let room = values.len() < MAX_VALUES || values.contains_key(&key);
            if room {
                values.insert(key, value);
            }
            Stored(room)
        }
        rpc FindNode(target) from peer -> Closest => {
            self.heard_from(peer).await;
            Closest(self.closest_addrs(&target))
        }
        rpc FindValue(key) from peer -> ValueOrNodes => {
            self.heard_from(peer).await;
            let value = lock(&self.values).get(&key).cloned();
            match value {
                Some(value) => ValueOrNodes::Value(value),
                None => ValueOrNodes::Nodes(self.closest_addrs(&key)),
            }
        }
    }
}

// ---- the routing table ----

/// What the table did with a contact it saw.
enum Seen {
    /// Known (moved to the end of its bucket), added, or ignored (this node itself).
    Done,
    /// Its bucket is full: keep it only if this, the least recently seen, does not answer.
    Full { oldest: Contact },
}

struct Table {
    /// This node's id, set once its listener is bound (before anyone knows its address).
    me: Option<Contact>,
    k: usize,
    /// `buckets[i]`: contacts whose distance has `i` leading zero bits, least recently seen
    /// first.
    buckets: Vec<Vec<Contact>>,
    /// Contacts being pinged to settle a full bucket (one ping each at a time).
    pinging: HashSet<SocketAddr>,
}

impl Table {
    fn new(k: usize) -> Self {
        Self {
            me: None,
            k,
            buckets: vec![Vec::new(); 160],
            pinging: HashSet::new(),
        }
    }

    fn bucket(&mut self, id: &Id) -> Option<&mut Vec<Contact>> {
        let me = self.me?;
        let index = me.id.distance(id).leading_zeros();
        self.buckets.get_mut(index) // None for this node itself (distance 0)
    }

    fn see(&mut self, contact: Contact) -> Seen {
        let k = self.k;
        let Some(bucket) = self.bucket(&contact.id) else {
            return Seen::Done;
        };
        if let Some(at) = bucket.iter().position(|c| *c == contact) {
            bucket.remove(at);
            bucket.push(contact);
        } else if bucket.len() < k {
            bucket.push(contact);
        } else {
            let oldest = bucket[0];
            if self.pinging.insert(oldest.addr) {
                return Seen::Full { oldest };
            } // else a ping to it is on its way: the newcomer is dropped
        }
        Seen::Done
    }

    /// After a ping of `oldest`: moves it to the end if it answered, else puts `newcomer` in
    /// its place.
    fn settle(&mut self, oldest: Contact, answered: bool, newcomer: Contact) {
        self.pinging.remove(&oldest.addr);
        if answered {
            self.see(oldest);
        } else {
            self.remove(oldest.addr);
            self.see(newcomer);
        }
    }

    fn remove(&mut self, addr: SocketAddr) {
        if let Some(bucket) = self.bucket(&Id::of_node(addr)) {
            bucket.retain(|c| c.addr != addr);
        }
    }

    /// The `n` known contacts closest to `target`.
    fn closest(&self, target: &Id, n: usize) -> Vec<Contact> {
        let mut all: Vec<Contact> = self.buckets.iter().flatten().copied().collect();
        all.sort_by_key(|c| c.id.distance(target));
        all.truncate(n);
        all
    }

    fn len(&self) -> usize {
        self.buckets.iter().map(Vec::len).sum()
    }
}

// ---- a node's side of the DHT ----

/// What a lookup found.
struct Lookup {
    value: Option<String>,
    /// The k closest nodes that answered, closest first.
    closest: Vec<Contact>,
    /// Rounds of queries.
    hops: usize,
}

/// One query of a lookup: the node asked, and its answer.
type Answer = (Contact, io::Result<ValueOrNodes>);

impl Kademlia {
    fn new(name: String, k: usize) -> Self {
        let config = Config {
            name: Some(name),
            // a node may end up talking to every other one, all of them on 127.0.0.1
            max_connections: 4096,
            max_connections_per_ip: 4096,
            ..Config::loopback()
        };
        Self {
            node: Node::new(config),
            table: Arc::new(Mutex::new(Table::new(k))),
            values: Default::default(),
        }
    }

    /// Starts listening and takes the id of the address it got.
    async fn start_dht(&self) -> io::Result<SocketAddr> {
        let addr = self.start().await?;
        lock(&self.table).me = Some(Contact::new(addr));
        Ok(addr)
    }

    fn me(&self) -> Option<Contact> {
        lock(&self.table).me
    }

    fn k(&self) -> usize {
        lock(&self.table).k
    }

    fn closest_addrs(&self, target: &Id) -> Vec<SocketAddr> {
        let table = lock(&self.table);
        let closest = table.closest(target, table.k);
        closest.into_iter().map(|c| c.addr).collect()
    }

    /// Notes that the peer of a request is alive, under the listening address its handshake
    /// gave (never one named in the request).
    async fn heard_from(&self, peer: SocketAddr) {
        let identity = dsl::peer_identity(self.node(), peer);
        if let Some(listening) = identity.and_then(|id| id.listening_addr()) {
            self.observe(Contact::new(listening)).await;
        }
    }

    /// Puts a contact that answered or asked into the table; if its bucket is full, pings the
    /// bucket's least recently seen contact first, and keeps whichever is alive.
    async fn observe(&self, contact: Contact) {
        let seen = lock(&self.table).see(contact);
        if let Seen::Full { oldest } = seen {
            let answered = self.ping(oldest.addr).await.is_ok();
            lock(&self.table).settle(oldest, answered, contact);
        }
    }

    /// Calls the node listening at `to`, through a connection in either direction (dialled if
    /// there is none). A call whose connection closes before the answer is made once more: while
    /// two dials between the same nodes race, the one to be dropped may briefly be registered
    /// on one side, and a call that went on it ends, though the node is alive.
    async fn ask<R: dsl::Rpc<Self> + Clone>(
        &self,
        to: SocketAddr,
        request: R,
    ) -> io::Result<R::Response> {
        let conn = self.connect_if_needed(to).await?;
        match self.call(conn, request.clone()).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {
                let conn = self.connect_if_needed(to).await?;
                self.call(conn, request).await
            }
            answer => answer,
        }
    }

    async fn ping(&self, to: SocketAddr) -> io::Result<Pong> {
        self.ask(to, Ping).await
    }

    /// Asks `to` for the k closest nodes to `target`, or for the value of `target` if
    /// `want_value`.
    async fn query(&self, to: Contact, target: Id, want_value: bool) -> io::Result<ValueOrNodes> {
        let answer = match want_value {
            true => self.ask(to.addr, FindValue(target)).await?,
            false => ValueOrNodes::Nodes(self.ask(to.addr, FindNode(target)).await?.0),
        };
        self.observe(to).await;
        Ok(answer)
    }

    /// The iterative lookup of `target`: rounds of `ALPHA` queries at once to the closest
    /// contacts not asked yet, until the k closest that answered have all been asked (or, if
    /// `want_value`, until one answers with the value).
    async fn lookup(&self, target: Id, want_value: bool) -> Lookup {
        let k = self.k();
        let me = self.me().map(|c| c.addr);
        // by distance to the target: contacts not known to have failed; it starts with every
        // contact in the table, so that the k closest include live ones when some have left
        let mut shortlist: BTreeMap<Id, Contact> = lock(&self.table)
            .closest(&target, usize::MAX)
            .into_iter()
            .map(|c| (c.id.distance(&target), c))
            .collect();
        let mut asked = HashSet::new();
        let mut hops = 0;
        loop {
            let round: Vec<Contact> = shortlist
                .values()
                .take(k)
                .filter(|c| !asked.contains(&c.addr))
                .take(ALPHA)
                .copied()
                .collect();
            if round.is_empty() {
                break;
            }
            hops += 1;
            let mut queries = JoinSet::new();
            for contact in round {
                asked.insert(contact.addr);
                let this = self.clone();
                queries.spawn(async move {
                    let answer = this.query(contact, target, want_value).await;
                    (contact, answer)
                });
            }
            while let Some(joined) = queries.join_next().await {
                let Ok((contact, answer)): Result<Answer, _> = joined else {
                    continue; // a panicked query: its contact stays asked, unanswered
                };
                match answer {
                    Ok(ValueOrNodes::Value(value)) => {
                        queries.abort_all();
                        return Lookup {
                            value: Some(value),
                            closest: Vec::new(),
                            hops,
                        };
                    }
                    Ok(ValueOrNodes::Nodes(addrs)) => {
                        for addr in addrs.into_iter().filter(|a| Some(*a) != me) {
                            let found = Contact::new(addr);
                            if !asked.contains(&addr) {
                                shortlist.insert(found.id.distance(&target), found);
                            }
                        }
                    }
                    Err(_) => {
                        // gone (or unreachable): forget it
                        shortlist.remove(&contact.id.distance(&target));
                        lock(&self.table).remove(contact.addr);
                    }
                }
            }
        }
        Lookup {
            value: None,
            closest: shortlist.into_values().take(k).collect(),
            hops,
        }
    }

    /// Joins the network through `seed`: a lookup of this node's own id finds its neighbours,
    /// then a lookup of an id in each bucket farther away than the nearest of them fills those
    /// buckets (without it, a node may know nobody in the other half of the id space, and a
    /// lookup from it converge on its own neighbourhood). The nodes it asks add it to their
    /// tables.
    async fn join(&self, seed: SocketAddr) {
        self.observe(Contact::new(seed)).await;
        let Some(me) = self.me() else {
            return;
        };
        let neighbours = self.lookup(me.id, false).await.closest;
        let nearest = neighbours.first();
        let farther = nearest.map_or(0, |c| c.id.distance(&me.id).leading_zeros());
        for bucket in 0..farther {
            self.lookup(me.id.in_bucket(bucket), false).await;
        }
    }

    /// Stores `value` on the k nodes closest to `key`; returns how many kept it.
    async fn put(&self, key: Id, value: &str) -> usize {
        let mut closest = self.lookup(key, false).await.closest;
        // this node keeps it too if it is one of the k closest
        let mut kept = 0;
        if let Some(me) = self.me() {
            closest.push(me);
            closest.sort_by_key(|c| c.id.distance(&key));
            closest.truncate(self.k());
            if closest.contains(&me) {
                closest.retain(|c| *c != me);
                lock(&self.values).insert(key, value.to_owned());
                kept += 1;
            }
        }
        let mut stores = JoinSet::new();
        for contact in closest {
            let (this, value) = (self.clone(), value.to_owned());
            stores.spawn(async move { this.ask(contact.addr, Store { key, value }).await });
        }
        while let Some(stored) = stores.join_next().await {
            kept += usize::from(matches!(stored, Ok(Ok(Stored(true)))));
        }
        kept
    }

    /// The value of `key`, from this node's own store or a lookup, and the hops it took.
    async fn get(&self, key: Id) -> (Option<String>, usize) {
        if let Some(value) = lock(&self.values).get(&key).cloned() {
            return (Some(value), 0);
        }
        let found = self.lookup(key, true).await;
        (found.value, found.hops)
    }

    /// How many connections this node has, and to how many distinct peers (by the listening
    /// address their handshakes gave).
    fn connections(&self) -> (usize, usize) {
        let conns = self.node().connected_addrs();
        let peers: HashSet<_> = conns
            .iter()
            .map(|a| dsl::peer_identity(self.node(), *a).and_then(|id| id.listening_addr()))
            .collect();
        (conns.len(), peers.len())
    }
}

// ---- the run ----

fn key_name(i: usize) -> String {
    format!("key-{i}")
}

fn value_of(i: usize) -> String {
    format!("value of key {i}")
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger_at("error");
    let args = Args::parse_or_exit(
        &["nodes", "keys", "leave", "k"],
        "kademlia_dht [--nodes N] [--keys K] [--leave L] [--k SIZE]",
    );
    let n: usize = args.get("nodes", 32);
    let keys: usize = args.get("keys", 200);
    let leave: usize = args.get("leave", n / 4);
    let k: usize = args.get("k", 8);
    if !(2..=1000).contains(&n) || leave >= n || keys == 0 || !(1..=MAX_K).contains(&k) {
        eprintln!("--nodes must be 2..=1000, --leave below it, --keys above 0, --k 1..={MAX_K}");
        return ExitCode::FAILURE;
    }
    // every pair of nodes may end up connected: two sockets per connection, in this process
    let needed = (n * (n - 1) + n + 64) as u64;
    match ensure_open_files(needed) {
        Ok(limit) if limit.enough() => {}
        Ok(limit) => {
            eprintln!("kademlia_dht: {limit}; use fewer nodes");
            return ExitCode::FAILURE;
        }
        Err(e) => eprintln!("kademlia_dht: could not read the open-file limit ({e})"),
    }
    match run(n, keys, leave, k).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kademlia_dht failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `phase`, failing if it takes longer than `PHASE_LIMIT`.
async fn bounded<T>(name: &str, phase: impl Future<Output = T>) -> io::Result<T> {
    tokio::time::timeout(PHASE_LIMIT, phase).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{name} took over {PHASE_LIMIT:?}"),
        )
    })
}

async fn run(n: usize, keys: usize, leave: usize, k: usize) -> io::Result<bool> {
    let started = Instant::now();
    let nodes: Vec<Kademlia> = (0..n).map(|i| Kademlia::new(format!("n{i}"), k)).collect();
    let result = phases(&nodes, keys, leave, k, started).await;
    for node in &nodes {
        node.node().shut_down().await; // again for those that left: it does nothing
    }
    let ok = result?;
    println!("  time        {:.2?} in all", started.elapsed());
    Ok(ok)
}

async fn phases(
    nodes: &[Kademlia],
    keys: usize,
    leave: usize,
    k: usize,
    started: Instant,
) -> io::Result<bool> {
    let n = nodes.len();
    println!(
        "kademlia_dht: {n} nodes, {keys} keys, k = {k}, alpha = {ALPHA}, {leave} nodes to leave"
    );

    // join: one after another, each through the seed (node 0)
    let mut addrs = Vec::with_capacity(n);
    for node in nodes {
        addrs.push(node.start_dht().await?);
    }
    let seed = addrs[0];
    bounded("joining", async {
        for node in &nodes[1..] {
            node.join(seed).await;
        }
    })
    .await?;
    let table_sizes: usize = nodes.iter().map(|node| lock(&node.table).len()).sum();
    println!(
        "  joined      {n} nodes through {seed} in {:.2?}; {:.1} contacts per routing table",
        started.elapsed(),
        table_sizes as f64 / n as f64
    );

    // store: node i % n publishes key i; all nodes at once, each its keys in turn
    let phase = Instant::now();
    let mut publishers = JoinSet::new();
    for (p, node) in nodes.iter().enumerate() {
        let node = node.clone();
        let mine: Vec<usize> = (p..keys).step_by(n).collect();
        publishers.spawn(async move {
            let mut replicas = Vec::with_capacity(mine.len());
            for i in mine {
                replicas.push(node.put(Id::of_key(&key_name(i)), &value_of(i)).await);
            }
            replicas
        });
    }
    let replicas: Vec<usize> = bounded("storing", publishers.join_all())
        .await?
        .into_iter()
        .flatten()
        .collect();
    let stored = replicas.iter().filter(|r| **r > 0).count();
    println!(
        "  stored      {stored} of {keys} keys in {:.2?}, on {:.1} nodes each (fewest {})",
        phase.elapsed(),
        replicas.iter().sum::<usize>() as f64 / keys as f64,
        replicas.iter().min().unwrap_or(&0)
    );

    // leave: every (n / leave)-th node shuts down, the seed among them
    let leaving: HashSet<usize> = (0..leave).map(|j| j * n / leave.max(1)).collect();
    for &i in &leaving {
        nodes[i].node().shut_down().await;
    }
    let remaining: Vec<&Kademlia> = (0..n)
        .filter(|i| !leaving.contains(i))
        .map(|i| &nodes[i])
        .collect();
    // the truth the lookups do not see: which keys some remaining node still holds
    let held: Vec<bool> = (0..keys)
        .map(|i| {
            let key = Id::of_key(&key_name(i));
            remaining
                .iter()
                .any(|node| lock(&node.values).contains_key(&key))
        })
        .collect();
    let lost = held.iter().filter(|h| !**h).count();
    println!(
        "  left        {} nodes; {} keys still held by a remaining node, {lost} lost with \
         every replica",
        leaving.len(),
        keys - lost
    );

    // look up: every remaining node every key, the nodes at the same time
    let phase = Instant::now();
    let mut lookers = JoinSet::new();
    for node in &remaining {
        let node = (*node).clone();
        lookers.spawn(async move {
            let mut results = Vec::with_capacity(keys);
            for i in 0..keys {
                let (value, hops) = node.get(Id::of_key(&key_name(i))).await;
                results.push((i, value == Some(value_of(i)), hops));
            }
            results
        });
    }
    let results: Vec<(usize, bool, usize)> = bounded("looking up", lookers.join_all())
        .await?
        .into_iter()
        .flatten()
        .collect();
    let lookups = results.len();
    let found = results.iter().filter(|(_, ok, _)| *ok).count();
    let expected = results.iter().filter(|(i, _, _)| held[*i]).count();
    let asked: Vec<usize> = results
        .iter()
        .filter(|(_, ok, hops)| *ok && *hops > 0)
        .map(|(_, _, hops)| *hops)
        .collect();
    let keys_found = (0..keys)
        .filter(|i| results.iter().any(|(j, ok, _)| j == i && *ok))
        .count();
    println!(
        "  looked up   {lookups} lookups ({} nodes × {keys} keys) in {:.2?}: {found} found, \
         {} missing; {keys_found} of {keys} keys found",
        remaining.len(),
        phase.elapsed(),
        lookups - found
    );
    println!(
        "  hops        {:.2} on average over the {} lookups that asked the network (the other \
         {} were in the node's own store), at most {}",
        asked.iter().sum::<usize>() as f64 / asked.len().max(1) as f64,
        asked.len(),
        found - asked.len(),
        asked.iter().max().unwrap_or(&0)
    );

    // connections: one per pair of nodes that talked, however often both dialled at once
    let one_per_peer = wait_until(Duration::from_secs(5), || {
        remaining.iter().all(|node| {
            let (conns, peers) = node.connections();
            conns == peers
        })
    })
    .await;
    let conns: Vec<usize> = remaining.iter().map(|node| node.connections().0).collect();
    let duplicates: u64 = nodes
        .iter()
        .map(|node| dsl::duplicate_connections(node.node()))
        .sum();
    println!(
        "  connections {:.1} per remaining node (most {}, out of {} peers), {}; {duplicates} \
         duplicate connections dropped in handshakes",
        conns.iter().sum::<usize>() as f64 / conns.len() as f64,
        conns.iter().max().unwrap_or(&0),
        remaining.len() - 1,
        match one_per_peer {
            true => "each to a distinct peer",
            false => "SOME TO THE SAME PEER",
        }
    );

    // the check: every lookup of a key that a remaining node holds finds it
    let ok = stored == keys && found >= expected && one_per_peer;
    match ok {
        true => println!("  check       ok: all {expected} lookups of held keys found them"),
        false => println!(
            "  check       FAILED: {found} of {expected} lookups of held keys found them, {stored} \
             of {keys} keys stored, one connection per peer: {one_per_peer}"
        ),
    }
    Ok(ok)
}
