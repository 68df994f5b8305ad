//! A dense mesh: N nodes in one process, every one connected to every other, and what that
//! costs in memory per node and per connection.
//!
//! ```text
//! cargo run --release --example dense_mesh -- [--nodes N]
//! ```
//!
//! Memory is the process's resident set size (RSS, from /proc/self/statm), read at each step:
//! after creating and starting the nodes (per node), after the mesh is formed (per connection;
//! both ends are in this process, so per end is half), and after one message crossed every
//! connection each way (read and write buffers are made when first needed). A counting global
//! allocator would be more exact, but implementing `GlobalAlloc` takes `unsafe`, which this
//! workspace forbids; RSS also shows what the allocator keeps. Kernel socket buffers are not in
//! either figure. A mesh of N nodes holds N*(N-1) sockets plus N listeners, all open files of
//! this process: it raises its open-file limit itself, or says why it cannot and stops.

use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use pea2pea::{Config, Message, Node, Pea2Pea, Topology, connect_nodes, protocol};
use pea2pea_examples::{Args, ensure_open_files, resident_memory, wait_until};

#[derive(Message, Debug)]
enum Mesh {
    Hello(u32),
}

#[pea2pea::node]
#[derive(Clone)]
struct Meshed {
    node: Node,
    hellos: Arc<AtomicU64>,
}

protocol! {
    Meshed speaks Mesh over length_delimited(max_frame = 1 KiB) {
        on Mesh::Hello(_) => { self.hellos.fetch_add(1, Relaxed); }
    }
}

/// Files the process needs besides the mesh (stdio, the runtime).
const SPARE_FILES: u64 = 64;

fn kib(bytes: u64, per: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0 / per.max(1) as f64)
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(&["nodes"], "dense_mesh [--nodes N]");
    let n: usize = args.get("nodes", 100);
    if !(2..=1000).contains(&n) {
        eprintln!("--nodes must be between 2 and 1000");
        return ExitCode::FAILURE;
    }
    let connections = (n * (n - 1) / 2) as u64;
    let needed = 2 * connections + n as u64 + SPARE_FILES;
    match ensure_open_files(needed) {
        Ok(limit) if limit.enough() => {
            println!("dense_mesh: {n} nodes, {connections} connections; {limit}")
        }
        Ok(limit) => {
            eprintln!("dense_mesh: {limit}; use fewer nodes");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("dense_mesh: could not read the open-file limit ({e})");
            return ExitCode::FAILURE;
        }
    }
    if resident_memory().is_none() {
        eprintln!(
            "dense_mesh: no /proc/self/statm here, so no memory figures; it measures on Linux"
        );
        return ExitCode::FAILURE;
    }
    let rss = || resident_memory().unwrap_or(0);

    let empty = rss();
    let limit = u16::try_from(n + 16).unwrap_or(u16::MAX);
    let hellos = Arc::new(AtomicU64::new(0));
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let meshed = Meshed {
            node: Node::new(Config {
                name: Some(format!("m{i}")),
                listener_addr: Some("127.0.0.1:0".parse().unwrap()),
                listener_backlog: 1024,
                max_connections: limit,
                max_connections_per_ip: limit, // all on 127.0.0.1
                ..Default::default()
            }),
            hellos: hellos.clone(),
        };
        if let Err(e) = meshed.start().await {
            eprintln!("dense_mesh: node {i} could not listen: {e}");
            return ExitCode::FAILURE;
        }
        nodes.push(meshed);
    }
    let with_nodes = rss();
    println!(
        "  nodes        {} per node, listening, no connections",
        kib(with_nodes.saturating_sub(empty), n as u64)
    );

    let started = Instant::now();
    let formed = match connect_nodes(&nodes, Topology::Mesh).await {
        Ok(()) => {
            let all = 2 * connections as usize;
            wait_until(Duration::from_secs(60), || {
                nodes
                    .iter()
                    .map(|m| m.node().num_connected())
                    .sum::<usize>()
                    == all
            })
            .await
        }
        Err(e) => {
            eprintln!("dense_mesh: could not form the mesh: {e}");
            false
        }
    };
    let meshed = rss();
    if formed {
        println!(
            "  mesh         formed in {:.2?}; {} per connection, {} per end, idle",
            started.elapsed(),
            kib(meshed.saturating_sub(with_nodes), connections),
            kib(meshed.saturating_sub(with_nodes), 2 * connections),
        );

        // one message each way over every connection: buffers are made on first use
        for meshed in &nodes {
            let peers = meshed.node().connected_addrs();
            let sent = meshed.send_to_many(peers, &Mesh::Hello(0)).await;
            if !sent.all_queued() {
                let failed = sent.len() - sent.queued();
                eprintln!("dense_mesh: {failed} hellos not queued");
            }
        }
        let all_heard = wait_until(Duration::from_secs(60), || {
            hellos.load(Relaxed) == 2 * connections
        })
        .await;
        let used = rss();
        println!(
            "  after hello  {} per connection, {} per end, once a message crossed each way{}",
            kib(used.saturating_sub(with_nodes), connections),
            kib(used.saturating_sub(with_nodes), 2 * connections),
            if all_heard {
                ""
            } else {
                " (NOT all hellos arrived)"
            }
        );
        println!(
            "  in all       {:.1} MiB resident for {n} nodes: {} per node, connections included",
            used as f64 / 1048576.0,
            kib(used.saturating_sub(empty), n as u64)
        );
    }

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for meshed in &nodes {
        let node = meshed.node().clone();
        tasks.spawn(async move { node.shut_down().await });
    }
    while tasks.join_next().await.is_some() {}
    println!("  shutdown     {n} nodes in {:.2?}", started.elapsed());
    if formed && hellos.load(Relaxed) == 2 * connections {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
