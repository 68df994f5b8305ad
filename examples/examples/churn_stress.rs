//! Connection churn: connections to one hub opened and closed as fast as they go for a while,
//! then a check that every `on_connect` was paired with an `on_disconnect` on both sides and
//! that no file descriptor was left behind, with the memory before and after.
//!
//! ```text
//! cargo run --release --example churn_stress -- [--workers W] [--seconds S]
//! ```
//!
//! Each worker is a client node that, in a loop, dials the hub from a loopback address of its
//! own (127.0.0.10 and up, so that the churn does not run out of ephemeral ports on one
//! address), says one thing, and ends the connection — by disconnecting itself, or by asking
//! the hub to do it (every second cycle), so that both sides close first half the time. A hub
//! that is still tearing down a worker's previous connection may refuse the next one from the
//! same address (`max_connections_per_ip`): that is counted, not hidden.
//!
//! `on_connect` is written by hand beside the DSL, for one setting: `OnConnect::ABORTABLE`.
//! By default a disconnect may cancel an `on_connect` that has not run yet, which is cheap
//! but breaks the pairing a resource count needs (a churn run shows hundreds of unpaired
//! `on_disconnect`s); with `ABORTABLE = false`, every `on_connect` runs to completion and
//! pairs with exactly one `on_disconnect`, which is what this run checks.

use std::{
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol, protocols::OnConnect};
use pea2pea_examples::{Args, resident_memory, wait_until};
use tokio::{net::TcpSocket, task::JoinSet};

#[derive(Message, Debug)]
enum Churn {
    /// A word on a fresh connection.
    Hi,
    /// Asks the hub to close this connection.
    CloseMe,
}

/// How many times a side's hooks ran.
#[derive(Default)]
struct Hooks {
    connects: AtomicU64,
    disconnects: AtomicU64,
}

impl Hooks {
    fn counts(&self) -> (u64, u64) {
        (self.connects.load(Relaxed), self.disconnects.load(Relaxed))
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Hub {
    node: Node,
    hooks: Arc<Hooks>,
}

protocol! {
    Hub speaks Churn over length_delimited(max_frame = 64 B) {
        on Churn::Hi => {}
        on Churn::CloseMe from addr => { self.node.disconnect(addr).await; }
        on_disconnect(_) => { self.hooks.disconnects.fetch_add(1, Relaxed); }
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Worker {
    node: Node,
    hooks: Arc<Hooks>,
}

protocol! {
    Worker speaks Churn over length_delimited(max_frame = 64 B) {
        on _ => {}
        on_disconnect(_) => { self.hooks.disconnects.fetch_add(1, Relaxed); }
    }
}

// Every on_connect runs, however soon the connection closes (see the module's doc).
impl OnConnect for Hub {
    const ABORTABLE: bool = false;

    async fn on_connect(&self, _addr: SocketAddr) {
        self.hooks.connects.fetch_add(1, Relaxed);
    }
}

impl OnConnect for Worker {
    const ABORTABLE: bool = false;

    async fn on_connect(&self, _addr: SocketAddr) {
        self.hooks.connects.fetch_add(1, Relaxed);
    }
}

/// What the workers did, all together.
#[derive(Default)]
struct Tally {
    cycles: AtomicU64,
    connect_errors: AtomicU64,
}

/// The number of open file descriptors of this process (Linux).
fn open_files() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

impl Worker {
    /// Opens and closes connections to `hub` from `ip` until `until`.
    async fn churn(self, hub: SocketAddr, ip: std::net::IpAddr, until: Instant, tally: Arc<Tally>) {
        let mut cycle = 0u64;
        while Instant::now() < until {
            cycle += 1;
            if let Err(e) = self.cycle(hub, ip, cycle.is_multiple_of(2)).await {
                tally.connect_errors.fetch_add(1, Relaxed);
                tracing::debug!("cycle failed: {e}");
            } else {
                tally.cycles.fetch_add(1, Relaxed);
            }
        }
    }

    async fn cycle(
        &self,
        hub: SocketAddr,
        ip: std::net::IpAddr,
        hub_closes: bool,
    ) -> io::Result<()> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(ip, 0))?;
        self.node.connect_using_socket(hub, socket).await?;
        self.send(hub, Churn::Hi).await?;
        if hub_closes {
            self.send(hub, Churn::CloseMe).await?;
            let closed = wait_until(Duration::from_secs(5), || !self.node.is_connected(hub)).await;
            if !closed {
                self.node.disconnect(hub).await;
            }
        } else {
            self.node.disconnect(hub).await;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(
        &["workers", "seconds"],
        "churn_stress [--workers W] [--seconds S]",
    );
    let workers: usize = args.get("workers", 16);
    let seconds: f64 = args.get("seconds", 5.0);
    if !(1..=200).contains(&workers) || seconds <= 0.0 {
        eprintln!("--workers must be between 1 and 200, --seconds above 0");
        return ExitCode::FAILURE;
    }
    match run(workers, Duration::from_secs_f64(seconds)).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("churn_stress: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(workers: usize, duration: Duration) -> io::Result<bool> {
    let hub = Hub {
        node: Node::new(Config {
            name: Some("hub".into()),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            listener_backlog: 1024,
            max_connections: 1024,
            max_connections_per_ip: 4,
            ..Default::default()
        }),
        hooks: Default::default(),
    };
    // the declared protocols, then the hand-written on_connect, then the listener
    hub.enable_protocols().await;
    hub.enable_on_connect().await;
    let hub_addr = hub
        .node()
        .toggle_listener()
        .await?
        .expect("was not listening");
    let worker_hooks = Arc::new(Hooks::default());
    let mut nodes = Vec::with_capacity(workers);
    for i in 0..workers {
        let worker = Worker {
            node: Node::new(Config {
                name: Some(format!("worker {i}")),
                listener_addr: None,
                ..Default::default()
            }),
            hooks: worker_hooks.clone(),
        };
        worker.enable_protocols().await;
        worker.enable_on_connect().await;
        nodes.push(worker);
    }
    println!(
        "churn_stress: {workers} workers open and close connections to a hub on {hub_addr} for \
         {duration:.1?} (the hub closes every second one)"
    );
    let (files_before, memory_before) = (open_files(), resident_memory());

    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let until = started + duration;
    let mut tasks = JoinSet::new();
    for (i, worker) in nodes.iter().enumerate() {
        let ip = std::net::Ipv4Addr::new(127, 0, 0, 10 + (i % 200) as u8).into();
        tasks.spawn(worker.clone().churn(hub_addr, ip, until, tally.clone()));
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();

    // every connection is gone once each side's hooks are paired and nothing is connected
    let settled = wait_until(Duration::from_secs(10), || {
        let (hc, hd) = hub.hooks.counts();
        let (wc, wd) = worker_hooks.counts();
        hc == hd && wc == wd && hub.node().num_connected() == 0
    })
    .await;
    let (files_after, memory_after) = (open_files(), resident_memory());

    let cycles = tally.cycles.load(Relaxed);
    let (hub_connects, hub_disconnects) = hub.hooks.counts();
    let (worker_connects, worker_disconnects) = worker_hooks.counts();
    let refused = hub.node().heuristics().inbound_connections_rejected();
    let paired = |c: u64, d: u64| if c == d { "paired" } else { "NOT PAIRED" };
    println!(
        "  cycles      {cycles} in {elapsed:.2?} ({:.0}/s); failed cycles {}; refused by the hub \
         (previous connection from that address still being torn down) {refused}",
        cycles as f64 / elapsed.as_secs_f64(),
        tally.connect_errors.load(Relaxed)
    );
    println!(
        "  hub         on_connect {hub_connects}, on_disconnect {hub_disconnects} ({}), connected now {}",
        paired(hub_connects, hub_disconnects),
        hub.node().num_connected()
    );
    println!(
        "  workers     on_connect {worker_connects}, on_disconnect {worker_disconnects} ({})",
        paired(worker_connects, worker_disconnects)
    );
    let show = |v: Option<usize>| v.map_or("n/a".into(), |v| v.to_string());
    println!(
        "  open files  {} before, {} after",
        show(files_before),
        show(files_after)
    );
    let mib =
        |v: Option<u64>| v.map_or("n/a".into(), |v| format!("{:.1} MiB", v as f64 / 1048576.0));
    println!(
        "  memory      {} before, {} after (resident; the allocator keeps some of what it freed)",
        mib(memory_before),
        mib(memory_after)
    );

    for worker in &nodes {
        worker.node().shut_down().await;
    }
    hub.node().shut_down().await;
    Ok(settled && cycles > 0 && files_before == files_after)
}
