//! A hundred thousand connections to one port: listener sharding with `SO_REUSEPORT`, and
//! clients spread over several loopback source addresses.
//!
//! ```text
//! cargo run --release --example c100k -- [--connections N] [--shards S]
//! ```
//!
//! One node can hold at most 65 535 connections (`max_connections` is a `u16`), and one
//! source address can open at most one connection per ephemeral port to a given address and
//! port (28 232 with Linux's default `ip_local_port_range`). So the server is S nodes (shards)
//! bound to the *same* address and port with `reuse_listener_port`, among which the kernel
//! spreads incoming connections, and the clients dial from 127.0.0.2, 127.0.0.3, ... — as many
//! addresses as the port range needs — each client socket bound to its source before
//! `connect_using_socket`. Each client is a node of its own, in a child process (this program
//! with `--role clients`), so that the memory measured is the shards' alone: a node keeps one
//! connection per remote address, and every shard has the same one.
//!
//! Both processes need an open file per connection: they raise `RLIMIT_NOFILE` themselves (the
//! hard limit too when privileged) and say what they did; when the limit stays too low, the
//! run uses the connections that fit and says so. The system-wide settings that bound
//! such a run (`net.ipv4.ip_local_port_range`, `net.core.somaxconn`,
//! `net.ipv4.tcp_max_syn_backlog`, `net.netfilter.nf_conntrack_max`) are read and reported,
//! never changed. All waits are bounded.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    process::{ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
use pea2pea_examples::{Args, ensure_open_files, resident_memory, sysctl, wait_until};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines},
    net::TcpSocket,
    process::{Child, ChildStdout, Command},
    sync::Semaphore,
    task::JoinSet,
};

#[derive(Message, Debug)]
enum Msg {
    Hello,
    Broadcast(u16),
}

/// A shard of the server: one of the nodes listening on the shared port.
#[pea2pea::node]
#[derive(Clone)]
struct Shard {
    node: Node,
    hellos: Arc<AtomicUsize>,
}

protocol! {
    Shard speaks Msg over length_delimited(max_frame = 64 B) {
        // tiny messages: small buffers keep a connection cheap
        read_buffer = 256 B,
        write_buffer = 256 B,
        on Msg::Hello => { self.hellos.fetch_add(1, Relaxed); }
        on Msg::Broadcast(_) => {} // only shards broadcast
    }
}

/// A client: a node with one connection.
#[pea2pea::node]
#[derive(Clone)]
struct Client {
    node: Node,
    received: Arc<AtomicUsize>,
}

protocol! {
    Client speaks Msg over length_delimited(max_frame = 64 B) {
        read_buffer = 256 B,
        write_buffer = 256 B,
        on Msg::Broadcast(_) => { self.received.fetch_add(1, Relaxed); }
        on Msg::Hello => {}
    }
}

/// Files each process keeps open besides the connections.
const SPARE_FILES: u64 = 256;
/// How many clients dial at once.
const DIALLING: usize = 512;
/// How long any one phase may take.
const PHASE: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = match Args::parse(&["connections", "shards", "role", "target", "sources"]) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\nusage: c100k [--connections N] [--shards S]");
            return ExitCode::FAILURE;
        }
    };
    let n: usize = args.get("connections", 100_000);
    let shards: usize = args.get("shards", 4);
    if !(1..=1_000_000).contains(&n) || !(1..=64).contains(&shards) {
        eprintln!("--connections must be between 1 and 1000000, --shards between 1 and 64");
        return ExitCode::FAILURE;
    }
    let role = args.get_str("role", "server");
    let limit = match ensure_open_files(n as u64 + SPARE_FILES) {
        Ok(limit) => limit,
        Err(e) => {
            eprintln!("c100k: could not read the open-file limit: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{role}: {limit}");
    // like c10k: with too few files, run what fits and say so, rather than fail half-way
    let n = match limit.enough() {
        true => n,
        false => {
            let fit = limit.after.0.saturating_sub(SPARE_FILES).max(1) as usize;
            println!("{role}: using {fit} connections instead of {n}, to stay within the limit");
            fit
        }
    };
    let result = match role {
        "server" => server(n, shards).await,
        "clients" => match args.get_str("target", "").parse() {
            Ok(target) => clients(target, n, args.get("sources", 1)).await,
            Err(_) => Err(io::Error::other("--role clients needs --target ADDR")),
        },
        other => Err(io::Error::other(format!("unknown role {other:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("c100k: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The system's bounds on the run, read and reported; returns how many source addresses the
/// clients need.
fn system_limits(n: usize) -> usize {
    let ports = sysctl("net/ipv4/ip_local_port_range")
        .and_then(|range| {
            let (lo, hi) = range.split_once(' ')?;
            Some(hi.parse::<usize>().ok()? + 1 - lo.parse::<usize>().ok()?)
        })
        .unwrap_or(28_232);
    // leave a quarter of each address's ports free (ports in TIME_WAIT from earlier runs),
    // and use at least four addresses, so that small runs spread their clients too
    let sources = n.div_ceil(ports * 3 / 4).max(4);
    let show = |path: &str| sysctl(path).unwrap_or_else(|| "n/a".into());
    println!(
        "  system     ip_local_port_range {} ({ports} ports per source address: {sources} \
         source addresses for {n}), somaxconn {}, tcp_max_syn_backlog {}, nf_conntrack_max {} \
         (read, not changed)",
        show("net/ipv4/ip_local_port_range"),
        show("net/core/somaxconn"),
        show("net/ipv4/tcp_max_syn_backlog"),
        show("net/netfilter/nf_conntrack_max"),
    );
    sources
}

/// The server's side: shards on one port, the clients' process, the measurements.
async fn server(n: usize, shards: usize) -> io::Result<()> {
    let sources = system_limits(n);
    if sources > 250 {
        return Err(io::Error::other("too many source addresses needed"));
    }
    // each shard can take a good share more than its even part: the kernel's spread is a hash
    let per_shard = u16::try_from((n / shards) * 3 / 2 + 64).unwrap_or(u16::MAX);
    if (per_shard as usize) * shards < n {
        return Err(io::Error::other(format!(
            "{n} connections over {shards} shards is more than 65535 per shard; use more shards"
        )));
    }
    let memory_before = resident_memory();
    let mut nodes: Vec<Shard> = Vec::with_capacity(shards);
    let mut addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    for i in 0..shards {
        let shard = Shard {
            node: Node::new(Config {
                name: Some(format!("shard {i}")),
                listener_addr: Some(addr),
                reuse_listener_port: true,
                listener_backlog: 4096,
                max_connections: per_shard,
                max_connections_per_ip: per_shard,
                max_connecting: 512,
                ..Default::default()
            }),
            hellos: Default::default(),
        };
        addr = shard.start().await?; // the first picks the port; the others share it
        nodes.push(shard);
    }
    println!("  shards     {shards} nodes listening on {addr} with SO_REUSEPORT");

    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--role", "clients", "--target", &addr.to_string()])
        .args([
            "--connections",
            &n.to_string(),
            "--sources",
            &sources.to_string(),
        ])
        .stdin(Stdio::piped()) // never written: the child exits when this process ends
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut reports = BufReader::new(child.stdout.take().expect("piped")).lines();
    let result = measure(&nodes, n, &mut reports, memory_before).await;
    if result.is_err() {
        for shard in &nodes {
            shard.node().shut_down().await;
        }
    }
    finish(&mut child, &mut reports).await;
    result
}

async fn measure(
    nodes: &[Shard],
    n: usize,
    reports: &mut Lines<BufReader<ChildStdout>>,
    memory_before: Option<u64>,
) -> io::Result<()> {
    expect(reports, "dialling").await?;
    let connected = || {
        nodes
            .iter()
            .map(|s| s.node().num_connected())
            .sum::<usize>()
    };
    let hellos = || nodes.iter().map(|s| s.hellos.load(Relaxed)).sum::<usize>();
    let started = Instant::now();
    let all_up = wait_until(PHASE, || connected() == n && hellos() == n).await;
    let setup = started.elapsed();
    let dialled = expect(reports, "connected").await?;
    if !all_up {
        return Err(io::Error::other(format!(
            "after {PHASE:?} only {} of {n} connections were up (clients: {dialled})",
            connected()
        )));
    }
    let spread: Vec<_> = nodes.iter().map(|s| s.node().num_connected()).collect();
    println!(
        "  setup      {n} connections, each with a hello handled, in {setup:.2?}: {:.0} connections/s",
        n as f64 / setup.as_secs_f64()
    );
    println!("  spread     connections per shard: {spread:?}");
    match (memory_before, resident_memory()) {
        (Some(before), Some(after)) => println!(
            "  memory     {:.1} KiB per connection on the server side (resident memory grew {:.1} MiB)",
            after.saturating_sub(before) as f64 / 1024.0 / n as f64,
            after.saturating_sub(before) as f64 / 1048576.0
        ),
        _ => println!("  memory     n/a (no /proc on this system)"),
    }

    let started = Instant::now();
    let mut not_queued = 0;
    for (i, shard) in nodes.iter().enumerate() {
        let peers = shard.node().connected_addrs();
        not_queued += shard.send_to_many(peers, &Msg::Broadcast(i as u16)).len();
    }
    expect(reports, "received").await?;
    println!(
        "  broadcast  each shard to its clients: all {n} received in {:.2?} ({not_queued} not queued)",
        started.elapsed()
    );

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for shard in nodes {
        let node = shard.node().clone();
        tasks.spawn(async move { node.shut_down().await });
    }
    while tasks.join_next().await.is_some() {}
    println!(
        "  shutdown   {n} connections closed in {:.2?}",
        started.elapsed()
    );
    let rejected: u64 = nodes
        .iter()
        .map(|s| s.node().heuristics().inbound_connections_rejected())
        .sum();
    if rejected > 0 {
        println!("  (inbound connections rejected by the shards: {rejected})");
    }
    Ok(())
}

/// Waits (at most `PHASE`) for the clients' report line that starts with `what`.
async fn expect(reports: &mut Lines<BufReader<ChildStdout>>, what: &str) -> io::Result<String> {
    loop {
        let line = tokio::time::timeout(PHASE, reports.next_line()).await;
        match line {
            // the child's own lines about its limits are passed through
            Ok(Ok(Some(line))) if line.starts_with("clients:") => println!("{line}"),
            Ok(Ok(Some(line))) if line.starts_with(what) => return Ok(line),
            Ok(Ok(Some(line))) => {
                return Err(io::Error::other(format!("the clients said {line:?}")));
            }
            Ok(Ok(None)) => return Err(io::Error::other("the clients' process ended early")),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(io::Error::other(format!(
                    "no {what:?} from the clients in time"
                )));
            }
        }
    }
}

/// Closes the child's input, so that it ends; kills it if it has not within 30 s.
async fn finish(child: &mut Child, reports: &mut Lines<BufReader<ChildStdout>>) {
    drop(child.stdin.take());
    let drained = async { while let Ok(Some(_)) = reports.next_line().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(30), drained).await;
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// The clients' side: `n` client nodes, each dialling `target` once from one of `sources`
/// loopback addresses (127.0.0.2 and up), saying hello, and counting the broadcast.
async fn clients(target: SocketAddr, n: usize, sources: usize) -> io::Result<()> {
    println!("dialling");
    let received = Arc::new(AtomicUsize::new(0));
    let dialling = Arc::new(Semaphore::new(DIALLING));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let permit = dialling
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % sources) as u8));
        let client = Client {
            node: Node::new(Config {
                listener_addr: None,
                max_connections: 1,
                ..Default::default()
            }),
            received: received.clone(),
        };
        tasks.spawn(async move {
            let _permit = permit;
            client.enable_protocols().await;
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source, 0))?;
            client.node().connect_using_socket(target, socket).await?;
            client.send_fast(target, Msg::Hello)?;
            Ok::<_, io::Error>(client)
        });
    }
    let mut held = Vec::with_capacity(n);
    let mut failures = 0;
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok(client)) => held.push(client),
            _ => failures += 1,
        }
    }
    println!("connected {} dialled, {failures} failed", held.len());
    let all = wait_until(PHASE, || received.load(Relaxed) == held.len()).await;
    println!(
        "received {} broadcasts{}",
        received.load(Relaxed),
        if all { "" } else { " (timed out)" }
    );
    // hold every connection until the server is done: it closes this process's input then
    let _ = tokio::io::stdin().read(&mut [0u8; 1]).await;
    // the process ends here; the kernel closes what is left
    drop(held);
    Ok(())
}
