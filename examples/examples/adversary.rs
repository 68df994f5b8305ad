//! A deliberately misbehaving client against a pea2pea node: stalled and garbled handshakes,
//! lying frame headers, garbage, an invalid rpc request, a slow drip, a peer that never
//! reads, and a connection flood. The target survives each one, goes on serving an honest
//! peer, and its counters say what it rejected.
//!
//! ```text
//! cargo run --release --example adversary                   # a target in this process
//! cargo run --release --example adversary -- --target ADDR  # your own node (see below)
//! ```
//!
//! By default the target is a DSL node started in this process, with the limits of a real
//! node but shorter timeouts, so that the run takes seconds: a 1 s handshake timeout, a 2 s
//! idle timeout and a 1 s write timeout. After each attack the example prints what the
//! attacker saw and what changed in the target's counters: `Node::heuristics()`, the DSL's
//! `dsl::fingerprint_rejections` and `dsl::invalid_requests`, and the disconnect origins its
//! `on_disconnect` hook recorded (a frame that does not decode has no counter of its own; it
//! closes the connection with origin `Reading`).
//!
//! With `--target ADDR` the same attacks go to a node you run yourself (on loopback, or in a
//! network you own), and only the attacker's side is shown. They assume a 4-byte big-endian
//! length framing and the DSL's `handshake = fingerprint` (which the attacker passes by
//! echoing the target's own fingerprint back).

use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};
use pea2pea::{
    Config, Message, Node, Pea2Pea,
    dsl::{self, Rpc},
    protocol,
};
use pea2pea_examples::{Args, wait_until};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    task::JoinSet,
};

// ---- the target ----

#[derive(Message, Debug)]
enum Note {
    Text(#[message(max_len = 1024)] String),
}

/// Asks for a page of `n` zero bytes (at most 32 KiB).
#[derive(Message, Debug)]
struct Fetch(u32);

#[derive(Message, Debug)]
struct Page(Bytes);

#[pea2pea::node]
#[derive(Clone)]
struct Target {
    node: Node,
    /// How its connections ended, by `DisconnectOrigin`.
    origins: Arc<Mutex<BTreeMap<String, u64>>>,
}

protocol! {
    Target speaks Note over length_delimited(max_frame = 64 KiB) {
        name = "adversary target",
        handshake = fingerprint,
        handshake_timeout = 1 s,
        idle_timeout = 2 s,
        write_timeout = 1 s,
        on Note::Text(_) => {}
        on_disconnect(_peer, origin) => {
            *self.origins.lock().unwrap().entry(format!("{origin:?}")).or_default() += 1;
        }
        rpc Fetch(n) -> Page => Page(vec![0u8; n.min(32 * 1024) as usize].into()),
    }
}

fn target_node(name: &str) -> Target {
    Target {
        node: Node::new(Config {
            name: Some(name.into()),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            listener_backlog: 1024,
            max_connections: 128,
            max_connections_per_ip: 64,
            ..Default::default()
        }),
        origins: Default::default(),
    }
}

/// The target's counters at one moment.
#[derive(Clone, Default)]
struct Counters(BTreeMap<String, u64>);

impl Counters {
    fn of(target: &Target) -> Self {
        let node = target.node();
        let h = node.heuristics();
        let mut all = BTreeMap::from([
            ("handshake_timeouts".to_owned(), h.handshake_timeouts()),
            ("idle_timeouts".to_owned(), h.idle_timeouts()),
            ("write_timeouts".to_owned(), h.write_timeouts()),
            (
                "inbound_connections_rejected".to_owned(),
                h.inbound_connections_rejected(),
            ),
            ("accept_errors".to_owned(), h.accept_errors()),
            (
                "fingerprint_rejections".to_owned(),
                dsl::fingerprint_rejections(node),
            ),
            ("invalid_requests".to_owned(), dsl::invalid_requests(node)),
        ]);
        for (origin, n) in target.origins.lock().unwrap().iter() {
            all.insert(format!("disconnects({origin})"), *n);
        }
        Self(all)
    }

    fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// The counters that grew since `before`, as "name +n".
    fn since(&self, before: &Counters) -> String {
        let grown: Vec<String> = self
            .0
            .iter()
            .filter(|(key, n)| **n > before.get(key))
            .map(|(key, n)| format!("{key} +{}", n - before.get(key)))
            .collect();
        if grown.is_empty() {
            "nothing".into()
        } else {
            grown.join(", ")
        }
    }
}

// ---- the attacks ----

#[derive(Clone, Copy, PartialEq)]
enum Attack {
    HandshakeStall,
    HandshakeGarbage,
    HugeHeader,
    GarbageFrame,
    InvalidRequest,
    SlowDrip,
    NeverReads,
    Flood,
}

const ATTACKS: [Attack; 8] = [
    Attack::HandshakeStall,
    Attack::HandshakeGarbage,
    Attack::HugeHeader,
    Attack::GarbageFrame,
    Attack::InvalidRequest,
    Attack::SlowDrip,
    Attack::NeverReads,
    Attack::Flood,
];

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::HandshakeStall => "handshake stall",
            Attack::HandshakeGarbage => "handshake garbage",
            Attack::HugeHeader => "4 GiB frame header",
            Attack::GarbageFrame => "garbage frame",
            Attack::InvalidRequest => "invalid rpc request",
            Attack::SlowDrip => "slow drip",
            Attack::NeverReads => "never reads",
            Attack::Flood => "flood of 300 connections",
        }
    }

    /// The counter of an in-process target that the attack must make grow.
    fn expected(self) -> &'static str {
        match self {
            Attack::HandshakeStall => "handshake_timeouts",
            Attack::HandshakeGarbage => "fingerprint_rejections",
            Attack::HugeHeader | Attack::GarbageFrame => "disconnects(Reading)",
            Attack::InvalidRequest => "invalid_requests",
            Attack::SlowDrip => "idle_timeouts",
            Attack::NeverReads => "write_timeouts",
            Attack::Flood => "inbound_connections_rejected",
        }
    }
}

async fn run_attack(attack: Attack, target: SocketAddr) -> io::Result<String> {
    match attack {
        Attack::HandshakeStall => {
            // connect, take the target's greeting, and say nothing
            let mut socket = TcpStream::connect(target).await?;
            socket.read_exact(&mut [0u8; 16]).await?;
            closed(socket, Duration::from_secs(10)).await
        }
        Attack::HandshakeGarbage => {
            let mut socket = TcpStream::connect(target).await?;
            socket.read_exact(&mut [0u8; 16]).await?;
            socket.write_all(b"GET / HTTP/1.1\r\n").await?; // not the DSL's magic
            closed(socket, Duration::from_secs(10)).await
        }
        Attack::HugeHeader => {
            let mut socket = handshaken(target).await?;
            socket.write_all(&u32::MAX.to_be_bytes()).await?;
            closed(socket, Duration::from_secs(10)).await
        }
        Attack::GarbageFrame => {
            let mut socket = handshaken(target).await?;
            // a frame whose body starts with an unknown kind byte
            socket.write_all(&[0, 0, 0, 6, 0xee, 1, 2, 3, 4, 5]).await?;
            closed(socket, Duration::from_secs(10)).await
        }
        Attack::InvalidRequest => {
            let mut socket = handshaken(target).await?;
            // kind 1 (request), call id 0, Fetch's method id, then a varint that never ends
            let mut frame = BytesMut::new();
            frame.put_u8(1);
            frame.put_u8(0);
            frame.put_u64_le(<Fetch as Rpc<Target>>::METHOD);
            frame.put_slice(&[0xff; 12]);
            socket
                .write_all(&(frame.len() as u32).to_be_bytes())
                .await?;
            socket.write_all(&frame).await?;
            closed(socket, Duration::from_secs(10)).await
        }
        Attack::SlowDrip => {
            let mut socket = handshaken(target).await?;
            // a valid message, one byte every 100 ms: it would take 6 s to arrive whole
            let mut frame = BytesMut::new();
            let body = [0u8]
                .into_iter()
                .chain(Note::Text("x".repeat(54)).to_bytes());
            let body: Vec<u8> = body.collect();
            frame.put_u32(body.len() as u32);
            frame.put_slice(&body);
            let start = Instant::now();
            for (sent, byte) in frame.iter().enumerate() {
                if socket.write_all(&[*byte]).await.is_err() || dropped(&mut socket).await {
                    return Ok(format!(
                        "closed after {:.2?}, {sent} of {} bytes sent",
                        start.elapsed(),
                        frame.len()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok("never closed: the whole message got through".into())
        }
        Attack::NeverReads => {
            // a tiny receive window, and no reading at all
            let socket = TcpSocket::new_v4()?;
            socket.set_recv_buffer_size(4096)?;
            let mut socket = socket.connect(target).await?;
            pass_fingerprint(&mut socket).await?;
            let mut requests = BytesMut::new();
            for id in 0..1000u32 {
                let mut frame = BytesMut::new();
                frame.put_u8(1);
                frame.put_u8((id % 128) as u8); // a one-byte varint id
                frame.put_u64_le(<Fetch as Rpc<Target>>::METHOD);
                frame.put_slice(&Fetch(32 * 1024).to_bytes());
                requests.put_u32(frame.len() as u32);
                requests.put_slice(&frame);
            }
            let (mut rx, mut tx) = socket.into_split();
            // write on the side, and keep the write half open (a peer that half-closes is
            // gone, and the target serves requests while it waits to write their answers)
            let writer = tokio::spawn(async move {
                tx.write_all(&requests).await?;
                std::future::pending::<io::Result<()>>().await
            });
            // ignore the answers for a while (longer than the target's write timeout)...
            tokio::time::sleep(Duration::from_secs(3)).await;
            writer.abort();
            // ...then see what got through before the target gave up
            let mut got = 0;
            let mut buf = vec![0u8; 64 * 1024];
            let drained = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match rx.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got += n,
                    }
                }
            })
            .await;
            let asked = 1000 * 32 * 1024;
            match drained {
                Ok(()) if got < asked => Ok(format!(
                    "read nothing for 3 s: cut off after {:.1} of {} MiB",
                    got as f64 / (1 << 20) as f64,
                    asked >> 20
                )),
                Ok(()) => Ok("got every answer".into()),
                Err(_) => Ok("still connected 13 s later".into()),
            }
        }
        Attack::Flood => flood(target, 300).await,
    }
}

/// Opens `n` connections at once and holds them; reports how soon the target closed them.
async fn flood(target: SocketAddr, n: usize) -> io::Result<String> {
    let start = Instant::now();
    let mut sockets = JoinSet::new();
    for _ in 0..n {
        sockets.spawn(async move {
            let socket = TcpStream::connect(target).await.ok()?;
            closed(socket, Duration::from_secs(10)).await.ok()?;
            Some(start.elapsed())
        });
    }
    let (mut at_once, mut later, mut open) = (0, 0, 0);
    while let Some(result) = sockets.join_next().await {
        match result.ok().flatten() {
            Some(after) if after < Duration::from_millis(500) => at_once += 1,
            Some(_) => later += 1,
            None => open += 1,
        }
    }
    Ok(format!(
        "{at_once} closed at once, {later} after the handshake timeout{}",
        if open > 0 {
            format!(", {open} never closed")
        } else {
            String::new()
        }
    ))
}

/// Connects and passes the fingerprint handshake by sending the target's own hello back.
async fn handshaken(target: SocketAddr) -> io::Result<TcpStream> {
    let mut socket = TcpStream::connect(target).await?;
    pass_fingerprint(&mut socket).await?;
    Ok(socket)
}

/// Passes the DSL handshake by echoing the target's hello (its magic, length and hello, so
/// the fingerprint matches) and keeping the connection (verdict 0).
async fn pass_fingerprint(socket: &mut TcpStream) -> io::Result<()> {
    let mut head = [0u8; 10];
    socket.read_exact(&mut head).await?;
    let mut hello = vec![0u8; usize::from(u16::from_be_bytes([head[8], head[9]]))];
    socket.read_exact(&mut hello).await?;
    socket.write_all(&head).await?;
    socket.write_all(&hello).await?;
    socket.write_all(&[0]).await?;
    socket.read_exact(&mut [0u8; 1]).await?;
    Ok(())
}

/// Reads until the target closes the connection; says how long that took.
async fn closed(mut socket: TcpStream, limit: Duration) -> io::Result<String> {
    let start = Instant::now();
    let mut sink = [0u8; 1024];
    let mut answered = 0;
    let done = tokio::time::timeout(limit, async {
        loop {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answered += n,
            }
        }
    })
    .await;
    match done {
        Ok(()) if answered > 0 => Ok(format!(
            "got {answered} bytes back, then closed after {:.2?}",
            start.elapsed()
        )),
        Ok(()) => Ok(format!("closed after {:.2?}", start.elapsed())),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("still open after {limit:?}"),
        )),
    }
}

/// Whether the target has closed the connection (without waiting).
async fn dropped(socket: &mut TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_millis(1), socket.peek(&mut probe)).await,
        Ok(Ok(0) | Err(_))
    )
}

// ---- an honest peer ----

/// Connects a well-behaved node (from 127.0.0.2 when it can, so that it does not share the
/// attacker's per-IP budget) and fetches a page.
async fn honest_fetch(peer: &Target, target: SocketAddr) -> io::Result<Duration> {
    peer.enable_protocols().await;
    let start = Instant::now();
    let socket = TcpSocket::new_v4()?;
    if socket.bind("127.0.0.2:0".parse().unwrap()).is_ok() {
        peer.node().connect_using_socket(target, socket).await?;
    } else {
        peer.node().connect(target).await?;
    }
    let page = peer.call(target, Fetch(100)).await?;
    if page.0.len() == 100 {
        Ok(start.elapsed())
    } else {
        Err(io::Error::other("a wrong page"))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger_at("error");
    let args = Args::parse_or_exit(&["target"], "adversary [--target ADDR]");
    let external = match args.get_str("target", "") {
        "" => None,
        addr => match addr.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(e) => {
                eprintln!("bad --target {addr:?}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };

    let (local, addr) = match external {
        Some(addr) => (None, addr),
        None => {
            let target = target_node("target");
            match target.start().await {
                Ok(addr) => (Some(target), addr),
                Err(e) => {
                    eprintln!("the target couldn't listen: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    match &local {
        Some(_) => println!(
            "adversary: attacking a target node on {addr}, in this process (timeouts: handshake \
             1 s, idle 2 s, write 1 s; at most 64 connections per IP)"
        ),
        None => println!("adversary: attacking {addr}"),
    }
    println!(
        "  {:<26} {:<52} target's counters",
        "attack", "what the attacker saw"
    );

    let mut ok = true;
    for attack in ATTACKS {
        let before = local.as_ref().map(Counters::of);
        let honest_peer = target_node("honest");
        let (seen, honest) = if attack == Attack::Flood {
            // an honest peer connects while the flood holds the attacker's per-IP budget
            let flood = run_attack(attack, addr);
            let honest = async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                honest_fetch(&honest_peer, addr).await
            };
            let (seen, honest) = tokio::join!(flood, honest);
            (seen, Some(honest))
        } else {
            (run_attack(attack, addr).await, None)
        };
        let seen = seen.unwrap_or_else(|e| {
            ok = false;
            format!("FAILED: {e}")
        });
        let counted = match (&local, &before) {
            (Some(target), Some(before)) => {
                // the target's side may finish a moment after the attacker sees the close
                let grown = wait_until(Duration::from_secs(3), || {
                    let now = Counters::of(target);
                    now.get(attack.expected()) > before.get(attack.expected())
                })
                .await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                ok &= grown;
                let counted = Counters::of(target).since(before);
                if grown {
                    counted
                } else {
                    format!("{counted} (EXPECTED MORE)")
                }
            }
            _ => "-".into(),
        };
        println!("  {:<26} {:<52} {counted}", attack.name(), seen);
        if let Some(honest) = honest {
            match honest {
                Ok(took) => println!(
                    "  {:<26} served during the flood (connect + call in {took:.2?})",
                    "honest peer"
                ),
                Err(e) => {
                    ok = false;
                    println!("  {:<26} NOT SERVED during the flood: {e}", "honest peer");
                }
            }
        }
        // only now, so that its goodbye does not show among the attack's counters
        honest_peer.node().shut_down().await;
    }

    let honest_peer = target_node("honest");
    match honest_fetch(&honest_peer, addr).await {
        Ok(took) => {
            println!("the target survived: an honest peer connected and was served in {took:.2?}")
        }
        Err(e) => {
            ok = false;
            println!("the target did NOT serve an honest peer afterwards: {e}");
        }
    }
    if let Some(target) = &local {
        // the earlier honest peer's goodbye may still be on its way
        wait_until(Duration::from_secs(2), || {
            target.node().num_connected() <= 1
        })
        .await;
        println!(
            "accept errors: {}; connections still open: {} (the honest peer's)",
            target.node().heuristics().accept_errors(),
            target.node().num_connected()
        );
        target.node().shut_down().await;
    }
    honest_peer.node().shut_down().await;
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
