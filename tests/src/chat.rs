//! A node speaking a small derived `Chat` protocol over a choice of framings: the target of
//! the hostile-peer and leak suites, and the well-behaved peer that checks it still serves.
//!
//! The target echoes every `Say(s)` as `Echo(s)`; a good peer counts the echoes it gets back.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use pea2pea::{
    Config, Connection, ConnectionSide, DisconnectOrigin, Message, Node, Pea2Pea,
    codec::MessageCodec,
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use crate::{bounded, wait_until_desc};

/// The protocol: a derived enum with struct, tuple and unit variants.
#[derive(Message, Debug, Clone, PartialEq)]
pub enum Chat {
    Hello {
        name: String,
        #[message(max_len = 16)]
        tags: Vec<String>,
    },
    Say(String),
    Echo(String),
    Blob(Bytes),
    Bye,
}

/// The bytes the handshake exchanges, both ways.
pub const GREETING: &[u8; 2] = b"p2";
/// The handshake timeout of every `Peer`.
pub const HANDSHAKE_MS: u64 = 300;
/// The write timeout of every `Peer`.
pub const WRITE_MS: u64 = 300;
/// The maximum frame of the `LengthDelimited` framing.
pub const LDC_MAX_FRAME: usize = 64 * 1024;

/// How a `Peer` frames its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `MessageCodec` with its defaults: 4-byte big-endian header, 1 MiB maximum frame.
    Message,
    /// `MessageCodec` with an 8-byte header (and the default 1 MiB maximum).
    WideMessage,
    /// tokio-util's `LengthDelimitedCodec` (4-byte header) with a 64 KiB maximum frame; the
    /// frame's body is decoded with `Chat::from_bytes`.
    LengthDelimited,
}

/// One codec type for all framings.
pub struct ChatCodec {
    framing: Framing,
    message: MessageCodec<Chat>,
    ldc: LengthDelimitedCodec,
}

impl ChatCodec {
    pub fn new(framing: Framing) -> Self {
        let message = match framing {
            Framing::WideMessage => MessageCodec::new().length_width(8),
            _ => MessageCodec::new(),
        };
        let ldc = LengthDelimitedCodec::builder()
            .max_frame_length(LDC_MAX_FRAME)
            .new_codec();
        Self {
            framing,
            message,
            ldc,
        }
    }
}

impl Decoder for ChatCodec {
    type Item = Chat;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Chat>> {
        match self.framing {
            Framing::Message | Framing::WideMessage => self.message.decode(src),
            Framing::LengthDelimited => match self.ldc.decode(src)? {
                Some(frame) => Ok(Some(Chat::from_bytes(frame.freeze())?)),
                None => Ok(None),
            },
        }
    }
}

impl Encoder<Chat> for ChatCodec {
    type Error = io::Error;

    fn encode(&mut self, msg: Chat, dst: &mut BytesMut) -> io::Result<()> {
        match self.framing {
            Framing::Message | Framing::WideMessage => self.message.encode(msg, dst),
            Framing::LengthDelimited => self.ldc.encode(msg.to_bytes(), dst),
        }
    }
}

/// What a `Peer` saw.
#[derive(Default)]
pub struct Log {
    /// Messages passed to `process_message`.
    pub messages: AtomicUsize,
    /// `Echo`s received.
    pub echoes: AtomicUsize,
    pub connects: AtomicUsize,
    /// `on_disconnect` calls by origin (counters, not a list, so that the leak suite's own
    /// bookkeeping does not grow).
    pub origins: [AtomicUsize; 5],
}

fn origin_index(origin: DisconnectOrigin) -> usize {
    match origin {
        DisconnectOrigin::OnConnectAbort => 0,
        DisconnectOrigin::Reading => 1,
        DisconnectOrigin::Shutdown => 2,
        DisconnectOrigin::User => 3,
        DisconnectOrigin::Writing => 4,
    }
}

impl Log {
    pub fn disconnects(&self, origin: DisconnectOrigin) -> usize {
        self.origins[origin_index(origin)].load(Relaxed)
    }

    pub fn total_disconnects(&self) -> usize {
        self.origins.iter().map(|n| n.load(Relaxed)).sum()
    }
}

/// A `Chat` node. `IDLE_MS` is its Reading idle timeout.
#[derive(Clone)]
pub struct Peer<const IDLE_MS: u64 = 60_000> {
    pub node: Node,
    pub framing: Framing,
    pub log: Arc<Log>,
}

impl<const IDLE_MS: u64> Pea2Pea for Peer<IDLE_MS> {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl<const IDLE_MS: u64> Handshake for Peer<IDLE_MS> {
    const TIMEOUT_MS: u64 = HANDSHAKE_MS;

    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        let stream = self.borrow_stream(&mut conn);
        stream.write_all(GREETING).await?;
        let mut theirs = [0u8; 2];
        stream.read_exact(&mut theirs).await?;
        if &theirs != GREETING {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad greeting"));
        }
        Ok(conn)
    }
}

impl<const IDLE_MS: u64> Reading for Peer<IDLE_MS> {
    const IDLE_TIMEOUT_MS: u64 = IDLE_MS;

    type Message = Chat;
    type Codec = ChatCodec;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> ChatCodec {
        ChatCodec::new(self.framing)
    }

    async fn process_message(&self, source: SocketAddr, message: Chat) {
        self.log.messages.fetch_add(1, Relaxed);
        match message {
            Chat::Say(text) => {
                let _ = self.unicast_fast(source, Chat::Echo(text));
            }
            Chat::Echo(_) => {
                self.log.echoes.fetch_add(1, Relaxed);
            }
            _ => {}
        }
    }
}

impl<const IDLE_MS: u64> Writing for Peer<IDLE_MS> {
    const TIMEOUT_MS: u64 = WRITE_MS;

    type Message = Chat;
    type Codec = ChatCodec;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> ChatCodec {
        ChatCodec::new(self.framing)
    }
}

impl<const IDLE_MS: u64> OnConnect for Peer<IDLE_MS> {
    /// Not abortable, so that `on_connect` and `on_disconnect` pair up (HOOK-12).
    const ABORTABLE: bool = false;

    async fn on_connect(&self, _addr: SocketAddr) {
        self.log.connects.fetch_add(1, Relaxed);
    }
}

impl<const IDLE_MS: u64> OnDisconnect for Peer<IDLE_MS> {
    async fn on_disconnect(&self, _addr: SocketAddr, origin: DisconnectOrigin) {
        self.log.origins[origin_index(origin)].fetch_add(1, Relaxed);
    }
}

impl<const IDLE_MS: u64> Peer<IDLE_MS> {
    /// A node with `config`, with Reading, Writing, OnConnect and OnDisconnect enabled, and the
    /// Handshake if `handshake`; not listening yet.
    pub async fn new(config: Config, framing: Framing, handshake: bool) -> Self {
        let peer = Self {
            node: Node::new(config),
            framing,
            log: Default::default(),
        };
        if handshake {
            peer.enable_handshake().await;
        }
        peer.enable_reading().await;
        peer.enable_writing().await;
        peer.enable_on_connect().await;
        peer.enable_on_disconnect().await;
        peer
    }

    /// Like [`Peer::new`], listening on a loopback port; returns the listening address too.
    pub async fn listening(
        config: Config,
        framing: Framing,
        handshake: bool,
    ) -> (Self, SocketAddr) {
        let peer = Self::new(config, framing, handshake).await;
        let addr = peer.node.toggle_listener().await.unwrap().unwrap();
        (peer, addr)
    }

    /// Sends `n` `Say`s to `addr` (already connected), each confirmed, and waits for their
    /// `n` echoes.
    pub async fn say_and_hear(&self, addr: SocketAddr, n: usize) {
        let before = self.log.echoes.load(Relaxed);
        for i in 0..n {
            let confirmation = self
                .unicast(addr, Chat::Say(format!("hello {i}")))
                .expect("a good peer can queue a message");
            bounded(Duration::from_secs(5), "a good peer's send", confirmation)
                .await
                .expect("the confirmation channel is not dropped")
                .expect("a good peer's message is written");
        }
        wait_until_desc(Duration::from_secs(5), "a good peer's echoes", || {
            self.log.echoes.load(Relaxed) >= before + n
        })
        .await;
    }

    /// Connects to `addr`, exchanges `n` messages, and disconnects: proof that the node at
    /// `addr` still serves a well-behaved peer.
    pub async fn round_trip(&self, addr: SocketAddr, n: usize) {
        bounded(
            Duration::from_secs(5),
            "a good peer's connect",
            self.node.connect(addr),
        )
        .await
        .expect("a good peer can connect");
        self.say_and_hear(addr, n).await;
        assert!(
            bounded(
                Duration::from_secs(5),
                "a good peer's disconnect",
                self.node.disconnect(addr)
            )
            .await
        );
    }
}

/// A frame of `body` with a 4-byte big-endian length header (`Framing::Message` and
/// `Framing::LengthDelimited` agree on this).
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}
