//! Ten thousand connections to one node: how fast they are set up, what each one costs in
//! memory, and how long it takes to message them all and to shut them down.
//!
//! ```text
//! cargo run --release --example c10k -- [--connections N]
//! ```
//!
//! The node runs in this process; the clients run in a child process (this same program, with
//! `--role clients`), so that the memory measured is the node's alone. Each client is a plain
//! tokio socket that writes one length-delimited `Hello`, waits for the node's broadcast, and
//! holds its connection until the node shuts down. Every socket is an open file in each
//! process: both raise their soft open-file limit as far as the hard limit allows, and when
//! that is not enough the run says so and uses fewer connections. All waits are bounded.
//!
//! The node uses the default buffer sizes. Its messages being tiny, a real hub of this kind
//! would shrink them (`read_buffer = 1 KiB, write_buffer = 1 KiB` in `protocol!`), which
//! lowers the memory per connection by a few KiB.

use std::{
    io,
    net::SocketAddr,
    process::{ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use pea2pea::{Config, Message, Node, Pea2Pea, codec::MessageCodec, protocol};
use pea2pea_examples::{Args, resident_memory, wait_until};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, ChildStdout, Command},
    sync::Semaphore,
    task::JoinSet,
};
use tokio_util::codec::Encoder;

#[derive(Message, Debug)]
enum Msg {
    Hello { client: u32 },
    Broadcast(String),
}

#[pea2pea::node]
#[derive(Clone)]
struct Hub {
    node: Node,
    hellos: Arc<AtomicUsize>,
}

protocol! {
    Hub speaks Msg over length_delimited(max_frame = 1 KiB) {
        on Msg::Hello { .. } => { self.hellos.fetch_add(1, Relaxed); }
        on Msg::Broadcast(_) => {} // only the hub broadcasts
    }
}

/// Sockets each process keeps open besides the connections (stdio, the runtime, the listener).
const SPARE_FILES: u64 = 256;
/// How many clients dial at once.
const DIALLING: usize = 256;

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(&["connections", "role", "target"], "c10k [--connections N]");
    let wanted: u64 = args.get("connections", 10_000);
    if !(1..=60_000).contains(&wanted) {
        eprintln!("--connections must be between 1 and 60000");
        return ExitCode::FAILURE;
    }
    let connections = match pea2pea_examples::raise_open_file_limit(wanted + SPARE_FILES) {
        Ok(limit) if limit >= wanted + SPARE_FILES => wanted,
        Ok(limit) => {
            let fit = limit.saturating_sub(SPARE_FILES).max(1);
            eprintln!(
                "c10k: this process may open only {limit} files (its hard limit), too few for \
                 {wanted} connections; using {fit}. To run them all, raise the hard limit \
                 (`ulimit -Hn {}` as root, or `nofile` in /etc/security/limits.conf).",
                wanted + SPARE_FILES
            );
            fit
        }
        Err(e) => {
            eprintln!("c10k: could not read or raise the open-file limit ({e}); trying anyway");
            wanted
        }
    } as usize;

    let result = match args.get_str("role", "hub") {
        "hub" => hub(connections).await,
        "clients" => match args.get_str("target", "").parse() {
            Ok(target) => clients(target, connections).await,
            Err(_) => Err(io::Error::other("--role clients needs --target ADDR")),
        },
        other => Err(io::Error::other(format!("unknown role {other:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("c10k: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The node's side: listen, measure, broadcast, shut down.
async fn hub(n: usize) -> io::Result<()> {
    let limit = u16::try_from(n + 16).unwrap_or(u16::MAX);
    let hub = Hub {
        node: Node::new(Config {
            name: Some("hub".into()),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            listener_backlog: 4096,
            max_connections: limit,
            max_connections_per_ip: limit, // every client is on 127.0.0.1
            max_connecting: 512,
            ..Default::default()
        }),
        hellos: Default::default(),
    };
    let addr = hub.start().await?;
    let memory_before = resident_memory();
    println!("c10k: {n} connections to one node on {addr}, from a child process");

    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--role", "clients", "--target", &addr.to_string()])
        .args(["--connections", &n.to_string()])
        .stdin(Stdio::piped()) // never written: the child exits if this process dies
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut reports = BufReader::new(child.stdout.take().expect("piped")).lines();

    let result = measure(&hub, n, &mut reports, memory_before).await;
    if result.is_err() {
        hub.node().shut_down().await;
    }
    finish(&mut child, &mut reports).await;
    result
}

async fn measure(
    hub: &Hub,
    n: usize,
    reports: &mut tokio::io::Lines<BufReader<ChildStdout>>,
    memory_before: Option<u64>,
) -> io::Result<()> {
    expect(reports, "dialling").await?;
    let started = Instant::now();
    let all_up = wait_until(Duration::from_secs(60), || {
        hub.node().num_connected() == n && hub.hellos.load(Relaxed) == n
    })
    .await;
    let setup = started.elapsed();
    let dialled = expect(reports, "connected").await?;
    if !all_up {
        return Err(io::Error::other(format!(
            "after 60s only {} of {n} connections were up (clients: {dialled})",
            hub.node().num_connected()
        )));
    }
    println!(
        "  setup      {n} connections, each with a hello handled, in {setup:.2?}: {:.0} connections/s",
        n as f64 / setup.as_secs_f64()
    );
    match (memory_before, resident_memory()) {
        (Some(before), Some(after)) => println!(
            "  memory     {:.1} KiB per connection (the node's resident memory grew {:.1} MiB)",
            after.saturating_sub(before) as f64 / 1024.0 / n as f64,
            after.saturating_sub(before) as f64 / 1024.0 / 1024.0
        ),
        _ => println!("  memory     n/a (no /proc on this system)"),
    }

    let started = Instant::now();
    let peers = hub.node().connected_addrs();
    let sent = hub
        .send_to_many(peers, &Msg::Broadcast("hello, everyone".into()))
        .await;
    expect(reports, "received").await?;
    println!(
        "  broadcast  one message to {n} peers, all received in {:.2?} ({} not queued)",
        started.elapsed(),
        sent.len() - sent.queued()
    );

    let started = Instant::now();
    hub.node().shut_down().await;
    println!(
        "  shutdown   {n} connections closed in {:.2?}",
        started.elapsed()
    );
    let heuristics = hub.node().heuristics();
    if heuristics.accept_errors() + heuristics.inbound_connections_rejected() > 0 {
        println!(
            "  (accept errors {}, inbound connections rejected {})",
            heuristics.accept_errors(),
            heuristics.inbound_connections_rejected()
        );
    }
    Ok(())
}

/// Waits (at most 60 s) for the child's report line that starts with `what`.
async fn expect(
    reports: &mut tokio::io::Lines<BufReader<ChildStdout>>,
    what: &str,
) -> io::Result<String> {
    let line = tokio::time::timeout(Duration::from_secs(60), reports.next_line()).await;
    match line {
        Ok(Ok(Some(line))) if line.starts_with(what) => Ok(line),
        Ok(Ok(Some(line))) => Err(io::Error::other(format!("the clients said {line:?}"))),
        Ok(Ok(None)) => Err(io::Error::other("the clients' process ended early")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::other(format!(
            "no {what:?} from the clients in 60s"
        ))),
    }
}

/// Lets the child see the node go away and exit; kills it if it does not within 10 s.
async fn finish(child: &mut Child, reports: &mut tokio::io::Lines<BufReader<ChildStdout>>) {
    drop(child.stdin.take());
    let drained = async { while let Ok(Some(_)) = reports.next_line().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(10), drained).await;
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// The clients' side: dial `n` connections, say hello on each, count the broadcasts, and
/// hold on until the node closes them (or this process's stdin closes).
async fn clients(target: SocketAddr, n: usize) -> io::Result<()> {
    let mut hello = bytes::BytesMut::new();
    println!("dialling");
    let dialling = Arc::new(Semaphore::new(DIALLING));
    let received = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for client in 0..n as u32 {
        let permit = dialling
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        hello.clear();
        MessageCodec::<Msg>::new().encode(Msg::Hello { client }, &mut hello)?;
        let hello = hello.clone().freeze();
        let received = received.clone();
        tasks.spawn(async move {
            let mut socket = TcpStream::connect(target).await?;
            socket.write_all(&hello).await?;
            drop(permit);
            // a 4-byte length, then the broadcast
            let len = socket.read_u32().await? as usize;
            let mut body = vec![0u8; len.min(1024)];
            socket.read_exact(&mut body).await?;
            received.fetch_add(1, Relaxed);
            // hold the connection until the node closes it
            let _ = socket.read(&mut [0u8; 1]).await;
            Ok::<_, io::Error>(())
        });
    }
    let _ = dialling.acquire_many(DIALLING as u32).await;
    println!("connected {n} dialled");
    let all = wait_until(Duration::from_secs(60), || received.load(Relaxed) == n).await;
    println!(
        "received {} broadcasts{}",
        received.load(Relaxed),
        if all { "" } else { " (timed out)" }
    );

    // end when every connection is closed, or when the parent goes away
    let (mut stdin, mut byte) = (tokio::io::stdin(), [0u8; 1]);
    let mut failures = 0;
    tokio::select! {
        _ = async {
            while let Some(result) = tasks.join_next().await {
                if !matches!(result, Ok(Ok(()))) {
                    failures += 1;
                }
            }
        } => {}
        _ = stdin.read(&mut byte) => {}
    }
    if failures > 0 {
        eprintln!("c10k clients: {failures} connections failed");
    }
    Ok(())
}
