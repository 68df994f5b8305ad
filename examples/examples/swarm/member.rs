//! One swarm member per process: it listens on a given address, joins through a seed, learns
//! the other members from the `Hello`s it hears, and keeps a full mesh with them (redialling
//! whoever it lost) until it is told to stop.
//!
//! It talks to whatever started it through its standard streams, one line each:
//!
//! ```text
//! stdout  listening ADDR
//!         status connected=C known=K rumours=R rejected=J errors=E   (whenever one changes)
//!         heard ID                                                    (each new rumour, at once)
//!         stopped
//! stdin   rumour ID SIZE      start rumour ID with a body of SIZE bytes
//!         quit                shut down (so does the end of input, SIGINT or SIGTERM)
//! ```
//!
//! `connected` counts members (peers that sent a `Hello`), `known` the members it knows of,
//! `rejected` the inbound connections its admission limits refused.
//!
//! Membership: every member sends `Hello { me, known }` on connect and every 500 ms to every
//! peer; the heartbeat also keeps connections alive, so a peer silent for 4 s (a cut link) is
//! dropped by the idle timeout. Only the member with the higher address dials, so a pair has
//! one connection, and a member redials the members it lost every 500 ms. Rumours are flooded
//! as in the in-process demo; a member also passes every rumour it kept to each new peer, so
//! hosts that were cut off catch up once they are back.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io::{self, Write},
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
use pea2pea::{Config, Node, Pea2Pea, dsl::WhenFull, protocol};
use pea2pea_examples::{Args, lock};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    net::TcpStream,
    signal::unix::{SignalKind, signal},
};

use super::Gossip;

/// The most rumours a member keeps to pass on to peers that connect later.
const MAX_KEPT: usize = 256;
/// How often a member greets its peers, redials lost members and reports its status.
const HEARTBEAT: Duration = Duration::from_millis(500);

#[pea2pea::node]
#[derive(Clone)]
struct Member {
    node: Node,
    state: Arc<State>,
}

struct State {
    /// This member's listening address.
    me: SocketAddr,
    /// The seed it joined through, dialled whatever its address while no member is connected.
    seed: Option<SocketAddr>,
    /// The listening addresses of the other members it knows of.
    known: Mutex<BTreeSet<SocketAddr>>,
    /// Connected members: connection address -> the member's listening address.
    members: Mutex<HashMap<SocketAddr, SocketAddr>>,
    /// The rumours heard, kept for peers that connect later (at most MAX_KEPT).
    rumours: Mutex<BTreeMap<u32, Bytes>>,
    send_errors: AtomicU64,
}

protocol! {
    Member speaks Gossip over length_delimited(max_frame = 1 MiB) {
        // the heartbeat comes every 500 ms: 4 s of silence is a dead link
        idle_timeout = 4 s,
        // a new peer gets a Hello and every kept rumour at once
        write_queue = 1024,
        on Gossip::Rumour { id, body } from source => self.hear(id, body, Some(source)).await,
        on Gossip::Hello { me, known } from source => self.meet(source, me, known),
        on_connect(addr) => self.greet(addr),
        on_disconnect(addr) => { lock(&self.state.members).remove(&addr); }
    }
}

/// A line on stdout for whoever started this member (stdout is line-buffered).
fn report(line: std::fmt::Arguments) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

impl Member {
    fn hello(&self) -> Gossip {
        Gossip::Hello {
            me: self.state.me,
            known: lock(&self.state.known).iter().copied().collect(),
        }
    }

    fn count_failures(&self, failures: usize) {
        self.state.send_errors.fetch_add(failures as u64, Relaxed);
    }

    /// A new connection: introduce ourselves and pass on what we heard.
    fn greet(&self, addr: SocketAddr) {
        let mut failures = usize::from(self.send_fast(addr, self.hello()).is_err());
        let kept: Vec<_> = lock(&self.state.rumours)
            .iter()
            .map(|(&id, body)| (id, body.clone()))
            .collect();
        for (id, body) in kept {
            failures += usize::from(self.send_fast(addr, Gossip::Rumour { id, body }).is_err());
        }
        self.count_failures(failures);
    }

    /// A `Hello`: the peer at `source` is the member listening on `me`, and knows `known`.
    /// A `Hello` from an unspecified address is from a probe, not a member.
    fn meet(&self, source: SocketAddr, me: SocketAddr, known: Vec<SocketAddr>) {
        if me.ip().is_unspecified() {
            return;
        }
        lock(&self.state.members).insert(source, me);
        let mut mine = lock(&self.state.known);
        for addr in known.into_iter().chain([me]) {
            if addr != self.state.me && mine.len() < usize::from(u16::MAX) {
                mine.insert(addr);
            }
        }
    }

    /// Records a rumour; the first time, reports it and floods it to every peer but `from`.
    /// A peer whose queue is full misses it (counted): a handler that waited for one slow
    /// link would stop this member reading from its own peer meanwhile.
    async fn hear(&self, id: u32, body: Bytes, from: Option<SocketAddr>) {
        {
            let mut rumours = lock(&self.state.rumours);
            if rumours.contains_key(&id) || rumours.len() >= MAX_KEPT {
                return;
            }
            rumours.insert(id, body.clone());
        }
        report(format_args!("heard {id}"));
        let peers = self.node.connected_addrs().into_iter();
        let rumour = Gossip::Rumour { id, body };
        let peers = peers.filter(|&peer| Some(peer) != from);
        let sent = self.send_to_many_with(peers, &rumour, WhenFull::Drop).await;
        self.count_failures(sent.len() - sent.queued());
    }

    fn connected_members(&self) -> usize {
        let members = lock(&self.state.members);
        members.values().collect::<BTreeSet<_>>().len()
    }

    /// Dials every known member with a lower address that is not connected (the higher one
    /// of a pair dials), and the seed while no member is connected.
    fn redial(&self) {
        let lonely = lock(&self.state.members).is_empty();
        let targets: Vec<_> = lock(&self.state.known)
            .iter()
            .copied()
            .filter(|&addr| addr < self.state.me || (lonely && Some(addr) == self.state.seed))
            .filter(|&addr| !self.node.is_connected(addr) && !self.node.is_connecting(addr))
            .collect();
        for addr in targets {
            let node = self.node.clone();
            // a failed dial (the link is down, the peer is gone) is retried next heartbeat
            tokio::spawn(async move { node.connect(addr).await });
        }
    }

    fn status(&self) -> String {
        format!(
            "status connected={} known={} rumours={} rejected={} errors={}",
            self.connected_members(),
            lock(&self.state.known).len(),
            lock(&self.state.rumours).len(),
            self.node.heuristics().inbound_connections_rejected(),
            self.state.send_errors.load(Relaxed),
        )
    }
}

/// `swarm --listen ADDR [--join SEED] [--max-per-ip N]`: runs one member until told to stop.
pub async fn run(args: &Args) -> ExitCode {
    let parse = |key: &str| -> Result<Option<SocketAddr>, String> {
        match args.has(key) {
            false => Ok(None),
            true => args
                .get_str(key, "")
                .parse()
                .map(Some)
                .map_err(|_| format!("--{key} needs an address like 10.77.0.1:7000")),
        }
    };
    let (listen, seed) = match (parse("listen"), parse("join")) {
        (Ok(Some(listen)), Ok(seed)) => (listen, seed),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("swarm: {e}");
            return ExitCode::FAILURE;
        }
        (Ok(None), _) => unreachable!("run is called with --listen"),
    };
    let max_per_ip: u16 = args.get("max-per-ip", 2);
    if max_per_ip == 0 {
        eprintln!("swarm: --max-per-ip must be at least 1");
        return ExitCode::FAILURE;
    }
    let member = Member {
        node: Node::new(Config {
            name: Some(format!("member {listen}")),
            listener_addr: Some(listen),
            max_connections: 1024,
            max_connections_per_ip: max_per_ip,
            ..Default::default()
        }),
        state: Arc::new(State {
            me: listen,
            seed,
            known: Mutex::new(seed.into_iter().filter(|&s| s != listen).collect()),
            members: Default::default(),
            rumours: Default::default(),
            send_errors: Default::default(),
        }),
    };
    match member.start().await {
        Ok(addr) => report(format_args!("listening {addr}")),
        Err(e) => {
            eprintln!("swarm: couldn't listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = serve(&member).await;
    member.node().shut_down().await;
    report(format_args!("{}", member.status()));
    report(format_args!("stopped"));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("swarm: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The member's life: heartbeats and status lines until a `quit`, the end of input or a signal.
async fn serve(member: &Member) -> io::Result<()> {
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    let mut last_status = String::new();
    loop {
        tokio::select! {
            line = commands.next_line() => match line?.as_deref().map(str::split_whitespace) {
                None => return Ok(()),
                Some(mut words) => match (words.next(), words.next(), words.next()) {
                    (Some("quit"), None, None) => return Ok(()),
                    (Some("rumour"), Some(id), Some(size)) => match (id.parse(), size.parse()) {
                        (Ok(id), Ok(size)) => member.hear(id, Bytes::from(vec![b'r'; size]), None).await,
                        _ => eprintln!("swarm: `rumour ID SIZE` takes two numbers"),
                    },
                    (None, ..) => {}
                    _ => eprintln!("swarm: unknown command; use `rumour ID SIZE` or `quit`"),
                },
            },
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
            _ = heartbeat.tick() => {
                let peers = member.node().connected_addrs();
                // the next heartbeat will do for a peer that has no room for this one
                let sent = member.send_to_many_with(peers, &member.hello(), WhenFull::Drop).await;
                member.count_failures(sent.len() - sent.queued());
                member.redial();
            }
        }
        let status = member.status();
        if status != last_status {
            report(format_args!("{status}"));
            last_status = status;
        }
    }
}

/// `swarm --probe ADDR --connections K`: opens K plain TCP connections to a member, one after
/// another, holding each. A connection the member admitted brings its `Hello`; one its limits
/// refused is closed at once. Prints `probe accepted=A refused=R unknown=U`.
pub async fn probe(args: &Args) -> ExitCode {
    let Ok(target) = args.get_str("probe", "").parse::<SocketAddr>() else {
        eprintln!("swarm: --probe needs an address like 10.77.0.1:7000");
        return ExitCode::FAILURE;
    };
    let connections: usize = args.get("connections", 1);
    let (mut accepted, mut refused, mut unknown) = (0, 0, 0);
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        let verdict = tokio::time::timeout(Duration::from_secs(10), async {
            let mut stream = TcpStream::connect(target).await?;
            // the member's Hello: a 4-byte length and the body
            let len = stream.read_u32().await?;
            let mut body = vec![0; len.min(1 << 20) as usize];
            stream.read_exact(&mut body).await?;
            Ok::<_, io::Error>(stream)
        })
        .await;
        match verdict {
            Ok(Ok(stream)) => {
                accepted += 1;
                held.push(stream); // held to the end, so it keeps counting against the limit
            }
            Ok(Err(_)) => refused += 1,
            Err(_) => unknown += 1,
        }
    }
    println!("probe accepted={accepted} refused={refused} unknown={unknown}");
    ExitCode::SUCCESS
}
