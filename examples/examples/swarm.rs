//! The main demo: a few hundred nodes on loopback, in one process, form a topology and gossip
//! rumours until every node has heard every one of them.
//!
//! ```text
//! cargo run --release --example swarm -- [--nodes N] [--topology random|ring|mesh|line|star]
//!                                        [--degree D] [--rumours R]
//! ```
//!
//! Each node floods what it hears for the first time to all its other peers, encoding each
//! rumour once however many peers it goes to; `protocol!` declares what the nodes speak. A
//! progress line shows convergence and the message rate; the summary gives the time to
//! converge, traffic, memory per node and errors.
//!
//! The same protocol also runs one node per process, for hosts of their own (the namespace
//! testbed, `scripts/testbed`, starts one per network namespace):
//!
//! ```text
//! swarm --listen ADDR [--join SEED] [--max-per-ip N]    # a member, until `quit` or end of input
//! swarm --probe ADDR --connections K                    # K raw connections: admitted or refused?
//! ```
//!
//! See the `member` module for what a member prints and reads.

use std::{
    io::Write,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{Config, Message, Node, Topology, connect_nodes, protocol, protocols::Writing};
use pea2pea_examples::{Args, resident_memory, wait_until};

#[path = "swarm/member.rs"]
mod member;

/// The messages of the gossip protocol.
#[derive(Message, Debug)]
enum Gossip {
    Rumour {
        id: u32,
        body: Bytes,
    },
    /// A member's listening address and the members it knows (members in processes of their
    /// own send it on connect and as a heartbeat; the in-process demo never does).
    Hello {
        me: SocketAddr,
        known: Vec<SocketAddr>,
    },
}

/// What every node shares with the swarm, for the summary.
#[derive(Default)]
struct Swarm {
    rumours: usize,
    converged: AtomicUsize,
    send_errors: AtomicU64,
}

#[pea2pea::node]
#[derive(Clone)]
struct Gossiper {
    node: Node,
    heard: Arc<[AtomicBool]>,
    num_heard: Arc<AtomicUsize>,
    swarm: Arc<Swarm>,
}

protocol! {
    Gossiper speaks Gossip over length_delimited(max_frame = 4 KiB) {
        // a node passes each rumour to each peer at most once, so a queue as deep as the
        // number of rumours can never overflow, however bursty the flood (see MAX_RUMOURS)
        write_queue = 4096,
        on Gossip::Rumour { id, body } from source => self.hear(id, body, Some(source)).await,
        on Gossip::Hello { .. } => {} // in one process, every node knows every other already
    }
}

/// The most rumours a run may spread: the depth of the write queue declared above.
const MAX_RUMOURS: usize = <Gossiper as Writing>::MESSAGE_QUEUE_DEPTH;

impl Gossiper {
    /// Records a rumour; the first time, passes it on to every peer but `from`.
    async fn hear(&self, id: u32, body: Bytes, from: Option<SocketAddr>) {
        let Some(seen) = self.heard.get(id as usize) else {
            return;
        };
        if seen.swap(true, Relaxed) {
            return;
        }
        if self.num_heard.fetch_add(1, Relaxed) + 1 == self.swarm.rumours {
            self.swarm.converged.fetch_add(1, Relaxed);
        }
        // send_to_many encodes the rumour once, however many peers it goes to
        let peers = self.node.connected_addrs().into_iter();
        let sent = self
            .send_to_many(
                peers.filter(|&peer| Some(peer) != from),
                &Gossip::Rumour { id, body },
            )
            .await;
        if !sent.all_queued() {
            let failed = sent.len() - sent.queued();
            self.swarm.send_errors.fetch_add(failed as u64, Relaxed);
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(
        &[
            "nodes",
            "topology",
            "degree",
            "rumours",
            "listen",
            "join",
            "max-per-ip",
            "probe",
            "connections",
        ],
        "swarm [--nodes N] [--topology random|ring|mesh|line|star] [--degree D] [--rumours R]\n   \
         or: swarm --listen ADDR [--join SEED] [--max-per-ip N]\n   \
         or: swarm --probe ADDR --connections K",
    );
    if args.has("listen") {
        return member::run(&args).await;
    }
    if args.has("probe") {
        return member::probe(&args).await;
    }
    let nodes_n: usize = args.get("nodes", 300);
    let degree: usize = args.get("degree", 4);
    let rumours: usize = args.get("rumours", 2000);
    if rumours == 0 || rumours > MAX_RUMOURS {
        eprintln!("--rumours must be between 1 and {MAX_RUMOURS}");
        return ExitCode::FAILURE;
    }
    let topology = match args.get_str("topology", "random") {
        "random" => Topology::Random {
            degree,
            seed: 0x5eed,
        },
        "ring" => Topology::Ring,
        "mesh" => Topology::Mesh,
        "line" => Topology::Line,
        "star" => Topology::Star,
        other => {
            eprintln!("unknown topology {other:?}: use random, ring, mesh, line or star");
            return ExitCode::FAILURE;
        }
    };
    let expected = topology.num_expected_connections(nodes_n);
    let sockets = expected + nodes_n;
    if let Some(limit) = pea2pea_examples::open_file_limit()
        && (sockets + 64) as u64 > limit
    {
        eprintln!(
            "{nodes_n} nodes in a {topology:?} need about {sockets} sockets, but this process may \
             open {limit}; use fewer nodes or raise the limit (ulimit -n)"
        );
        return ExitCode::FAILURE;
    }

    println!("swarm: {nodes_n} nodes, {topology:?}, {rumours} rumours");
    let memory_before = resident_memory();
    let swarm = Arc::new(Swarm {
        rumours,
        ..Default::default()
    });
    let max_conns = u16::try_from(nodes_n.max(2 * degree + 16)).unwrap_or(u16::MAX);
    let mut nodes = Vec::with_capacity(nodes_n);
    for i in 0..nodes_n {
        let config = Config {
            name: Some(format!("n{i}")),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            max_connections: max_conns,
            max_connections_per_ip: max_conns, // every node is on 127.0.0.1
            ..Default::default()
        };
        let gossiper = Gossiper {
            node: Node::new(config),
            heard: (0..rumours).map(|_| AtomicBool::new(false)).collect(),
            num_heard: Default::default(),
            swarm: swarm.clone(),
        };
        if let Err(e) = gossiper.start().await {
            eprintln!("node {i} couldn't listen: {e}");
            return ExitCode::FAILURE;
        }
        nodes.push(gossiper);
    }

    let started = Instant::now();
    if let Err(e) = connect_nodes(&nodes, topology).await {
        eprintln!("couldn't form the topology: {e}");
        return ExitCode::FAILURE;
    }
    let settled = wait_until(Duration::from_secs(10), || {
        nodes.iter().map(|n| n.node.num_connected()).sum::<usize>() == expected
    })
    .await;
    if !settled {
        eprintln!("the topology did not settle within 10s");
        return ExitCode::FAILURE;
    }
    let memory_after = resident_memory();
    println!(
        "formed {} connections in {:.2?}",
        expected / 2,
        started.elapsed()
    );

    // each rumour starts at a different node
    let started = Instant::now();
    for id in 0..rumours {
        let origin = &nodes[(id * 7919) % nodes_n];
        origin
            .hear(id as u32, Bytes::from(format!("rumour #{id}")), None)
            .await;
    }

    let deadline = Duration::from_secs(60);
    let mut last_sent = 0;
    let mut last_tick = Instant::now();
    let converged = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let done = swarm.converged.load(Relaxed);
        let heard: usize = nodes.iter().map(|n| n.num_heard.load(Relaxed)).sum();
        let spread = 100.0 * heard as f64 / (nodes_n * rumours) as f64;
        let sent: u64 = nodes.iter().map(|n| n.node.stats().sent().0).sum();
        let rate = (sent - last_sent) as f64 / last_tick.elapsed().as_secs_f64();
        (last_sent, last_tick) = (sent, Instant::now());
        print!(
            "\r  rumours spread {spread:>5.1}%  |  nodes converged {done:>5}/{nodes_n}  |  \
             {sent:>9} messages  |  {rate:>9.0} msg/s   "
        );
        let _ = std::io::stdout().flush();
        if done == nodes_n {
            break true;
        }
        if started.elapsed() > deadline {
            break false;
        }
    };
    let elapsed = started.elapsed();
    println!();

    let (sent, bytes) = nodes.iter().fold((0, 0), |(m, b), n| {
        let (nm, nb) = n.node.stats().sent();
        (m + nm, b + nb)
    });
    let lost_connections = expected - nodes.iter().map(|n| n.node.num_connected()).sum::<usize>();
    let errors = swarm.send_errors.load(Relaxed) + lost_connections as u64;
    println!("summary");
    println!("  converged      {}", if converged { "yes" } else { "NO" });
    println!("  time           {elapsed:.2?}");
    println!(
        "  messages sent  {sent} ({bytes} bytes, {:.0} msg/s)",
        sent as f64 / elapsed.as_secs_f64()
    );
    match (memory_before, memory_after) {
        (Some(before), Some(after)) => println!(
            "  memory         {:.1} KiB per node, connections included ({} connections)",
            after.saturating_sub(before) as f64 / 1024.0 / nodes_n as f64,
            expected / 2
        ),
        _ => println!("  memory         n/a (no /proc on this system)"),
    }
    println!("  errors         {errors}");

    let shutdowns: Vec<_> = nodes.iter().map(|n| n.node.clone()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for node in shutdowns {
        tasks.spawn(async move { node.shut_down().await });
    }
    while tasks.join_next().await.is_some() {}

    if converged && errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
