//! TCP hole punching through a rendezvous node: two peers that do not listen at all end up
//! connected, by dialling each other at the same moment from the ports the rendezvous saw.
//!
//! ```text
//! cargo run --example hole_punching                  # all three on loopback, in one process
//! hole_punching --role rendezvous --listen ADDR [--peers 2]
//! hole_punching --role peer --rendezvous ADDR --bind IP --name NAME
//! ```
//!
//! Each peer binds a socket with `SO_REUSEADDR` and `SO_REUSEPORT` to a port of its own and
//! connects to the rendezvous from it (`connect_using_socket`). The rendezvous sees each
//! peer's address as it arrives — what a peer behind a NAT would not know about itself — and
//! once two have registered, it tells each one its own observed address and its partner's.
//! Both then dial the partner from a new socket bound to the *same* local port. Neither has a
//! listener, so the connection can only come from a TCP simultaneous open: each side's SYN
//! meets the other side's socket in `SYN-SENT`. The two SYNs must cross: one that arrives
//! before the partner's socket exists is refused. So the rendezvous names the instant to dial,
//! and each peer sleeps until just before it and spins to it, so that both dials leave within
//! microseconds; a refused attempt is retried by both at the next agreed instant (every 5 ms,
//! for up to 20 s). On an idle machine the first attempt usually succeeds; on a busy one, where
//! a peer's thread may not be running at the instant, it can take a hundred. Behind real NATs
//! the early attempts are also what opens each side's mapping.
//!
//! On loopback the peers bind 127.0.0.2 and 127.0.0.3, each on a thread and runtime of its
//! own; with the roles, each runs in its own process, on its own host (the namespace testbed,
//! `scripts/testbed`, runs them across three namespaces).

use std::{
    io,
    net::{IpAddr, SocketAddr},
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
use pea2pea_examples::{Args, lock, wait_until};
use tokio::{net::TcpSocket, sync::oneshot};

#[derive(Message, Debug)]
enum Punch {
    /// A peer to the rendezvous: here I am.
    Register { name: String },
    /// The rendezvous to a peer: the address you came from, your partner's, and when to dial
    /// (microseconds since the Unix epoch; then again every `RETRY_EVERY` until connected).
    Introduce {
        observed: SocketAddr,
        partner: SocketAddr,
        partner_name: String,
        dial_at_us: u64,
    },
    /// Over the punched connection.
    Hello { name: String },
}

// ---- the rendezvous: pairs peers up in the order they register ----

#[pea2pea::node]
#[derive(Clone)]
struct Rendezvous {
    node: Node,
    waiting: Arc<Mutex<Option<(SocketAddr, String)>>>,
    introduced: Arc<Mutex<usize>>,
}

protocol! {
    Rendezvous speaks Punch over length_delimited(max_frame = 1 KiB) {
        on Punch::Register { name } from addr => self.register(addr, name),
        on _ => {} // only peers hear the others
    }
}

impl Rendezvous {
    fn register(&self, addr: SocketAddr, name: String) {
        println!("rendezvous: {name} registered from {addr}");
        let Some((first, first_name)) = lock(&self.waiting).take() else {
            *lock(&self.waiting) = Some((addr, name));
            return;
        };
        // both peers dial at the same instant, a moment from now (the clock is the machine's;
        // across machines it would be the rendezvous' estimate of each one's offset)
        let dial_at_us = unix_micros() + LEAD.as_micros() as u64;
        for (to, observed, partner, partner_name) in [
            (first, first, addr, name.clone()),
            (addr, addr, first, first_name),
        ] {
            let introduction = Punch::Introduce {
                observed,
                partner,
                partner_name,
                dial_at_us,
            };
            if let Err(e) = self.send_fast(to, introduction) {
                eprintln!("rendezvous: could not introduce {to}: {e}");
            }
        }
        *lock(&self.introduced) += 2;
    }
}

// ---- a peer: registers, learns its partner, punches ----

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    name: String,
    introduction: Arc<Mutex<Option<oneshot::Sender<Introduction>>>>,
    greeted_by: Arc<Mutex<Option<(SocketAddr, String)>>>,
}

protocol! {
    Peer speaks Punch over length_delimited(max_frame = 1 KiB) {
        on Punch::Introduce { observed, partner, partner_name, dial_at_us } => {
            if let Some(tell) = lock(&self.introduction).take() {
                let _ = tell.send(Introduction { observed, partner, partner_name, dial_at_us });
            }
        }
        on Punch::Hello { name } from addr => *lock(&self.greeted_by) = Some((addr, name)),
        on Punch::Register { .. } => {} // peers do not pair anyone
    }
}

/// What the rendezvous told a peer.
struct Introduction {
    observed: SocketAddr,
    partner: SocketAddr,
    partner_name: String,
    dial_at_us: u64,
}

/// A socket bound to `local` that other sockets may share the port with.
fn shared_port_socket(local: SocketAddr) -> io::Result<TcpSocket> {
    let socket = match local {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(local)?;
    Ok(socket)
}

/// How far ahead the rendezvous sets the moment to dial, and how often both peers try again.
const LEAD: Duration = Duration::from_millis(100);
const RETRY_EVERY: Duration = Duration::from_millis(5);
/// How many times the peers try before giving up (20 s).
const ATTEMPTS: u32 = 4000;

fn unix_micros() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_micros() as u64)
}

/// Waits until `at_us` (Unix microseconds): sleeps until 2 ms before, then spins, so that
/// the dial leaves within microseconds of the instant (a timer alone is a millisecond off).
async fn wait_for_instant(at_us: u64) {
    let now = unix_micros();
    if at_us > now + 2_000 {
        tokio::time::sleep(Duration::from_micros(at_us - now - 2_000)).await;
    }
    while unix_micros() < at_us {
        std::hint::spin_loop();
    }
}

impl Peer {
    fn new(name: &str) -> (Self, oneshot::Receiver<Introduction>) {
        let (tell, told) = oneshot::channel();
        let peer = Self {
            node: Node::new(Config {
                name: Some(name.into()),
                listener_addr: None, // a peer never listens
                ..Default::default()
            }),
            name: name.into(),
            introduction: Arc::new(Mutex::new(Some(tell))),
            greeted_by: Default::default(),
        };
        (peer, told)
    }

    /// Connects to the rendezvous from a shared port on `ip` and registers; returns the
    /// local address, which the punch reuses.
    async fn register(&self, rendezvous: SocketAddr, ip: IpAddr) -> io::Result<SocketAddr> {
        self.enable_protocols().await;
        // the rendezvous may not be listening yet (another process, another host): retry
        let mut tries = 0;
        let local = loop {
            let socket = shared_port_socket(SocketAddr::new(ip, 0))?;
            let local = socket.local_addr()?;
            match self.node().connect_using_socket(rendezvous, socket).await {
                Ok(()) => break local,
                Err(e) if tries == 50 => return Err(e),
                Err(_) => tries += 1,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.send(
            rendezvous,
            Punch::Register {
                name: self.name.clone(),
            },
        )
        .await?;
        Ok(local)
    }

    /// Dials `partner` from `local` at the agreed instants until the two have greeted each
    /// other over one connection; returns the number of the attempt that made it.
    async fn punch(
        &self,
        local: SocketAddr,
        partner: SocketAddr,
        dial_at_us: u64,
    ) -> io::Result<u32> {
        let every = RETRY_EVERY.as_micros() as u64;
        let mut attempt = 0;
        while attempt < ATTEMPTS {
            let socket = shared_port_socket(local)?;
            wait_for_instant(dial_at_us + u64::from(attempt) * every).await;
            let dialled = self.node().connect_using_socket(partner, socket).await;
            // a connection one side saw open may have been reset on the other: greet to be sure
            let hello = Punch::Hello {
                name: self.name.clone(),
            };
            if dialled.is_ok()
                && self.send(partner, hello).await.is_ok()
                && wait_until(Duration::from_secs(1), || lock(&self.greeted_by).is_some()).await
            {
                return Ok(attempt + 1);
            }
            // refused: the SYNs did not cross; both try again at the next instant still ahead
            let now = unix_micros();
            attempt = attempt.max(((now.saturating_sub(dial_at_us)) / every) as u32 + 1);
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection with {partner} after {ATTEMPTS} attempts"),
        ))
    }
}

/// A peer from start to finish: register, learn the partner, punch, greet, leave.
async fn peer(rendezvous: SocketAddr, ip: IpAddr, name: &str) -> io::Result<String> {
    let (peer, told) = Peer::new(name);
    let result = async {
        let local = peer.register(rendezvous, ip).await?;
        let Introduction { observed, partner, partner_name, dial_at_us } = tokio::time::timeout(Duration::from_secs(30), told)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no partner within 30 s"))?
            .map_err(|_| io::Error::other("the rendezvous went away"))?;
        println!("{name}: bound {local}; the rendezvous saw {observed}; {partner_name} is at {partner}");
        let attempts = peer.punch(local, partner, dial_at_us).await?;
        let from = lock(&peer.greeted_by).clone();
        let (from_addr, from_name) = from.expect("punch returns once greeted");
        peer.node().disconnect(rendezvous).await;
        Ok(format!(
            "{name}: punched through to {from_name} at {from_addr} from {local} in {attempts} attempt(s), \
             with no listener on either side: a TCP simultaneous open"
        ))
    }
    .await;
    peer.node().shut_down().await;
    result
}

/// A rendezvous on `listen` that introduces `peers` peers, then waits for them to leave.
async fn rendezvous(listen: SocketAddr, peers: usize) -> io::Result<SocketAddr> {
    let node = rendezvous_node(listen);
    let addr = node.start().await?;
    println!("rendezvous: listening on {addr}");
    serve(node, peers).await?;
    Ok(addr)
}

fn rendezvous_node(listen: SocketAddr) -> Rendezvous {
    Rendezvous {
        node: Node::new(Config {
            name: Some("rendezvous".into()),
            listener_addr: Some(listen),
            ..Default::default()
        }),
        waiting: Default::default(),
        introduced: Default::default(),
    }
}

/// Waits (at most 60 s) until `peers` peers were introduced and have left, then shuts down.
async fn serve(node: Rendezvous, peers: usize) -> io::Result<()> {
    let done = wait_until(Duration::from_secs(60), || {
        *lock(&node.introduced) >= peers && node.node().num_connected() == 0
    })
    .await;
    node.node().shut_down().await;
    match done {
        true => Ok(()),
        false => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peers did not all register and leave within 60 s",
        )),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(
        &["role", "listen", "peers", "rendezvous", "bind", "name"],
        "hole_punching [--role rendezvous --listen ADDR [--peers 2] | \
         --role peer --rendezvous ADDR --bind IP --name NAME]",
    );
    let addr = |key: &str| {
        args.get_str(key, "")
            .parse::<SocketAddr>()
            .map_err(|_| io::Error::other(format!("--{key} needs an address like 10.77.0.1:7100")))
    };
    let result = match args.get_str("role", "") {
        "" => on_loopback().await,
        "rendezvous" => match addr("listen") {
            Ok(listen) => rendezvous(listen, args.get("peers", 2)).await.map(drop),
            Err(e) => Err(e),
        },
        "peer" => match (addr("rendezvous"), args.get_str("bind", "").parse()) {
            (Ok(at), Ok(ip)) => peer(at, ip, args.get_str("name", "peer"))
                .await
                .map(|line| println!("{line}")),
            (Err(e), _) => Err(e),
            (_, Err(_)) => Err(io::Error::other("--bind needs an IP address")),
        },
        other => Err(io::Error::other(format!(
            "unknown role {other:?}: use rendezvous or peer"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hole_punching: {e}");
            ExitCode::FAILURE
        }
    }
}

/// All three on loopback: the rendezvous on 127.0.0.1, the peers on 127.0.0.2 and .3.
async fn on_loopback() -> io::Result<()> {
    let node = rendezvous_node("127.0.0.1:0".parse().unwrap());
    let at = node.start().await?;
    println!("rendezvous: listening on {at}");
    let serving = tokio::spawn(serve(node, 2));
    // each peer on a thread and runtime of its own, as if it were a program of its own: on
    // one runtime, the two dials could be run one after the other by the same thread
    let on_own_thread = |ip: &str, name: &'static str| {
        let ip: IpAddr = ip.parse().unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(peer(at, ip, name))
        })
    };
    let (ann, bob) = (
        on_own_thread("127.0.0.2", "ann"),
        on_own_thread("127.0.0.3", "bob"),
    );
    for peer in [ann, bob] {
        println!(
            "{}",
            peer.join()
                .map_err(|_| io::Error::other("a peer panicked"))??
        );
    }
    serving.await.map_err(io::Error::other)?
}
