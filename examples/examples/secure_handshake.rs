//! Authentication in the handshake: peers must share a protocol version, a network id and a
//! secret, proven with an HMAC challenge/response; everyone else is turned away before any
//! message is read.
//!
//! ```text
//! cargo run --example secure_handshake
//! ```
//!
//! The handshake is written by hand (`handshake = custom` in `protocol!`) and the messages
//! after it are routed by the DSL. Both sides send a header (magic, version, network id, a
//! random 16-byte challenge), check the other's header, then answer the other's challenge with
//! `HMAC-SHA256(secret, label, role, their challenge, my challenge, network)` and check the
//! answer they get. The role byte stops a peer from reflecting our own answer back at us; the
//! fresh challenges stop replays. A server then faces one good client and five bad ones, and
//! prints what it rejected and why.
//!
//! This authenticates who connects, not what is sent afterwards: the stream itself stays in
//! the clear (see the `noise` and `tls` examples for that).

use std::{
    collections::BTreeMap,
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use pea2pea::{
    Config, Connection, ConnectionSide, Message, Node, Pea2Pea, protocol, protocols::Handshake,
};
use sha2::{Digest, Sha256};
// the stream a handshake gets (tokio's, or a simulated one under --cfg pea2pea_sim)
use pea2pea::net::TcpStream;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::mpsc,
};

const MAGIC: [u8; 4] = *b"P2PA";
const LABEL: &[u8] = b"pea2pea secure_handshake v1";

/// What a node must share with a peer to be let in.
#[derive(Clone)]
struct Credentials {
    version: u16,
    network: u32,
    secret: Vec<u8>,
}

#[derive(Message, Debug)]
struct Note(String);

#[pea2pea::node]
#[derive(Clone)]
struct Member {
    node: Node,
    credentials: Arc<Credentials>,
    /// Why handshakes failed, counted by reason.
    rejections: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    /// Where the notes this node hears go.
    heard: mpsc::UnboundedSender<String>,
}

protocol! {
    Member speaks Note over length_delimited(max_frame = 16 KiB) {
        handshake = custom,
        on Note(text) from addr => { let _ = self.heard.send(format!("{addr}: {text}")); }
    }
}

impl Handshake for Member {
    // shorter than the 3 s default, so that the stalling client below is dropped quickly
    const TIMEOUT_MS: u64 = 1_000;

    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        // the side in `conn` is the peer's: when it says Responder, this node dialled
        let we_dialled = conn.side() == ConnectionSide::Responder;
        let stream = self.borrow_stream(&mut conn);
        match authenticate(stream, &self.credentials, we_dialled).await {
            Ok(()) => Ok(conn),
            Err(Rejected(reason, detail)) => {
                *self.rejections.lock().unwrap().entry(reason).or_default() += 1;
                Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{reason}: {detail}"),
                ))
            }
        }
    }
}

/// Why a handshake failed: a short reason (the counter's key) and the details.
struct Rejected(&'static str, String);

impl From<io::Error> for Rejected {
    fn from(e: io::Error) -> Self {
        Rejected("i/o error", e.to_string())
    }
}

async fn authenticate(
    stream: &mut TcpStream,
    ours: &Credentials,
    we_dialled: bool,
) -> Result<(), Rejected> {
    let mut challenge = [0u8; 16];
    getrandom::fill(&mut challenge).map_err(|e| Rejected("no randomness", e.to_string()))?;

    // 1. headers: both sides write first (26 bytes always fit in the socket buffers)
    let mut header = Vec::with_capacity(26);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&ours.version.to_be_bytes());
    header.extend_from_slice(&ours.network.to_be_bytes());
    header.extend_from_slice(&challenge);
    stream.write_all(&header).await?;

    let mut theirs = [0u8; 26];
    stream.read_exact(&mut theirs).await?;
    if theirs[..4] != MAGIC {
        return Err(Rejected("bad magic", format!("{:?}", &theirs[..4])));
    }
    let version = u16::from_be_bytes([theirs[4], theirs[5]]);
    if version != ours.version {
        return Err(Rejected(
            "other version",
            format!("peer speaks v{version}, we speak v{}", ours.version),
        ));
    }
    let network = u32::from_be_bytes([theirs[6], theirs[7], theirs[8], theirs[9]]);
    if network != ours.network {
        return Err(Rejected(
            "other network",
            format!("peer is on network {network}, we are on {}", ours.network),
        ));
    }
    let their_challenge = &theirs[10..26];

    // 2. answers: each side proves it knows the secret by keying a hash of both challenges
    let (our_role, their_role) = if we_dialled {
        (b"I", b"R")
    } else {
        (b"R", b"I")
    };
    let network = ours.network.to_be_bytes();
    let answer = |role: &[u8], asked: &[u8], asker: &[u8]| {
        hmac_sha256(&ours.secret, &[LABEL, role, asked, asker, &network])
    };
    stream
        .write_all(&answer(our_role, their_challenge, &challenge))
        .await?;
    let mut their_answer = [0u8; 32];
    stream.read_exact(&mut their_answer).await?;
    let expected = answer(their_role, &challenge, their_challenge);
    if !constant_time_eq(&their_answer, &expected) {
        return Err(Rejected(
            "bad proof",
            "the peer does not know the network's secret".into(),
        ));
    }
    Ok(())
}

/// HMAC (RFC 2104) with SHA-256, over the concatenation of `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    if key.len() > BLOCK {
        padded[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        padded[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(padded.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(padded.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without stopping at the first difference, so timing does not leak how much of a
/// forged answer was right.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn member(name: &str, credentials: Credentials) -> (Member, mpsc::UnboundedReceiver<String>) {
    let (heard, inbox) = mpsc::unbounded_channel();
    let member = Member {
        node: Node::new(Config {
            name: Some(name.into()),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            max_connections_per_ip: 16, // every client below comes from 127.0.0.1
            ..Default::default()
        }),
        credentials: Arc::new(credentials),
        rejections: Default::default(),
        heard,
    };
    (member, inbox)
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger_at("error");
    // the HMAC above is hand-made: check it against RFC 4231, test case 2
    assert_eq!(
        hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"])[..4],
        [0x5b, 0xdc, 0xc1, 0x46]
    );

    let network = Credentials {
        version: 1,
        network: 7,
        secret: b"correct horse battery staple".to_vec(),
    };
    let (server, mut heard) = member("server", network.clone());
    let server_addr = match server.start().await {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("the server couldn't listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("server on {server_addr}: protocol v1, network 7, a shared secret");

    let mut ok = true;

    // a client with the right credentials gets in and talks
    let (good, _) = member("good", network.clone());
    good.enable_protocols().await;
    match good.node().connect(server_addr).await {
        Ok(()) => {
            let sent = good
                .send(server_addr, Note("hello, I am one of you".into()))
                .await;
            let note = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await;
            match (sent, note) {
                (Ok(()), Ok(Some(note))) => {
                    println!(
                        "  {:<22} admitted; the server heard {note:?}",
                        "good client"
                    )
                }
                _ => {
                    println!("  {:<22} admitted, but its note was lost", "good client");
                    ok = false;
                }
            }
        }
        Err(e) => {
            println!("  {:<22} REFUSED: {e}", "good client");
            ok = false;
        }
    }
    good.node().shut_down().await;

    // clients that differ in one credential are refused, by both sides
    let impostors = [
        (
            "wrong secret",
            Credentials {
                secret: b"hunter2".to_vec(),
                ..network.clone()
            },
        ),
        (
            "other network",
            Credentials {
                network: 8,
                ..network.clone()
            },
        ),
        (
            "old version",
            Credentials {
                version: 0,
                ..network.clone()
            },
        ),
    ];
    for (label, credentials) in impostors {
        let (client, _) = member(label, credentials);
        client.enable_protocols().await;
        match client.node().connect(server_addr).await {
            Ok(()) => {
                println!("  {label:<22} ADMITTED (it should not have been)");
                ok = false;
            }
            Err(e) => println!("  {label:<22} refused ({e})"),
        }
        client.node().shut_down().await;
    }

    // and so are sockets that do not speak the handshake at all
    let raw = [
        (
            "an HTTP client",
            &b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        ),
        ("a silent socket", &b""[..]),
    ];
    for (label, bytes) in raw {
        match dropped_after(server_addr, bytes).await {
            Ok(after) => println!("  {label:<22} dropped by the server after {after:.2?}"),
            Err(e) => {
                println!("  {label:<22} NOT dropped: {e}");
                ok = false;
            }
        }
    }

    let rejections = server.rejections.lock().unwrap().clone();
    let timeouts = server.node().heuristics().handshake_timeouts();
    server.node().shut_down().await;
    let listed: Vec<String> = rejections
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect();
    println!(
        "server rejected: {}; handshake timeouts {timeouts}",
        listed.join(", ")
    );
    let expected = ["bad magic", "bad proof", "other network", "other version"];
    if !ok || timeouts != 1 || !expected.iter().all(|r| rejections.get(r) == Some(&1)) {
        println!("some of the above did not go as expected");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Connects with a plain socket, writes `bytes`, and waits (at most 5 s) for the server to
/// close the connection.
async fn dropped_after(addr: SocketAddr, bytes: &[u8]) -> io::Result<Duration> {
    let mut socket = tokio::net::TcpStream::connect(addr).await?;
    let start = Instant::now();
    socket.write_all(bytes).await?;
    let mut sink = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        // the server's own header may arrive first; read until the end of the stream
        loop {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    match closed {
        Ok(()) => Ok(start.elapsed()),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "still open after 5s",
        )),
    }
}
