//! A hundred thousand connections to one port, held by several processes: listener sharding
//! with `SO_REUSEPORT`, and clients dialling from several loopback source addresses.
//!
//! ```text
//! cargo run --release --example c100k -- [--connections N] [--shards S] [--clients C]
//! ```
//!
//! N defaults to 100 000; S and C to the fewest processes that fit, and at least 2.
//!
//! Three limits shape the run; the program says how it met each one.
//!
//! * **Open files.** Every connection is an open file in the process that holds it. The
//!   program raises `RLIMIT_NOFILE` (the soft limit up to the hard one, and the hard limit too
//!   when it has `CAP_SYS_RESOURCE`) and says what it did. Where the hard limit stays low, as
//!   in containers that drop that capability even for root, one process cannot hold N
//!   connections, so the work is spread over child processes (this program, re-executed with
//!   `--role`): S *shards*, each a node listening on the same address and port with
//!   `reuse_listener_port`, among which the kernel spreads incoming connections, and C *client*
//!   processes, each holding its share of the connections. S and C are the fewest that keep
//!   every process under its limit (a shard with room to spare, since the kernel spreads by a
//!   hash, not evenly), and at least 2 each; the `plan` lines say why.
//! * **Connections per node.** A node holds at most 65 535 (`max_connections` is a `u16`), and
//!   one connection per remote address. All clients dial the one shared address, so each
//!   client connection is a node of its own.
//! * **Ports.** One source address opens at most one connection per ephemeral port to a given
//!   address and port (28 232 with Linux's default `ip_local_port_range`). Each client process
//!   dials from its own addresses, 127.0.0.2 and up (all of 127.0.0.0/8 is loopback on
//!   Linux), binding each socket before `connect_using_socket`, and uses at most half of each
//!   address's ports.
//!
//! The system-wide settings that bound such a run (`net.ipv4.ip_local_port_range`,
//! `net.core.somaxconn`, `net.ipv4.tcp_max_syn_backlog`, `net.netfilter.nf_conntrack_max`) are
//! read and reported, never changed.
//!
//! The first process only coordinates. It sends each child one command line at a time on its
//! stdin and reads one reply line from its stdout (`count` → `count connected=… rss=…`). It
//! measures the setup rate (until every connection is up on both ends and every shard has
//! handled each client's hello), the memory per connection (the growth of the shards' resident
//! memory; the kernel's socket buffers are not in it), a broadcast from every shard to its
//! clients, and the shutdown, and it checks that every child exits with success. Every wait is
//! bounded. On any failure, Ctrl-C, SIGTERM or SIGHUP it kills every child; a child whose
//! coordinator is gone for any reason (even SIGKILL) sees its stdin close and exits at once.

use std::{
    fmt, io,
    io::Write,
    net::{Ipv4Addr, SocketAddr},
    process::{ExitCode, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
use pea2pea_examples::{Args, ensure_open_files, lock, resident_memory, sysctl};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines, Stdin},
    net::TcpSocket,
    process::{Child, ChildStdin, ChildStdout, Command},
    signal::unix::{Signal, SignalKind, signal},
    sync::Semaphore,
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

/// Files each process keeps open besides the connections (stdio, the runtime, the listener).
const SPARE_FILES: u64 = 256;
/// How many connections each client process dials at once.
const DIALLING: usize = 256;
/// The most shard processes, and the most client processes.
const MAX_PROCESSES: usize = 64;
/// Client source addresses are 127.0.0.FIRST_SOURCE ..= 127.0.0.LAST_SOURCE.
const FIRST_SOURCE: u8 = 2;
const LAST_SOURCE: u8 = 254;
/// How long a child may take to answer a command.
const ANSWER: Duration = Duration::from_secs(30);
/// How often the coordinator asks for counts while it waits for them to add up.
const POLL: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(
        &[
            "connections",
            "shards",
            "clients",
            "role",
            "index",
            "listen",
            "max",
            "target",
            "sources",
        ],
        "c100k [--connections N] [--shards S] [--clients C]",
    );
    let role = args.get_str("role", "coordinator");
    let name = format!("{role} {}", args.get_str("index", ""));
    let result = match role {
        "coordinator" => coordinate(&args).await,
        "shard" => shard(&args, &name).await,
        "clients" => clients(&args, &name).await,
        other => Err(io::Error::other(format!("unknown role {other:?}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("c100k {}: {e}", name.trim_end());
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The coordinator: the plan, the children, the measurements.
// ---------------------------------------------------------------------------------------------

/// How many processes of each kind, and why.
struct Plan {
    n: usize,
    /// The open-file limit each process has (children inherit it).
    limit: u64,
    /// Connections one process may hold: its open-file limit less the spare files.
    per_process: usize,
    /// The most connections one shard node takes (`max_connections`).
    shard_max: u16,
    shards: usize,
    shards_needed: usize,
    clients: usize,
    clients_needed: usize,
    /// Ephemeral ports per source address.
    ports: usize,
    sources_per_client: usize,
}

/// The room a shard needs for `load` connections. The kernel picks a shard by a hash of each
/// connection's addresses and ports, not by load. Usually the shares differ by a few hundred at
/// 100 000, but right after a run that was killed mid-way some shards got twice the share of
/// others (this machine, Linux 6.18; the cause was not found). So: twice the share, and 64.
fn with_headroom(load: usize) -> usize {
    2 * load + 64
}

impl Plan {
    fn new(n: usize, limit: u64, ports: usize, shards: usize, clients: usize) -> io::Result<Self> {
        let per_process = limit.saturating_sub(SPARE_FILES) as usize;
        let shard_max = per_process.min(u16::MAX as usize);
        let too_many = || {
            io::Error::other(format!(
                "{n} connections need more than {MAX_PROCESSES} processes of a kind under an \
                 open-file limit of {limit}"
            ))
        };
        let shards_needed = (1..=MAX_PROCESSES)
            .find(|&s| with_headroom(n.div_ceil(s)) <= shard_max)
            .ok_or_else(too_many)?;
        let clients_needed = n.div_ceil(per_process.max(1));
        if clients_needed > MAX_PROCESSES {
            return Err(too_many());
        }
        let shards = choose(shards, shards_needed, "shards")?;
        let clients = choose(clients, clients_needed, "clients")?;
        let sources_per_client = n.div_ceil(clients).div_ceil(ports / 2).max(2);
        if clients * sources_per_client > usize::from(LAST_SOURCE - FIRST_SOURCE) + 1 {
            return Err(io::Error::other(format!(
                "{clients} client processes need {} source addresses: more than 127.0.0.\
                 {FIRST_SOURCE}..={LAST_SOURCE}",
                clients * sources_per_client
            )));
        }
        Ok(Self {
            n,
            limit,
            per_process,
            shard_max: shard_max as u16,
            shards,
            shards_needed,
            clients,
            clients_needed,
            ports,
            sources_per_client,
        })
    }

    /// How many connections client process `k` makes.
    fn share(&self, k: usize) -> usize {
        self.n / self.clients + usize::from(k < self.n % self.clients)
    }

    /// The source addresses of client process `k`.
    fn sources(&self, k: usize) -> Vec<Ipv4Addr> {
        let first = usize::from(FIRST_SOURCE) + k * self.sources_per_client;
        (first..first + self.sources_per_client)
            .map(|last| Ipv4Addr::new(127, 0, 0, last as u8))
            .collect()
    }

    fn phase(&self) -> Duration {
        // generous: other processes may load the machine; 260 s for 100 000
        Duration::from_secs(60) + Duration::from_millis(2 * self.n as u64)
    }
}

/// `asked` processes, or the `needed` ones (at least 2, to show the spread) when not asked.
fn choose(asked: usize, needed: usize, what: &str) -> io::Result<usize> {
    match asked {
        0 => Ok(needed.max(2)),
        asked if asked < needed => Err(io::Error::other(format!(
            "--{what} {asked} is too few: at least {needed} are needed under this open-file limit"
        ))),
        asked if asked > MAX_PROCESSES => Err(io::Error::other(format!(
            "--{what} must be at most {MAX_PROCESSES}"
        ))),
        asked => Ok(asked),
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let load = self.n.div_ceil(self.shards);
        let last_source = self.sources(self.clients - 1)[self.sources_per_client - 1];
        let fewer = match self.per_process < self.n {
            true => format!(", fewer than the {} asked", self.n),
            false => String::new(),
        };
        writeln!(
            f,
            "  plan       a process may hold {} connections{fewer} (its open-file limit {} less \
             {SPARE_FILES} spare files; a node at most 65535)",
            self.per_process, self.limit
        )?;
        writeln!(
            f,
            "             {} shard processes ({}): each needs room for its share ({load}) twice \
             over, and 64 ({}), since the kernel spreads connections by a hash",
            self.shards,
            why(self.shards, self.shards_needed),
            with_headroom(load)
        )?;
        write!(
            f,
            "             {} client processes ({}), each dialling from {} addresses of its own \
             (127.0.0.{FIRST_SOURCE} to {last_source}) and using at most half of each one's {} \
             ports",
            self.clients,
            why(self.clients, self.clients_needed),
            self.sources_per_client,
            self.ports
        )
    }
}

/// Why `chosen` processes of a kind, `needed` being the fewest that fit.
fn why(chosen: usize, needed: usize) -> String {
    match chosen {
        _ if chosen == needed => "the fewest that fit".into(),
        2 if needed < 2 => format!("{needed} would fit; at least 2, to spread the work"),
        _ => format!("as asked; {needed} would fit"),
    }
}

/// Ephemeral ports per source address (`ip_local_port_range`).
fn port_range() -> usize {
    sysctl("net/ipv4/ip_local_port_range")
        .and_then(|range| {
            let (lo, hi) = range.split_once(' ')?;
            Some(hi.parse::<usize>().ok()? + 1 - lo.parse::<usize>().ok()?)
        })
        .unwrap_or(28_232)
}

/// The system's bounds on the run, read and reported.
fn report_system() {
    let show = |path: &str| sysctl(path).unwrap_or_else(|| "n/a".into());
    println!(
        "  system     ip_local_port_range {}, somaxconn {}, tcp_max_syn_backlog {}, \
         nf_conntrack_max {} (read, not changed)",
        show("net/ipv4/ip_local_port_range"),
        show("net/core/somaxconn"),
        show("net/ipv4/tcp_max_syn_backlog"),
        show("net/netfilter/nf_conntrack_max"),
    );
}

async fn coordinate(args: &Args) -> io::Result<()> {
    let n: usize = args.get("connections", 100_000);
    if !(1..=1_000_000).contains(&n) {
        return Err(io::Error::other(
            "--connections must be between 1 and 1000000",
        ));
    }
    let started = Instant::now();
    let limit = ensure_open_files(n as u64 + SPARE_FILES)?;
    println!("c100k: {n} connections");
    println!("  limits     {limit}");
    let plan = Plan::new(
        n,
        limit.after.0,
        port_range(),
        args.get("shards", 0),
        args.get("clients", 0),
    )?;
    println!("{plan}");
    report_system();

    // listen for signals before the first child exists, so that none can be left behind
    let mut signals = Signals::new()?;
    let mut fleet = Fleet::default();
    let result = tokio::select! {
        result = run(&plan, &mut fleet) => result,
        name = signals.next() => Err(io::Error::other(format!("interrupted by {name}"))),
    };
    match result {
        Ok(()) => {
            println!("  time       {:.1?} in all", started.elapsed());
            Ok(())
        }
        Err(e) => {
            let killed = fleet.kill_all().await;
            println!("  stopped    killed all {killed} child processes");
            Err(e)
        }
    }
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP, from the moment this exists.
struct Signals([(Signal, &'static str); 3]);

impl Signals {
    fn new() -> io::Result<Self> {
        Ok(Self([
            (signal(SignalKind::interrupt())?, "SIGINT (Ctrl-C)"),
            (signal(SignalKind::terminate())?, "SIGTERM"),
            (signal(SignalKind::hangup())?, "SIGHUP"),
        ]))
    }

    /// The name of the next signal to arrive.
    async fn next(&mut self) -> &'static str {
        let [(int, int_name), (term, term_name), (hup, hup_name)] = &mut self.0;
        tokio::select! {
            _ = int.recv() => int_name,
            _ = term.recv() => term_name,
            _ = hup.recv() => hup_name,
        }
    }
}

/// A child process of this program and its two pipes.
struct Proc {
    name: String,
    child: Child,
    stdin: ChildStdin,
    replies: Lines<BufReader<ChildStdout>>,
}

/// One reply line: a word and `key=number` fields.
struct Reply {
    line: String,
}

impl Reply {
    /// The number after `key=`; the children always send the fields the coordinator reads.
    fn get(&self, key: &str) -> usize {
        self.line
            .split_whitespace()
            .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in the reply {:?}", self.line))
    }
}

impl Proc {
    fn spawn(name: String, args: &[String]) -> io::Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // the last resort, should this process unwind: the child also exits when its
            // stdin closes, which covers every other way this process can end
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self {
            stdin: child.stdin.take().expect("piped"),
            replies: BufReader::new(child.stdout.take().expect("piped")).lines(),
            name,
            child,
        })
    }

    async fn tell(&mut self, command: &str) -> io::Result<()> {
        let sent = async {
            self.stdin
                .write_all(format!("{command}\n").as_bytes())
                .await?;
            self.stdin.flush().await
        };
        match sent.await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.ended().await),
        }
    }

    /// The child's next line, which must start with `word`, within `limit`.
    async fn hear(&mut self, word: &str, limit: Duration) -> io::Result<Reply> {
        match tokio::time::timeout(limit, self.replies.next_line()).await {
            Ok(Ok(Some(line))) if line.split_whitespace().next() == Some(word) => {
                Ok(Reply { line })
            }
            Ok(Ok(Some(line))) => Err(io::Error::other(format!(
                "{}: expected {word:?}, heard {line:?}",
                self.name
            ))),
            Ok(Ok(None) | Err(_)) => Err(self.ended().await),
            Err(_) => Err(io::Error::other(format!(
                "{}: no {word:?} within {limit:?}",
                self.name
            ))),
        }
    }

    /// The error for a child that stopped talking: its exit status, if it has one by now.
    async fn ended(&mut self) -> io::Error {
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let how = match status {
            Ok(Ok(status)) => format!("{status}"),
            _ => "still running".into(),
        };
        io::Error::other(format!(
            "{} ended early ({how}; its own message, if any, is above)",
            self.name
        ))
    }

    /// Waits for the child to exit, which must be with success.
    async fn exit(&mut self) -> io::Result<()> {
        match tokio::time::timeout(ANSWER, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(io::Error::other(format!("{} {status}", self.name))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other(format!(
                "{} did not exit within {ANSWER:?}",
                self.name
            ))),
        }
    }
}

/// Sends `command` to each of `procs`, then waits for each one's `word` reply.
async fn ask(
    procs: &mut [Proc],
    command: &str,
    word: &str,
    limit: Duration,
) -> io::Result<Vec<Reply>> {
    for proc in procs.iter_mut() {
        proc.tell(command).await?;
    }
    let mut replies = Vec::with_capacity(procs.len());
    for proc in procs.iter_mut() {
        replies.push(proc.hear(word, limit).await?);
    }
    Ok(replies)
}

/// The sum of `key` over `replies`.
fn sum(replies: &[Reply], key: &str) -> usize {
    replies.iter().map(|reply| reply.get(key)).sum()
}

/// The index and `key` of the first of `replies` whose `key` is not zero.
fn first_nonzero(replies: &[Reply], key: &str) -> Option<(usize, usize)> {
    replies
        .iter()
        .map(|reply| reply.get(key))
        .enumerate()
        .find(|&(_, value)| value > 0)
}

/// Every child started so far.
#[derive(Default)]
struct Fleet {
    shards: Vec<Proc>,
    clients: Vec<Proc>,
}

impl Fleet {
    /// Kills every child, the clients first (so that none reports a shard's end), and reaps
    /// them (each within 5 s); returns how many there were.
    async fn kill_all(&mut self) -> usize {
        let mut all: Vec<&mut Proc> = self.clients.iter_mut().chain(&mut self.shards).collect();
        for proc in &mut all {
            let _ = proc.child.start_kill();
        }
        for proc in &mut all {
            let _ = tokio::time::timeout(Duration::from_secs(5), proc.child.wait()).await;
        }
        all.len()
    }
}

async fn run(plan: &Plan, fleet: &mut Fleet) -> io::Result<()> {
    let (addr, idle) = start_shards(plan, fleet).await?;
    let clients_idle = start_clients(plan, fleet, addr).await?;
    let setup = set_up(plan, fleet).await?;

    let (n, kib) = (plan.n as f64, |bytes: usize| bytes as f64 / 1024.0);
    println!(
        "  setup      {} connections, each with a hello handled, in {:.2?}: {:.0} connections/s",
        plan.n,
        setup.time,
        n / setup.time.as_secs_f64()
    );
    println!("  spread     connections per shard: {:?}", setup.spread);
    let (grown, all) = (setup.shards_rss.saturating_sub(idle), setup.shards_rss);
    println!(
        "  memory     shards: {:.1} KiB per connection (their resident memory grew {:.1} MiB, \
         to {:.1} MiB: {:.1} KiB per connection in all); clients, a node each: {:.1} KiB per \
         connection",
        kib(grown) / n,
        kib(grown) / 1024.0,
        kib(all) / 1024.0,
        kib(all) / n,
        kib(setup.clients_rss.saturating_sub(clients_idle)) / n,
    );

    broadcast(plan, fleet).await?;
    shut_down(plan, fleet).await
}

/// Starts the shards: the first picks the port, the others bind it too. Returns the shared
/// address and the shards' resident memory while idle.
async fn start_shards(plan: &Plan, fleet: &mut Fleet) -> io::Result<(SocketAddr, usize)> {
    let args = |i: usize, addr: SocketAddr| {
        ["--role", "shard", "--index", &i.to_string()]
            .into_iter()
            .map(String::from)
            .chain(["--listen".into(), addr.to_string()])
            .chain(["--max".into(), plan.shard_max.to_string()])
            .collect::<Vec<_>>()
    };
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    fleet
        .shards
        .push(Proc::spawn("shard 0".into(), &args(0, any_port))?);
    let first = fleet.shards[0].hear("listening", ANSWER).await?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, first.get("port") as u16));
    for i in 1..plan.shards {
        fleet
            .shards
            .push(Proc::spawn(format!("shard {i}"), &args(i, addr))?);
    }
    let mut idle = first.get("rss");
    for shard in &mut fleet.shards[1..] {
        idle += shard.hear("listening", ANSWER).await?.get("rss");
    }
    println!(
        "  shards     {} processes, a node each, listening on {addr} with SO_REUSEPORT",
        plan.shards
    );
    Ok((addr, idle))
}

/// Starts the client processes (they wait for `dial`); returns their resident memory.
async fn start_clients(plan: &Plan, fleet: &mut Fleet, target: SocketAddr) -> io::Result<usize> {
    for k in 0..plan.clients {
        let sources: Vec<String> = plan.sources(k).iter().map(|s| s.to_string()).collect();
        let args = [
            "--role".into(),
            "clients".into(),
            "--index".into(),
            k.to_string(),
            "--target".into(),
            target.to_string(),
            "--connections".into(),
            plan.share(k).to_string(),
            "--sources".into(),
            sources.join(","),
        ];
        fleet
            .clients
            .push(Proc::spawn(format!("clients {k}"), &args)?);
    }
    let mut idle = 0;
    for client in &mut fleet.clients {
        idle += client.hear("ready", ANSWER).await?.get("rss");
    }
    println!(
        "  clients    {} processes, {} connections each (one node per connection)",
        plan.clients,
        plan.share(0)
    );
    Ok(idle)
}

/// What the setup took.
struct Setup {
    time: Duration,
    spread: Vec<usize>,
    shards_rss: usize,
    clients_rss: usize,
}

/// Tells the clients to dial; waits until every connection is up on both ends and every
/// hello was handled.
async fn set_up(plan: &Plan, fleet: &mut Fleet) -> io::Result<Setup> {
    let n = plan.n;
    ask(&mut fleet.clients, "dial", "dialling", ANSWER).await?;
    let started = Instant::now();
    let mut next_progress = Duration::from_secs(5);
    loop {
        let shards = ask(&mut fleet.shards, "count", "count", ANSWER).await?;
        let clients = ask(&mut fleet.clients, "count", "count", ANSWER).await?;
        let time = started.elapsed();
        let (up, hellos, dialled) = (
            sum(&shards, "connected"),
            sum(&shards, "hellos"),
            sum(&clients, "connected"),
        );
        if let Some((k, failed)) = first_nonzero(&clients, "failed") {
            return Err(io::Error::other(format!(
                "clients {k}: {failed} dials failed (its first error is above)"
            )));
        }
        if let Some((i, rejected)) = first_nonzero(&shards, "rejected") {
            return Err(io::Error::other(format!(
                "shard {i} was full ({} connections) and rejected {rejected}: the kernel spread \
                 the connections unevenly; more --shards leave more room",
                plan.shard_max
            )));
        }
        if up == n && hellos == n && dialled == n {
            return Ok(Setup {
                time,
                spread: shards.iter().map(|r| r.get("connected")).collect(),
                shards_rss: sum(&shards, "rss"),
                clients_rss: sum(&clients, "rss"),
            });
        }
        if time > plan.phase() {
            return Err(io::Error::other(format!(
                "after {time:.0?}, {up} of {n} connections were up on the shards, {dialled} on \
                 the clients, and {hellos} hellos handled"
            )));
        }
        if time > next_progress {
            println!("  ...        {up} of {n} up after {time:.0?}");
            next_progress += Duration::from_secs(5);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the clients' `key` fields add up to `total`.
async fn clients_reach(plan: &Plan, fleet: &mut Fleet, key: &str, total: usize) -> io::Result<()> {
    let started = Instant::now();
    loop {
        let got = sum(
            &ask(&mut fleet.clients, "count", "count", ANSWER).await?,
            key,
        );
        if got == total {
            return Ok(());
        }
        if started.elapsed() > plan.phase() {
            return Err(io::Error::other(format!(
                "the clients' {key} count is {got} after {:.0?}; {total} expected",
                started.elapsed()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Each shard sends a message to each of its clients; waits until all have it.
async fn broadcast(plan: &Plan, fleet: &mut Fleet) -> io::Result<()> {
    let started = Instant::now();
    let replies = ask(&mut fleet.shards, "broadcast", "broadcast", ANSWER).await?;
    clients_reach(plan, fleet, "received", plan.n).await?;
    println!(
        "  broadcast  each shard to its clients: all {} received in {:.2?} ({} not queued)",
        plan.n,
        started.elapsed(),
        sum(&replies, "not_queued")
    );
    Ok(())
}

/// Shuts the shards down first (their side closes, so the clients' ports are not held in
/// TIME_WAIT), waits until the clients saw every connection close, stops the clients, and
/// checks that every child exited with success.
///
/// The shards stop one at a time, so that each has the processor for its teardowns: all at
/// once, with 2 loaded cores, they pass the engine's 3 s drain deadline (`Node::shut_down`)
/// and cut the rest of their connections off, with a warning.
async fn shut_down(plan: &Plan, fleet: &mut Fleet) -> io::Result<()> {
    let started = Instant::now();
    let mut slowest = 0;
    for i in 0..fleet.shards.len() {
        let stopped = ask(&mut fleet.shards[i..=i], "stop", "stopped", plan.phase()).await?;
        slowest = slowest.max(stopped[0].get("ms"));
    }
    let stopped = started.elapsed();
    clients_reach(plan, fleet, "connected", 0).await?;
    println!(
        "  shutdown   the shards, one at a time, closed {} connections in {stopped:.2?} (the \
         slowest in {slowest} ms); the clients saw them all close within {:.2?}",
        plan.n,
        started.elapsed()
    );
    ask(&mut fleet.clients, "stop", "stopped", ANSWER).await?;
    for proc in fleet.shards.iter_mut().chain(&mut fleet.clients) {
        proc.exit().await?;
    }
    println!(
        "  processes  {} shards and {} client processes exited with success",
        plan.shards, plan.clients
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The children: a shard, or a process of clients. Each reads commands on stdin and answers
// each with one line on stdout.
// ---------------------------------------------------------------------------------------------

/// The commands from the coordinator, one per line.
struct Commands {
    lines: Lines<BufReader<Stdin>>,
    /// Held so that Ctrl-C, which the terminal sends to every process of its group, is left to
    /// the coordinator: it stops the children itself, and reports why.
    _interrupt: Signal,
}

impl Commands {
    fn new() -> io::Result<Self> {
        Ok(Self {
            lines: BufReader::new(tokio::io::stdin()).lines(),
            _interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next command. When stdin closes, the coordinator is gone (however it ended): the
    /// child ends at once, whatever it holds.
    async fn next(&mut self) -> String {
        match self.lines.next_line().await {
            Ok(Some(line)) => line,
            _ => std::process::exit(3),
        }
    }
}

/// Answers the coordinator; ends the process if it is gone.
fn say(line: String) {
    let mut stdout = io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(3);
    }
}

/// This process's resident memory in bytes (0 where unknown).
fn rss() -> usize {
    resident_memory().unwrap_or(0) as usize
}

/// Makes sure this process may open `needed` files (it inherits the coordinator's limit).
fn need_files(needed: u64) -> io::Result<()> {
    let limit = ensure_open_files(needed)?;
    match limit.enough() {
        true => Ok(()),
        false => Err(io::Error::other(limit.to_string())),
    }
}

/// A shard: a node on the shared port.
async fn shard(args: &Args, name: &str) -> io::Result<()> {
    let mut commands = Commands::new()?;
    let listen: SocketAddr = args.get("listen", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let max: u16 = args.get("max", 1);
    need_files(u64::from(max) + SPARE_FILES)?;
    let shard = Shard {
        node: Node::new(Config {
            name: Some(name.into()),
            listener_addr: Some(listen),
            reuse_listener_port: true,
            listener_backlog: 4096,
            max_connections: max,
            max_connections_per_ip: max,
            max_connecting: 512,
            ..Default::default()
        }),
        hellos: Default::default(),
    };
    let addr = shard.start().await?;
    say(format!("listening port={} rss={}", addr.port(), rss()));
    loop {
        match commands.next().await.as_str() {
            "count" => say(format!(
                "count connected={} hellos={} rejected={} rss={}",
                shard.node().num_connected(),
                shard.hellos.load(Relaxed),
                shard.node().heuristics().inbound_connections_rejected(),
                rss()
            )),
            "broadcast" => {
                let peers = shard.node().connected_addrs();
                let index = args.get("index", 0u16);
                let sent = shard.send_to_many(peers, &Msg::Broadcast(index)).await;
                let not_queued = sent.len() - sent.queued();
                say(format!("broadcast not_queued={not_queued}"));
            }
            "stop" => {
                let started = Instant::now();
                shard.node().shut_down().await;
                say(format!("stopped ms={}", started.elapsed().as_millis()));
                return Ok(());
            }
            other => return Err(io::Error::other(format!("unknown command {other:?}"))),
        }
    }
}

/// A process of clients, and what they did so far.
#[derive(Default)]
struct Clients {
    held: Mutex<Vec<Client>>,
    failed: AtomicUsize,
    received: Arc<AtomicUsize>,
}

/// `--connections` clients, a node each, dialling `--target` from the `--sources` in turn.
async fn clients(args: &Args, name: &str) -> io::Result<()> {
    let mut commands = Commands::new()?;
    let target: SocketAddr = args.get("target", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let n: usize = args.get("connections", 0);
    let sources = args
        .get_str("sources", "")
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<Ipv4Addr>, _>>()
        .map_err(|_| io::Error::other("--sources needs a list of IPv4 addresses"))?;
    need_files(n as u64 + SPARE_FILES)?;
    let clients = Arc::new(Clients::default());
    say(format!("ready rss={}", rss()));
    loop {
        match commands.next().await.as_str() {
            "dial" => {
                tokio::spawn(dial_all(
                    clients.clone(),
                    target,
                    n,
                    sources.clone(),
                    name.to_owned(),
                ));
                say("dialling".into());
            }
            "count" => {
                let connected: usize = lock(&clients.held)
                    .iter()
                    .map(|client| client.node().num_connected())
                    .sum();
                say(format!(
                    "count connected={connected} failed={} received={} rss={}",
                    clients.failed.load(Relaxed),
                    clients.received.load(Relaxed),
                    rss()
                ));
            }
            "stop" => {
                say("stopped".into());
                return Ok(()); // the connections are closed by now; the process ends
            }
            other => return Err(io::Error::other(format!("unknown command {other:?}"))),
        }
    }
}

/// Dials `n` connections, `DIALLING` at a time; each client says hello once connected. The
/// first failure is reported on stderr, all are counted.
async fn dial_all(
    clients: Arc<Clients>,
    target: SocketAddr,
    n: usize,
    sources: Vec<Ipv4Addr>,
    name: String,
) {
    let dialling = Arc::new(Semaphore::new(DIALLING));
    for i in 0..n {
        let permit = dialling
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let source = sources[i % sources.len()];
        let client = Client {
            node: Node::new(Config {
                listener_addr: None,
                max_connections: 1,
                // a loaded machine can be slow to accept: give each dial 10 s, not 1
                connection_timeout_ms: 10_000,
                ..Default::default()
            }),
            received: clients.received.clone(),
        };
        let (clients, name) = (clients.clone(), name.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match dial(&client, source, target).await {
                Ok(()) => lock(&clients.held).push(client),
                Err(e) => {
                    if clients.failed.fetch_add(1, Relaxed) == 0 {
                        eprintln!("c100k {name}: a dial from {source} to {target} failed: {e}");
                    }
                }
            }
        });
    }
}

/// One client's connection from `source` (any free port) to `target`, and its hello.
async fn dial(client: &Client, source: Ipv4Addr, target: SocketAddr) -> io::Result<()> {
    client.enable_protocols().await;
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    client.node().connect_using_socket(target, socket).await?;
    client.send_fast(target, Msg::Hello)
}
