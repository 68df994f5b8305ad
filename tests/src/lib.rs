//! Shared helpers for pea2pea's integration tests.
//!
//! The tests in `tests/tests/*.rs` prove the engine's behaviour item by item: the ids such as
//! `CONN-08` are entries of `BEHAVIOUR.md` at the repository root (`catalogue.rs` checks that
//! each cited id has one). They only use the engine's public API and real loopback sockets.
//! Everything a test waits for is bounded by a deadline: use [`wait_until`]
//! (or [`wait_for_connections`]) to poll a condition, and keep plain sleeps for proving that
//! something does *not* happen during a window.
//!
//! The helpers, all here (`tests/README.md` says which suite covers what):
//! - [`wait`]: bounded polling ([`wait_until`] and its variants, [`bounded`]) and
//!   view-consistency checks;
//! - [`codec`]: [`TestCodec`], the 2-byte big-endian length-delimited codec the engine suites'
//!   nodes speak;
//! - [`nodes`]: reusable node types ([`FullNoopNode`], [`Peer`], [`GatedNode`]) and [`Gate`];
//! - [`chat`]: the reliability suites' target, a node speaking a derived `Chat` protocol over a
//!   choice of framings;
//! - [`fuzz_types`]: derived message types and the properties the fuzz targets and
//!   `fuzz_props` check (the fuzz crate includes this file by path);
//! - [`raw`]: plain tokio sockets acting as peers that the engine does not control, from any
//!   127.0.0.x source;
//! - [`gauges`]: open file descriptors, live tasks and live heap bytes;
//! - [`rng`]: [`Rng`], a seeded generator for randomized suites;
//! - [`logs`]: [`LogCapture`], the lines a user's `fmt` subscriber prints at a given level;
//! - [`xor`]: [`XorStream`], a stand-in for an encrypted stream wrapper.

pub mod chat;
pub mod codec;
pub mod fuzz_types;
pub mod gauges;
pub mod logs;
pub mod nodes;
pub mod raw;
pub mod rng;
pub mod wait;
pub mod xor;

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
};

use pea2pea::{Config, Node, protocols::Writing};

pub use codec::{TestCodec, frame};
pub use gauges::{alive_tasks, live_bytes, open_fds};
pub use logs::LogCapture;
pub use nodes::{FullNoopNode, Gate, GatedNode, Peer, PeerState};
pub use raw::{
    assert_closed_within, closed_within, loopback_ip, raw_connect, raw_connect_from,
    socket_bound_to, try_socket_bound_to,
};
pub use rng::{Rng, seed_from_env};
pub use wait::{
    assert_consistent, bounded, poll_until, wait_for_connections, wait_until, wait_until_10s,
    wait_until_desc,
};
pub use xor::XorStream;

/// The loopback address every test listener binds to, with an OS-assigned port.
pub const LOCALHOST_ANY_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// The config most tests start from: [`Config::loopback`] (listen on `127.0.0.1:0`, 100
/// connections per IP, since every peer in a test shares 127.0.0.1), named explicitly rather
/// than inherited from the `test` feature's `Default`.
pub fn test_config() -> Config {
    Config::loopback()
}

/// Turns the node's listener on and returns the bound address; panics if that fails.
pub async fn start_listening(node: &Node) -> SocketAddr {
    node.toggle_listener()
        .await
        .expect("toggle_listener failed")
        .expect("toggle_listener turned the listener off instead of on")
}

/// Unicasts `msg` and awaits its delivery confirmation (the message was flushed to the socket).
///
/// Errors if the message could not be queued or its batch failed. Panics if the confirmation
/// channel was dropped: a send that was queued successfully must always resolve its confirmation
/// unless the connection was torn down, and the tests that use this helper never tear it down.
pub async fn send_dm<W: Writing>(w: &W, addr: SocketAddr, msg: W::Message) -> io::Result<()> {
    w.unicast(addr, msg)?
        .await
        .expect("the delivery confirmation channel was dropped")
}

/// Shuts all the given nodes down concurrently.
pub async fn shut_down_all<'a>(nodes: impl IntoIterator<Item = &'a Node>) {
    let handles: Vec<_> = nodes
        .into_iter()
        .map(|n| {
            let n = n.clone();
            tokio::spawn(async move { n.shut_down().await })
        })
        .collect();
    for h in handles {
        h.await.expect("shut_down panicked");
    }
}

/// A copy of the six node-level heuristics counters, comparable as a whole (STAT-05).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeuristicsSnapshot {
    pub connect_budget_rejections: u64,
    pub inbound_connections_rejected: u64,
    pub accept_errors: u64,
    pub handshake_timeouts: u64,
    pub idle_timeouts: u64,
    pub write_timeouts: u64,
}

impl HeuristicsSnapshot {
    /// Reads all six counters of `node`.
    pub fn of(node: &Node) -> Self {
        let h = node.heuristics();
        Self {
            connect_budget_rejections: h.connect_budget_rejections(),
            inbound_connections_rejected: h.inbound_connections_rejected(),
            accept_errors: h.accept_errors(),
            handshake_timeouts: h.handshake_timeouts(),
            idle_timeouts: h.idle_timeouts(),
            write_timeouts: h.write_timeouts(),
        }
    }
}

/// Creates `n` [`FullNoopNode`]s (no protocol enabled) from `config`, each already listening;
/// handy for `connect_nodes`, which needs `Pea2Pea` implementors.
pub async fn listening_nodes(n: usize, config: Config) -> Vec<FullNoopNode> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        let node = FullNoopNode::new(config.clone());
        start_listening(&node.node).await;
        nodes.push(node);
    }
    nodes
}
