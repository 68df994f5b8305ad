//! The namespace testbed: a swarm of member processes, each on a host of its own (a Linux
//! network namespace with its own address and TCP stack), on one bridge; then a partition,
//! a slow link and per-IP limits, with a summary. Run it through `scripts/testbed`, which
//! checks privileges, builds it, and verifies that the machine is left as it was.
//!
//! ```text
//! testbed --prefix NAME [--hosts N] [--swarm PATH] [--hole-punching PATH]
//! ```
//!
//! Everything it creates carries the prefix, and everything is removed on every exit path: at
//! the end, on an error, on a panic (the network's `Drop`), and on SIGINT or SIGTERM (the
//! scenario is abandoned, then the same cleanup runs). Traffic goes only to the hosts'
//! addresses, which exist nowhere but inside the namespaces it made.

mod hosts;
mod net;
mod scenarios;

use std::{path::PathBuf, process::ExitCode};

use pea2pea_examples::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::{hosts::Host, net::Net};

/// What the scenarios need to know.
pub struct Setup {
    pub swarm: PathBuf,
    pub hole_punching: Option<PathBuf>,
    /// `max_connections_per_ip` of every member.
    pub max_per_ip: u16,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(&["prefix", "hosts", "swarm", "hole-punching"]) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\nusage: testbed --prefix NAME [--hosts N] [--swarm PATH]");
            return ExitCode::from(2);
        }
    };
    let hosts: usize = args.get("hosts", 16);
    let prefix = args.get_str("prefix", "");
    if !(4..=250).contains(&hosts) {
        eprintln!("testbed: --hosts must be between 4 and 250");
        return ExitCode::from(2);
    }
    // a namespace name is a file name: keep it short and plain
    if prefix.is_empty() || prefix.len() > 24 || !prefix.chars().all(|c| c.is_ascii_alphanumeric())
    {
        eprintln!("testbed: --prefix must be 1 to 24 letters or digits");
        return ExitCode::from(2);
    }
    let examples = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("examples")))
        .unwrap_or_default();
    let path_or = |key: &str, default: &str| match args.get_str(key, "") {
        "" => examples.join(default),
        path => PathBuf::from(path),
    };
    let setup = Setup {
        swarm: path_or("swarm", "swarm"),
        hole_punching: Some(path_or("hole-punching", "hole_punching")).filter(|p| p.exists()),
        max_per_ip: 2,
    };
    if !setup.swarm.exists() {
        eprintln!(
            "testbed: no swarm program at {} (build it: cargo build --example swarm)",
            setup.swarm.display()
        );
        return ExitCode::from(2);
    }

    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("testbed: could not handle signals");
        return ExitCode::from(2);
    };
    let net = match Net::create(prefix, hosts) {
        Ok(net) => net,
        Err(e) => {
            eprintln!("testbed: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "testbed: {hosts} hosts, {}.1 to {}, namespaces {prefix}-h0..{prefix}-h{}, bridge in {prefix}-br",
        net::SUBNET,
        Net::addr(hosts - 1),
        hosts - 1
    );
    let mut members: Vec<Host> = Vec::new();
    let outcome = tokio::select! {
        outcome = scenarios::run(&net, &setup, &mut members) => outcome,
        _ = interrupt.recv() => Err("interrupted (SIGINT)".into()),
        _ = terminate.recv() => Err("terminated (SIGTERM)".into()),
    };
    for member in &mut members {
        member.stop().await;
    }
    drop(members);
    drop(net); // removes the namespaces, their links, and any process left in them
    match outcome {
        Ok(()) => {
            println!("  result        PASS (namespaces, links and processes removed)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("  result        FAIL: {e} (namespaces, links and processes removed)");
            ExitCode::FAILURE
        }
    }
}
