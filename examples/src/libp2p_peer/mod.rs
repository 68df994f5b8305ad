//! A pea2pea node that is a libp2p peer over TCP: the node of the `libp2p` example (whose doc
//! comment explains the layers) and of its test.
//!
//! | layer | where | pea2pea protocol |
//! | --- | --- | --- |
//! | ping, identify | [`stream`] (per yamux stream, after multistream-select) | `Reading::process_message` |
//! | yamux | [`yamux`] (frames), [`session`] (streams, windows) | `Reading` / `Writing` codec |
//! | multistream-select `/yamux/1.0.0` | [`upgrade`], [`multistream`] | `Handshake` |
//! | Noise XX with libp2p's payload | [`noise`], over [`NoiseStream`](crate::noise_stream::NoiseStream) | `Handshake` (replaces the stream) |
//! | multistream-select `/noise` | [`upgrade`], [`multistream`] | `Handshake` |
//! | TCP | the engine | |

pub mod identify;
pub mod multistream;
pub mod noise;
pub mod session;
pub mod stream;
pub mod upgrade;
pub mod yamux;

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use libp2p_identity::{Keypair, PeerId};
use multiaddr::{Multiaddr, Protocol};
use pea2pea::{
    Config, Connection, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

pub use self::{
    identify::Identify,
    noise::NoiseIdentity,
    upgrade::{Layer, UpgradeError},
};
use self::{
    session::{Outcome, Session},
    stream::Request,
    yamux::{Frame, FrameCodec},
};

/// What our identify message gives as the protocol family.
pub const PROTOCOL_VERSION: &str = "ipfs/0.1.0";
/// The stream protocols this node speaks, as its identify message lists them.
pub const PROTOCOLS: [&str; 2] = [stream::PING, identify::PROTOCOL];
/// How long a `ping` call waits for all its answers.
pub const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// A pea2pea node that speaks libp2p: see the module doc.
#[pea2pea::node]
#[derive(Clone)]
pub struct Libp2pPeer {
    node: Node,
    inner: Arc<Inner>,
}

struct Inner {
    noise: NoiseIdentity,
    agent_version: String,
    listen_addrs: Mutex<Vec<Multiaddr>>,
    /// The yamux session of every connection that finished its upgrade: made in the
    /// handshake, removed in `on_disconnect`. A connection the engine refuses after a
    /// successful handshake (a shutdown race) leaves its entry until the next connection from
    /// that address replaces it: at most one per address.
    sessions: Mutex<HashMap<SocketAddr, Session>>,
    /// The PeerId that `dial` expects at an address, while it dials.
    expected: Mutex<HashMap<SocketAddr, PeerId>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    multistream: AtomicU64,
    noise: AtomicU64,
    /// Shared with each connection's codec, which counts the frames it cannot decode.
    yamux: Arc<AtomicU64>,
    streams_reset: AtomicU64,
    pings_answered: AtomicU64,
}

/// What the node counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections that failed while negotiating a protocol (security or muxer).
    pub multistream_rejections: u64,
    /// Connections that failed the Noise handshake or PeerId check.
    pub noise_rejections: u64,
    /// Connections closed for a malformed frame or a breach of yamux.
    pub yamux_rejections: u64,
    /// Streams reset because their protocol failed (the connection lives on).
    pub streams_reset: u64,
    /// Pings of peers this node answered.
    pub pings_answered: u64,
}

/// What the node knows of a connected peer.
#[derive(Clone, Debug)]
pub struct PeerInfo {
    /// The PeerId that Noise authenticated.
    pub peer_id: PeerId,
    /// Whether this node dialled the connection.
    pub dialed: bool,
    /// The peer's identify message, once received.
    pub identify: Option<Identify>,
    /// How many of its pings this node answered.
    pub pings_answered: u64,
}

/// The multiaddr of a TCP address: `/ip4/127.0.0.1/tcp/4001`.
pub fn multiaddr_of(addr: SocketAddr) -> Multiaddr {
    Multiaddr::from(addr.ip()).with(Protocol::Tcp(addr.port()))
}

/// The TCP address in a multiaddr like `/ip4/127.0.0.1/tcp/4001[/p2p/...]`.
pub fn socket_addr_of(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut parts = addr.iter();
    let ip = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) => Some(SocketAddr::new(ip, port)),
        _ => None,
    }
}

fn not_connected(addr: SocketAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        format!("no libp2p session with {addr}"),
    )
}

impl Libp2pPeer {
    /// A node with the identity `keypair` (ed25519), introducing itself as `agent_version`.
    pub fn new(
        config: Config,
        keypair: Keypair,
        agent_version: impl Into<String>,
    ) -> io::Result<Self> {
        let inner = Inner {
            noise: NoiseIdentity::new(keypair)?,
            agent_version: agent_version.into(),
            listen_addrs: Default::default(),
            sessions: Default::default(),
            expected: Default::default(),
            counters: Default::default(),
        };
        Ok(Self {
            node: Node::new(config),
            inner: Arc::new(inner),
        })
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.inner.noise.peer_id()
    }

    /// Enables the protocols (handshake, reading, writing, on_connect, on_disconnect).
    pub async fn enable_protocols(&self) {
        self.enable_handshake().await;
        self.enable_reading().await;
        self.enable_writing().await;
        self.enable_on_connect().await;
        self.enable_on_disconnect().await;
    }

    /// Enables the protocols and listens; the address is then in our identify message.
    pub async fn start(&self) -> io::Result<SocketAddr> {
        self.enable_protocols().await;
        let addr = self.node().toggle_listener().await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the config has no listener_addr",
            )
        })?;
        *self.inner.listen_addrs.lock().unwrap() = vec![multiaddr_of(addr)];
        Ok(addr)
    }

    /// The address to give a libp2p node to dial: `/ip4/.../tcp/.../p2p/<our PeerId>`.
    pub fn listen_multiaddr(&self) -> Option<Multiaddr> {
        let addrs = self.inner.listen_addrs.lock().unwrap();
        Some(addrs.first()?.clone().with(Protocol::P2p(self.peer_id())))
    }

    /// Connects to the libp2p node at `addr` and upgrades the connection; with `expected`, a
    /// peer that proves another PeerId is refused. Returns the peer's PeerId.
    pub async fn dial(&self, addr: SocketAddr, expected: Option<PeerId>) -> io::Result<PeerId> {
        if let Some(peer) = expected {
            self.inner.expected.lock().unwrap().insert(addr, peer);
        }
        let connected = self.node().connect(addr).await;
        self.inner.expected.lock().unwrap().remove(&addr);
        connected?;
        self.peer(addr)
            .map(|peer| peer.peer_id)
            .ok_or_else(|| not_connected(addr))
    }

    /// Sends `count` pings to the peer at `addr` on a stream of their own, one after the
    /// other, and returns their round trips.
    pub async fn ping(&self, addr: SocketAddr, count: usize) -> io::Result<Vec<Duration>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        let id = self.open(addr, Request::Ping { count, reply })?;
        match tokio::time::timeout(PING_TIMEOUT, answer).await {
            Ok(Ok(round_trips)) => round_trips,
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("the connection to {addr} closed before the pings were answered"),
            )),
            Err(_) => {
                let error = io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{addr} did not answer {count} pings within {PING_TIMEOUT:?}"),
                );
                let mut out = Vec::new();
                if let Some(session) = self.inner.sessions.lock().unwrap().get_mut(&addr) {
                    session.reset(id, &error, &mut out);
                }
                let _ = self.send_frames(addr, out);
                Err(error)
            }
        }
    }

    /// Opens a stream to `addr` for `request`.
    fn open(&self, addr: SocketAddr, request: Request) -> io::Result<u32> {
        let mut out = Vec::new();
        let id = {
            let mut sessions = self.inner.sessions.lock().unwrap();
            let session = sessions.get_mut(&addr).ok_or_else(|| not_connected(addr))?;
            session.open(request, &mut out)?
        };
        self.send_frames(addr, out)?;
        Ok(id)
    }

    /// What the node knows of the peer at `addr`, while it is connected.
    pub fn peer(&self, addr: SocketAddr) -> Option<PeerInfo> {
        let sessions = self.inner.sessions.lock().unwrap();
        let session = sessions.get(&addr)?;
        Some(PeerInfo {
            peer_id: session.peer_id,
            dialed: session.dialer,
            identify: session.state.identify.clone(),
            pings_answered: session.state.pings_answered,
        })
    }

    /// The address of the connected peer `peer_id`.
    pub fn addr_of(&self, peer_id: &PeerId) -> Option<SocketAddr> {
        let sessions = self.inner.sessions.lock().unwrap();
        sessions
            .iter()
            .find(|(_, session)| session.peer_id == *peer_id)
            .map(|(addr, _)| *addr)
    }

    /// Ends the session with `addr` cleanly: a yamux go-away (written before the socket
    /// closes), then the disconnect.
    pub async fn close(&self, addr: SocketAddr) -> bool {
        self.go_away(addr, yamux::GO_AWAY_NORMAL).await;
        self.node().disconnect(addr).await
    }

    /// Says go-away to every peer, then shuts the node down.
    pub async fn shut_down(&self) {
        for addr in self.node().connected_addrs() {
            self.go_away(addr, yamux::GO_AWAY_NORMAL).await;
        }
        self.node().shut_down().await;
    }

    /// Writes a go-away with `code` to `addr` and waits until it is written (or failed).
    async fn go_away(&self, addr: SocketAddr, code: u32) {
        if let Ok(written) = self.unicast(addr, Frame::go_away(code)) {
            let _ = written.await;
        }
    }

    /// What the node counted.
    pub fn counts(&self) -> Counts {
        let c = &self.inner.counters;
        Counts {
            multistream_rejections: c.multistream.load(Relaxed),
            noise_rejections: c.noise.load(Relaxed),
            yamux_rejections: c.yamux.load(Relaxed),
            streams_reset: c.streams_reset.load(Relaxed),
            pings_answered: c.pings_answered.load(Relaxed),
        }
    }

    /// Queues `frames` for `addr` in order. A frame that cannot be queued would leave the peer
    /// with a broken stream, so the connection is closed then.
    fn send_frames(&self, addr: SocketAddr, frames: Vec<Frame>) -> io::Result<()> {
        for frame in frames {
            if let Err(e) = self.unicast_fast(addr, frame) {
                warn!(parent: self.node().span(), "couldn't queue a frame for {addr}: {e}; closing");
                let node = self.node().clone();
                tokio::spawn(async move { node.disconnect(addr).await });
                return Err(e);
            }
        }
        Ok(())
    }

    /// Our identify message for a peer at `addr`.
    fn our_identify(&self, addr: SocketAddr) -> Identify {
        Identify {
            protocol_version: PROTOCOL_VERSION.into(),
            agent_version: self.inner.agent_version.clone(),
            public_key: self.inner.noise.keypair.public(),
            listen_addrs: self.inner.listen_addrs.lock().unwrap().clone(),
            observed_addr: Some(multiaddr_of(addr)),
            protocols: PROTOCOLS.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn count(&self, layer: Layer) {
        let c = &self.inner.counters;
        let counter = match layer {
            Layer::Multistream => &c.multistream,
            Layer::Noise => &c.noise,
            Layer::Yamux => &*c.yamux,
        };
        counter.fetch_add(1, Relaxed);
    }
}

impl Handshake for Libp2pPeer {
    const TIMEOUT_MS: u64 = 10_000;

    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        let addr = conn.addr();
        // the side in `conn` is the peer's: when it says Responder, this node dialled
        let dialer = conn.side() == ConnectionSide::Responder;
        let expected = self.inner.expected.lock().unwrap().get(&addr).copied();
        let tcp = self.take_stream(&mut conn);
        let (peer_id, stream) =
            match upgrade::upgrade(tcp, &self.inner.noise, dialer, expected).await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    self.count(e.layer);
                    warn!("rejected {addr}: {} failed: {}", e.layer, e.error);
                    return Err(e.into());
                }
            };
        info!("{addr} is {peer_id}");
        let session = Session::new(peer_id, dialer, self.our_identify(addr));
        self.inner.sessions.lock().unwrap().insert(addr, session);
        self.return_stream(&mut conn, stream);
        Ok(conn)
    }
}

impl Reading for Libp2pPeer {
    type Message = Frame;
    type Codec = FrameCodec;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> FrameCodec {
        FrameCodec::new(self.inner.counters.yamux.clone())
    }

    async fn process_message(&self, addr: SocketAddr, frame: Frame) {
        let mut out = Vec::new();
        let outcome = {
            let mut sessions = self.inner.sessions.lock().unwrap();
            let Some(session) = sessions.get_mut(&addr) else {
                return;
            };
            let answered = session.state.pings_answered;
            let outcome = session.on_frame(frame, &mut out);
            let newly_answered = session.state.pings_answered - answered;
            self.inner
                .counters
                .pings_answered
                .fetch_add(newly_answered, Relaxed);
            outcome
        };
        if self.send_frames(addr, out).is_err() {
            return;
        }
        match outcome {
            Ok(Outcome::Fine) => {}
            Ok(Outcome::StreamReset(id, e)) => {
                self.inner.counters.streams_reset.fetch_add(1, Relaxed);
                warn!("reset stream {id} of {addr}: {e}");
            }
            Ok(Outcome::GoAway(code)) => {
                debug!("{addr} ends the session (go-away code {code})");
                self.node().disconnect(addr).await;
            }
            Err(e) => {
                self.count(Layer::Yamux);
                warn!("closing the connection to {addr}: {e}");
                self.go_away(addr, yamux::GO_AWAY_PROTOCOL_ERROR).await;
                self.node().disconnect(addr).await;
            }
        }
    }
}

impl Writing for Libp2pPeer {
    /// A few frames answer each frame read; streams share the queue.
    const MESSAGE_QUEUE_DEPTH: usize = 256;

    type Message = Frame;
    type Codec = FrameCodec;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> FrameCodec {
        FrameCodec::new(self.inner.counters.yamux.clone())
    }
}

impl OnConnect for Libp2pPeer {
    /// Asks the new peer who it is, as every libp2p node does.
    async fn on_connect(&self, addr: SocketAddr) {
        if let Err(e) = self.open(addr, Request::Identify) {
            warn!("couldn't ask {addr} for its identify message: {e}");
        }
    }
}

impl OnDisconnect for Libp2pPeer {
    async fn on_disconnect(&self, addr: SocketAddr, origin: DisconnectOrigin) {
        // dropping the session fails the pings still waiting on its streams
        let session = self.inner.sessions.lock().unwrap().remove(&addr);
        if let Some(session) = session {
            info!(
                "{addr} ({}) is gone ({origin:?}; {} streams were open)",
                session.peer_id,
                session.open_streams()
            );
        }
    }
}
