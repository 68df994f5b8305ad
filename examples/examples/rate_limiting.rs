//! Rate limiting from the node's own statistics: a guard node watches how many messages each
//! connection delivers per second, bans the address of a peer that goes over the limit, and
//! refuses that address from then on; an honest peer talking at a normal pace is left alone.
//!
//! ```text
//! cargo run --example rate_limiting -- [--limit MSGS_PER_SEC] [--seconds S]
//! ```
//!
//! The decision needs no bookkeeping in the message handler: every connection already counts
//! what it received (`ConnectionInfo::stats`), so a monitor task samples those counters every
//! 250 ms and compares the messages of the last second with the limit. A banned address is
//! disconnected, logged and counted; the node's hand-written `Handshake` refuses any new
//! connection from it (so a banned peer that redials is turned away before reading a byte).
//! The honest peer and the flooder dial from different loopback addresses (127.0.0.2 and
//! 127.0.0.3, bound with `connect_using_socket`), as distinct hosts would.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    io,
    net::{IpAddr, SocketAddr},
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use pea2pea::{Config, Connection, Message, Node, Pea2Pea, protocol, protocols::Handshake};
use pea2pea_examples::{Args, lock, wait_until};
use tokio::net::TcpSocket;
use tracing::warn;

#[derive(Message, Debug)]
enum Chat {
    Say(String),
}

/// The guard: counts nothing itself; the engine's per-connection stats do.
#[pea2pea::node]
#[derive(Clone)]
struct Guard {
    node: Node,
    banned: Arc<Mutex<HashSet<IpAddr>>>,
    bans: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
}

protocol! {
    Guard speaks Chat over length_delimited(max_frame = 1 KiB) {
        handshake = custom,
        on Chat::Say(_) => {} // what was said does not matter here, only how often
    }
}

impl Handshake for Guard {
    async fn perform_handshake(&self, conn: Connection) -> io::Result<Connection> {
        let ip = conn.addr().ip();
        if lock(&self.banned).contains(&ip) {
            self.refused.fetch_add(1, Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{ip} is banned"),
            ));
        }
        Ok(conn)
    }
}

/// How often the guard samples its connections' counters, and the window it judges.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
const WINDOW: Duration = Duration::from_secs(1);

impl Guard {
    /// Samples every connection's received-message counter and bans the addresses whose
    /// last second went over `limit`; runs until aborted.
    async fn monitor(self, limit: u64) {
        // per connection: (when, messages received so far), the last second of samples
        let mut samples: HashMap<SocketAddr, VecDeque<(Instant, u64)>> = HashMap::new();
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            let infos = self.node.connection_infos();
            samples.retain(|addr, _| infos.contains_key(addr));
            let now = Instant::now();
            for (addr, info) in infos {
                let (received, _) = info.stats().received();
                let history = samples.entry(addr).or_default();
                history.push_back((now, received));
                while history.front().is_some_and(|(at, _)| now - *at > WINDOW) {
                    history.pop_front();
                }
                let (since, before) = history[0];
                let span = (now - since).as_secs_f64();
                // judge a full window only, so that a burst at connect time is not misjudged
                if span < WINDOW.as_secs_f64() * 0.7 {
                    continue;
                }
                let rate = (received - before) as f64 / span;
                if rate > limit as f64 {
                    self.ban(addr, rate, received).await;
                }
            }
        }
    }

    async fn ban(&self, addr: SocketAddr, rate: f64, received: u64) {
        lock(&self.banned).insert(addr.ip());
        self.bans.fetch_add(1, Relaxed);
        warn!(
            parent: self.node.span(),
            "{} banned {}: {rate:.0} messages/s over the last second ({received} in all)",
            self.node.name(),
            addr.ip()
        );
        self.node.disconnect(addr).await;
    }
}

/// A peer that only talks: it never listens, and dials from its own loopback address.
#[pea2pea::node]
#[derive(Clone)]
struct Talker {
    node: Node,
}

protocol! {
    Talker speaks Chat over length_delimited(max_frame = 1 KiB) {
        on Chat::Say(_) => {}
    }
}

impl Talker {
    async fn new(name: &str) -> Self {
        let talker = Self {
            node: Node::new(Config {
                name: Some(name.into()),
                listener_addr: None,
                ..Default::default()
            }),
        };
        talker.enable_protocols().await;
        talker
    }

    /// Dials `target` from `ip` (port chosen by the system).
    async fn dial_from(&self, ip: &str, target: SocketAddr) -> io::Result<()> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(ip.parse().expect("an IP"), 0))?;
        self.node().connect_using_socket(target, socket).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(
        &["limit", "seconds"],
        "rate_limiting [--limit MSGS_PER_SEC] [--seconds S]",
    );
    let limit: u64 = args.get("limit", 100);
    let seconds: u64 = args.get("seconds", 3);
    if limit < 5 || seconds == 0 {
        eprintln!("--limit must be at least 5 and --seconds at least 1");
        return ExitCode::FAILURE;
    }
    match run(limit, Duration::from_secs(seconds)).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rate_limiting: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(limit: u64, duration: Duration) -> io::Result<bool> {
    let guard = Guard {
        node: Node::new(Config {
            name: Some("guard".into()),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        }),
        banned: Default::default(),
        bans: Default::default(),
        refused: Default::default(),
    };
    let guard_addr = guard.start().await?;
    let monitor = tokio::spawn(guard.clone().monitor(limit));
    println!(
        "rate_limiting: a guard on {guard_addr} bans peers over {limit} messages/s (judged over \
         the last second, sampled every {} ms)",
        SAMPLE_EVERY.as_millis()
    );

    let honest = Talker::new("honest").await;
    let flooder = Talker::new("flooder").await;
    honest.dial_from("127.0.0.2", guard_addr).await?;
    flooder.dial_from("127.0.0.3", guard_addr).await?;

    // the honest peer talks at a fifth of the limit for the whole run
    let pace = Duration::from_secs_f64(5.0 / limit as f64);
    let talking = {
        let honest = honest.clone();
        tokio::spawn(async move {
            let (started, mut sent) = (Instant::now(), 0u64);
            while started.elapsed() < duration {
                if honest
                    .send(guard_addr, Chat::Say("hello".into()))
                    .await
                    .is_err()
                {
                    break;
                }
                sent += 1;
                tokio::time::sleep(pace).await;
            }
            sent
        })
    };
    // the flooder sends as fast as its connection takes it, until it is cut off
    let started = Instant::now();
    let mut flooded = 0u64;
    while started.elapsed() < duration
        && flooder
            .send(guard_addr, Chat::Say("spam".into()))
            .await
            .is_ok()
    {
        flooded += 1;
    }
    let cut_after = started.elapsed();
    let banned = wait_until(Duration::from_secs(5), || guard.bans.load(Relaxed) == 1).await;
    // it redials; the guard's handshake turns it away
    let _ = wait_until(Duration::from_secs(5), || {
        !flooder.node().is_connected(guard_addr)
    })
    .await;
    let _ = flooder.dial_from("127.0.0.3", guard_addr).await;
    let refused = wait_until(Duration::from_secs(5), || guard.refused.load(Relaxed) >= 1).await;

    let sent = talking.await.map_err(io::Error::other)?;
    let delivered = |guard: &Guard| {
        guard
            .node()
            .connection_infos()
            .into_values()
            .find(|info| info.addr().ip().to_string() == "127.0.0.2")
            .map_or(0, |info| info.stats().received().0)
    };
    let all_delivered = wait_until(Duration::from_secs(5), || delivered(&guard) == sent).await;
    let honest_stayed = honest.node().is_connected(guard_addr);
    println!(
        "  honest   127.0.0.2  sent {sent} messages at {:.0}/s; {} delivered; {}",
        1.0 / pace.as_secs_f64(),
        delivered(&guard),
        if honest_stayed {
            "still connected at the end"
        } else {
            "CUT OFF"
        }
    );
    println!(
        "  flooder  127.0.0.3  sent {flooded} messages in {cut_after:.2?} ({:.0}/s) before it was {}; \
         its redial was {}",
        flooded as f64 / cut_after.as_secs_f64(),
        if banned {
            "banned and disconnected"
        } else {
            "NOT banned"
        },
        if refused {
            "refused in the handshake"
        } else {
            "NOT refused"
        }
    );
    println!(
        "  guard    bans {}, connections refused in the handshake {}",
        guard.bans.load(Relaxed),
        guard.refused.load(Relaxed)
    );

    monitor.abort();
    for node in [guard.node(), honest.node(), flooder.node()] {
        node.shut_down().await;
    }
    Ok(banned && refused && honest_stayed && all_delivered)
}
