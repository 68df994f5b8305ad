//! Encrypted, mutually authenticated connections with the Noise protocol (`Noise_XX`, via the
//! `snow` crate), under DSL-routed messages.
//!
//! ```text
//! cargo run --example noise
//! ```
//!
//! The Noise handshake is a hand-written `Handshake` (`handshake = custom` in `protocol!`): it
//! runs XX over the raw TCP stream, then takes the stream and returns it wrapped in a
//! [`NoiseStream`] (in `pea2pea_examples::noise_stream`, shared with the `libp2p` example)
//! that encrypts everything written and decrypts everything read. From then on the connection
//! is an ordinary byte stream, so the DSL's length-delimited framing and typed handlers work
//! on it unchanged.
//!
//! Why wrap the stream rather than encrypt in the codecs: a Noise session is per connection
//! and shared by both directions, and the codecs that `protocol!` builds are stateless
//! (`MessageCodec`); per-frame encryption would mean hand-written `Reading` and `Writing`
//! impls plus a side table handing each connection's keys from the handshake to its two
//! codecs. Wrapping keeps the crypto in one place and the protocol declarative.
//!
//! alice reaches bob through a relay that plays eavesdropper: it forwards every byte and looks
//! for the plaintext in them. Both peers learn each other's static key in the handshake.

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
// the stream a handshake gets (tokio's, or a simulated one under --cfg pea2pea_sim)
use pea2pea::net::TcpStream;
use pea2pea::{
    Config, Connection, ConnectionSide, Message, Node, Pea2Pea, protocol, protocols::Handshake,
};
use pea2pea_examples::noise_stream::{MAX_NOISE_MSG, NoiseStream, handshake_state, noise_error};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

/// X25519 keys, ChaCha20-Poly1305, BLAKE2s; XX: both sides send their static key, encrypted.
const PATTERN: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

#[derive(Message, Debug)]
enum Talk {
    Ask(String),
    Answer(String),
    Blob(Bytes),
    Received { len: u64, sum: u64 },
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    /// This node's static Noise key pair: its identity.
    keys: Arc<snow::Keypair>,
    /// The static public key each connected peer proved it holds.
    peer_keys: Arc<Mutex<HashMap<SocketAddr, Vec<u8>>>>,
    heard: mpsc::UnboundedSender<String>,
}

protocol! {
    Peer speaks Talk over length_delimited(max_frame = 1 MiB) {
        handshake = custom,
        on Talk::Ask(question) from addr => {
            let _ = self.send_fast(addr, Talk::Answer(format!("yes: {question}")));
        }
        on Talk::Blob(bytes) from addr => {
            let sum = bytes.iter().map(|&b| b as u64).sum();
            let _ = self.send_fast(addr, Talk::Received { len: bytes.len() as u64, sum });
        }
        on Talk::Answer(text) => { let _ = self.heard.send(text); }
        on Talk::Received { len, sum } => {
            let _ = self.heard.send(format!("got {len} bytes, byte sum {sum}"));
        }
    }
}

impl Handshake for Peer {
    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        // the side in `conn` is the peer's: when it says Responder, this node dialled
        let initiator = conn.side() == ConnectionSide::Responder;
        let mut stream = self.take_stream(&mut conn);
        let noise = noise_xx(&mut stream, &self.keys, initiator).await?;
        let their_key = noise
            .get_remote_static()
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        self.peer_keys
            .lock()
            .unwrap()
            .insert(conn.addr(), their_key);
        self.return_stream(&mut conn, NoiseStream::new(stream, noise));
        Ok(conn)
    }
}

/// Runs the three XX messages (`-> e`, `<- e, ee, s, es`, `-> s, se`), each sent with a
/// 2-byte length, and returns the session keys.
async fn noise_xx(
    stream: &mut TcpStream,
    keys: &snow::Keypair,
    initiator: bool,
) -> io::Result<snow::TransportState> {
    let mut state = handshake_state(PATTERN, &keys.private, initiator)?;

    let mut buf = vec![0u8; MAX_NOISE_MSG];
    while !state.is_handshake_finished() {
        if state.is_my_turn() {
            let len = state.write_message(&[], &mut buf).map_err(noise_error)?;
            stream.write_all(&(len as u16).to_be_bytes()).await?;
            stream.write_all(&buf[..len]).await?;
        } else {
            let len = stream.read_u16().await? as usize;
            let mut message = vec![0u8; len];
            stream.read_exact(&mut message).await?;
            state
                .read_message(&message, &mut buf)
                .map_err(noise_error)?;
        }
    }
    state.into_transport_mode().map_err(noise_error)
}

/// Forwards one connection from `listener` to `target`, counting the bytes and looking for
/// `needle` in them (a match split across two reads is missed; the messages here are short).
async fn eavesdropping_relay(
    listener: TcpListener,
    target: SocketAddr,
    needle: &'static [u8],
    seen: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
) -> io::Result<()> {
    let (client, _) = listener.accept().await?;
    let server = tokio::net::TcpStream::connect(target).await?;
    let (client_rx, client_tx) = client.into_split();
    let (server_rx, server_tx) = server.into_split();
    let pipe = |mut from: tokio::net::tcp::OwnedReadHalf,
                mut to: tokio::net::tcp::OwnedWriteHalf| {
        let (seen, bytes) = (seen.clone(), bytes.clone());
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = from.read(&mut buf).await?;
                if n == 0 {
                    return to.shutdown().await;
                }
                bytes.fetch_add(n as u64, Relaxed);
                if buf[..n].windows(needle.len()).any(|w| w == needle) {
                    seen.fetch_add(1, Relaxed);
                }
                to.write_all(&buf[..n]).await?;
            }
        }
    };
    let _ = tokio::join!(pipe(client_rx, server_tx), pipe(server_rx, client_tx));
    Ok(())
}

fn peer(name: &str) -> (Peer, mpsc::UnboundedReceiver<String>) {
    let keys = snow::Builder::new(PATTERN.parse().unwrap())
        .generate_keypair()
        .expect("the default resolver makes X25519 keys");
    let (heard, inbox) = mpsc::unbounded_channel();
    let peer = Peer {
        node: Node::new(Config {
            name: Some(name.into()),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        }),
        keys: Arc::new(keys),
        peer_keys: Default::default(),
        heard,
    };
    (peer, inbox)
}

fn hex(key: &[u8]) -> String {
    key.iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        + "…"
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("noise example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> io::Result<bool> {
    let (alice, mut alice_heard) = peer("alice");
    let (bob, _) = peer("bob");
    alice.enable_protocols().await;
    let bob_addr = bob.start().await?;
    println!("alice's static key {}", hex(&alice.keys.public));
    println!("bob's static key   {}", hex(&bob.keys.public));

    let needle: &'static [u8] = b"attack at dawn";
    let (seen, relayed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let relay_addr = listener.local_addr()?;
    let relay = tokio::spawn(eavesdropping_relay(
        listener,
        bob_addr,
        needle,
        seen.clone(),
        relayed.clone(),
    ));

    alice.node().connect(relay_addr).await?;
    let bob_seen_by_alice = alice.peer_keys.lock().unwrap()[&relay_addr].clone();
    let name = |key: &[u8]| match key {
        k if k == bob.keys.public => "bob",
        k if k == alice.keys.public => "alice",
        _ => "a stranger",
    };
    println!(
        "alice sees {} at the other end: {}",
        hex(&bob_seen_by_alice),
        name(&bob_seen_by_alice)
    );
    // bob registers the connection a moment after alice's connect returns
    pea2pea_examples::wait_until(Duration::from_secs(5), || bob.node().num_connected() == 1).await;
    let alice_seen_by_bob = bob.peer_keys.lock().unwrap().values().next().cloned();
    let alice_seen_by_bob = alice_seen_by_bob.unwrap_or_default();
    println!(
        "bob sees   {} at the other end: {}",
        hex(&alice_seen_by_bob),
        name(&alice_seen_by_bob)
    );

    alice
        .send(relay_addr, Talk::Ask("attack at dawn?".into()))
        .await?;
    let blob: Bytes = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    let expected_sum: u64 = blob.iter().map(|&b| b as u64).sum();
    alice.send(relay_addr, Talk::Blob(blob)).await?;

    let mut answers = Vec::new();
    while answers.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), alice_heard.recv()).await {
            Ok(Some(answer)) => {
                println!("bob answered alice: {answer}");
                answers.push(answer);
            }
            _ => break,
        }
    }

    alice.node().shut_down().await;
    bob.node().shut_down().await;
    let _ = relay.await;
    let seen = seen.load(Relaxed);
    println!(
        "the relay carried {} bytes and saw \"attack at dawn\" {seen} times",
        relayed.load(Relaxed)
    );
    Ok(bob_seen_by_alice == bob.keys.public
        && alice_seen_by_bob == alice.keys.public
        && answers.len() == 2
        && answers[1] == format!("got {} bytes, byte sum {expected_sum}", 300 * 1024)
        && seen == 0)
}
