//! A small gossip protocol: push-pull anti-entropy over a replicated key-value map.
//!
//! ```text
//! cargo run --example gossip -- [--nodes N] [--round-ms MS]
//! ```
//!
//! Every node owns one key (its name) and keeps a copy of everyone else's, each entry with a
//! version that only its owner raises. Once a round, each node picks a random peer and the two
//! reconcile in three messages:
//!
//! ```text
//!   A ── Digest { key → version, for all A knows } ──────────────► B
//!   A ◄── Reply { entries B has newer, keys B wants from A } ────── B
//!   A ── Updates { the entries B wanted } ───────────────────────► B
//! ```
//!
//! Unlike `swarm`, which floods each rumour to every peer at once, nodes here only talk to one
//! peer per round and send only what the other lacks; yet news reaches everyone in a number of
//! rounds that grows with the logarithm of the number of nodes. The run shows it twice: first
//! everyone's initial entry, then a single changed value.

use std::{
    collections::BTreeMap,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use pea2pea::{Config, Message, Node, Pea2Pea, Topology, connect_nodes, protocol};
use pea2pea_examples::Args;
use tokio::task::JoinSet;

/// One entry of the replicated map.
#[derive(Message, Debug, Clone)]
struct Entry {
    #[message(max_len = 64)]
    key: String,
    version: u64,
    #[message(max_len = 1024)]
    value: String,
}

#[derive(Message, Debug)]
enum Gossip {
    /// Every key the sender knows, with the version it has.
    Digest(#[message(max_len = 4096)] BTreeMap<String, u64>),
    /// The entries the digest's receiver has in a newer version, and the keys it wants back.
    Reply {
        #[message(max_len = 4096)]
        updates: Vec<Entry>,
        #[message(max_len = 4096)]
        wanted: Vec<String>,
    },
    /// The entries that a reply asked for.
    Updates(#[message(max_len = 4096)] Vec<Entry>),
}

#[pea2pea::node]
#[derive(Clone)]
struct Gossiper {
    node: Node,
    /// key → (version, value)
    store: Arc<Mutex<BTreeMap<String, (u64, String)>>>,
}

protocol! {
    Gossiper speaks Gossip over length_delimited(max_frame = 1 MiB) {
        on Gossip::Digest(theirs) from peer => {
            let (updates, wanted) = self.compare(&theirs);
            // send_fast queues without waiting, so a handler never stalls its own reader
            let _ = self.send_fast(peer, Gossip::Reply { updates, wanted });
        }
        on Gossip::Reply { updates, wanted } from peer => {
            self.merge(updates);
            let _ = self.send_fast(peer, Gossip::Updates(self.entries(&wanted)));
        }
        on Gossip::Updates(updates) => self.merge(updates),
    }
}

impl Gossiper {
    /// Sets this node's own entry to `value`, with a higher version than before.
    fn set_own(&self, value: String) {
        let mut store = self.store.lock().unwrap();
        let entry = store.entry(self.node.name().to_owned()).or_default();
        *entry = (entry.0 + 1, value);
    }

    fn digest(&self) -> BTreeMap<String, u64> {
        let store = self.store.lock().unwrap();
        store
            .iter()
            .map(|(k, (version, _))| (k.clone(), *version))
            .collect()
    }

    /// What this node has that `theirs` lacks, and the keys `theirs` has newer.
    fn compare(&self, theirs: &BTreeMap<String, u64>) -> (Vec<Entry>, Vec<String>) {
        let store = self.store.lock().unwrap();
        let updates = store
            .iter()
            .filter(|(key, (version, _))| theirs.get(*key).is_none_or(|v| v < version))
            .map(|(key, (version, value))| Entry {
                key: key.clone(),
                version: *version,
                value: value.clone(),
            })
            .collect();
        let wanted = theirs
            .iter()
            .filter(|(key, version)| store.get(*key).is_none_or(|(v, _)| v < version))
            .map(|(key, _)| key.clone())
            .collect();
        (updates, wanted)
    }

    fn entries(&self, keys: &[String]) -> Vec<Entry> {
        let store = self.store.lock().unwrap();
        keys.iter()
            .filter_map(|key| {
                let (version, value) = store.get(key)?;
                Some(Entry {
                    key: key.clone(),
                    version: *version,
                    value: value.clone(),
                })
            })
            .collect()
    }

    /// Keeps every entry that is newer than the one this node has.
    fn merge(&self, updates: Vec<Entry>) {
        let mut store = self.store.lock().unwrap();
        for Entry {
            key,
            version,
            value,
        } in updates
        {
            let current = store.entry(key).or_default();
            if version > current.0 {
                *current = (version, value);
            }
        }
    }

    /// Whether this node has `key` at least at `version`.
    fn knows(&self, key: &str, version: u64) -> bool {
        let store = self.store.lock().unwrap();
        store.get(key).is_some_and(|(v, _)| *v >= version)
    }

    /// Starts a round every `period`: a digest to one peer picked at random.
    fn gossip_every(&self, period: Duration, seed: u64, tasks: &mut JoinSet<()>) {
        let this = self.clone();
        tasks.spawn(async move {
            let mut rng = seed | 1;
            let mut ticker = tokio::time::interval(period);
            loop {
                ticker.tick().await;
                let peers = this.node.connected_addrs();
                if peers.is_empty() {
                    continue;
                }
                // xorshift64: plenty random for picking a peer
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let peer = peers[(rng % peers.len() as u64) as usize];
                let _ = this.send_fast(peer, Gossip::Digest(this.digest()));
            }
        });
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(&["nodes", "round-ms"], "gossip [--nodes N] [--round-ms MS]");
    let n: usize = args.get("nodes", 32);
    let round = Duration::from_millis(args.get("round-ms", 100));
    if !(4..=500).contains(&n) || round.is_zero() {
        eprintln!("--nodes must be between 4 and 500, and --round-ms above 0");
        return ExitCode::FAILURE;
    }
    // a sparse graph: every node dials 2 random others (and is dialled by about as many)
    let topology = Topology::Random { degree: 2, seed: 3 };

    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let node = Gossiper {
            node: Node::new(Config {
                name: Some(format!("n{i}")),
                ..Config::loopback() // every node is on 127.0.0.1
            }),
            store: Default::default(),
        };
        node.set_own(format!("hello from n{i}"));
        if let Err(e) = node.start().await {
            eprintln!("n{i} couldn't listen: {e}");
            return ExitCode::FAILURE;
        }
        nodes.push(node);
    }
    if let Err(e) = connect_nodes(&nodes, topology).await {
        eprintln!("couldn't form the topology: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "gossip: {n} nodes, each dialling 2 random peers ({} connections), a round every {round:?}",
        topology.num_expected_connections(n) / 2
    );

    let mut tasks = JoinSet::new();
    for (i, node) in nodes.iter().enumerate() {
        node.gossip_every(round, 0x9E37_79B9 * (i as u64 + 1), &mut tasks);
    }

    // phase 1: everyone's first entry, n × n facts to learn
    let all = n * n;
    let known = || {
        nodes
            .iter()
            .map(|node| (0..n).filter(|i| node.knows(&format!("n{i}"), 1)).count())
            .sum::<usize>()
    };
    println!("everyone learns everyone's entry ({all} facts):");
    let first = watch(round, || (known(), all)).await;

    // phase 2: one node changes its value; how fast does the news spread?
    let changed = "n0";
    nodes[0].set_own("n0 moved to a new address".into());
    println!("{changed} changes its value (version 2):");
    let second = watch(round, || {
        let n_knowing = nodes.iter().filter(|node| node.knows(changed, 2)).count();
        (n_knowing, n)
    })
    .await;

    tasks.abort_all();
    let (sent, bytes) = nodes.iter().fold((0, 0), |(m, b), node| {
        let (nm, nb) = node.node().stats().sent();
        (m + nm, b + nb)
    });
    for node in &nodes {
        node.node().shut_down().await;
    }
    println!("{sent} messages ({bytes} bytes) in all");

    match (first, second) {
        (Some(_), Some(_)) => ExitCode::SUCCESS,
        _ => {
            println!("did not converge within 100 rounds");
            ExitCode::FAILURE
        }
    }
}

/// Prints `progress()` (done, out of) once a round until it is complete; returns the time it
/// took, or `None` after 100 rounds.
async fn watch(round: Duration, progress: impl Fn() -> (usize, usize)) -> Option<Duration> {
    let start = Instant::now();
    for r in 1..=100 {
        tokio::time::sleep(round).await;
        let (done, total) = progress();
        println!(
            "  round {r:>3}  {:<40} {done:>6}/{total}",
            "#".repeat(40 * done / total)
        );
        if done == total {
            println!("  complete after {:.2?}", start.elapsed());
            return Some(start.elapsed());
        }
    }
    None
}
