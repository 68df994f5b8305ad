//! Builds each of the engine's fixed topologies — Line, Ring, Mesh, Star, Grid, Tree, Random —
//! out of a handful of nodes with `connect_nodes`, and reports every node's degree.
//!
//! ```text
//! cargo run --example fixed_topology -- [--nodes N]
//! ```
//!
//! Each node greets every peer it connects to (an `on_connect` hook), so the run also checks
//! that every link carries messages both ways: a node's greetings heard equal its degree.

use std::{
    collections::BTreeMap,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use pea2pea::{Config, Message, Node, Pea2Pea, Topology, connect_nodes, protocol};
use pea2pea_examples::{Args, wait_until};

#[derive(Message, Debug)]
struct Hello {
    index: u32,
}

#[pea2pea::node]
#[derive(Clone)]
struct Member {
    node: Node,
    index: u32,
    greetings: Arc<AtomicUsize>,
}

protocol! {
    Member speaks Hello {
        on Hello { index: _ } => { self.greetings.fetch_add(1, Relaxed); }
        on_connect(addr) => {
            // both ends greet, whichever one dialled
            let _ = self.send(addr, Hello { index: self.index }).await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(&["nodes"], "fixed_topology [--nodes N]");
    let n: usize = args.get("nodes", 12);
    if !(4..=150).contains(&n) {
        eprintln!("--nodes must be between 4 and 150");
        return ExitCode::FAILURE;
    }
    // the mesh needs the most sockets: one per connection end, plus the listeners
    let sockets = Topology::Mesh.num_expected_connections(n) + n + 64;
    match pea2pea_examples::raise_open_file_limit(sockets as u64) {
        Ok(limit) if limit >= sockets as u64 => {}
        Ok(limit) => {
            eprintln!(
                "{n} nodes in a mesh need about {sockets} open files, but this process may open \
                 only {limit} (the hard limit); use fewer nodes"
            );
            return ExitCode::FAILURE;
        }
        Err(e) => eprintln!("could not read or raise the open-file limit: {e}"),
    }
    // the grid closest to a square that has exactly n nodes
    let width = (1..=n)
        .filter(|&w| n.is_multiple_of(w) && w * w <= n)
        .max()
        .unwrap_or(1);
    let topologies = [
        Topology::Line,
        Topology::Ring,
        Topology::Mesh,
        Topology::Star,
        Topology::Grid {
            width,
            height: n / width,
        },
        Topology::Tree,
        Topology::Random { degree: 3, seed: 7 },
    ];

    println!("{n} nodes per topology; a node's degree is its number of connections");
    println!(
        "{:<18} {:>5}  {:<28} {:>6}",
        "topology", "links", "degree:nodes", "mean"
    );
    let mut all_ok = true;
    for topology in topologies {
        match build(topology, n).await {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("{:<18} FAILED: {e}", label(topology));
                all_ok = false;
            }
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Builds `topology` out of `n` fresh nodes and describes the result in one line.
async fn build(topology: Topology, n: usize) -> Result<String, String> {
    // every node is on 127.0.0.1, so the per-IP limit must admit a node's whole degree
    let limit = u16::try_from(n).unwrap_or(u16::MAX);
    let mut members = Vec::with_capacity(n);
    for index in 0..n {
        let member = Member {
            node: Node::new(Config {
                name: Some(format!("n{index}")),
                listener_addr: Some("127.0.0.1:0".parse().unwrap()),
                max_connections: limit,
                max_connections_per_ip: limit,
                ..Default::default()
            }),
            index: index as u32,
            greetings: Default::default(),
        };
        member.start().await.map_err(|e| e.to_string())?;
        members.push(member);
    }

    let result = async {
        connect_nodes(&members, topology)
            .await
            .map_err(|e| e.to_string())?;
        // connect returns once the dialler has registered; the other end follows shortly
        let expected = topology.num_expected_connections(n);
        let settled = wait_until(Duration::from_secs(10), || {
            let degrees: usize = members.iter().map(|m| m.node().num_connected()).sum();
            let greetings: usize = members.iter().map(|m| m.greetings.load(Relaxed)).sum();
            degrees == expected && greetings == expected
        })
        .await;
        if !settled {
            return Err(format!(
                "{expected} connection ends and greetings not reached in 10s"
            ));
        }

        let degrees: Vec<usize> = members.iter().map(|m| m.node().num_connected()).collect();
        let mut histogram = BTreeMap::new();
        for &d in &degrees {
            *histogram.entry(d).or_insert(0) += 1;
        }
        let histogram: Vec<String> = histogram
            .iter()
            .map(|(degree, count)| format!("{degree}:{count}"))
            .collect();
        Ok(format!(
            "{:<18} {:>5}  {:<28} {:>6.2}",
            label(topology),
            expected / 2,
            histogram.join(" "),
            expected as f64 / n as f64,
        ))
    }
    .await;

    for member in &members {
        member.node().shut_down().await;
    }
    result
}

fn label(topology: Topology) -> String {
    match topology {
        Topology::Grid { width, height } => format!("Grid {width}x{height}"),
        Topology::Random { degree, .. } => format!("Random (degree {degree})"),
        other => format!("{other:?}"),
    }
}
