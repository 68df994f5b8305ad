//! One yamux stream: its flow-control windows and buffers, and the protocol that runs on it —
//! first multistream-select, then ping (`/ipfs/ping/1.0.0`) or identify.
//!
//! Everything here is sans-I/O: the session feeds a stream the bytes of its data frames, lets
//! the protocol consume what it can (`advance`), and collects the frames the stream wants to
//! send (`flush`), within the credit the peer granted.

use std::{
    io, mem,
    time::{Duration, Instant},
};

use bytes::{BufMut, Bytes, BytesMut};
use libp2p_identity::PeerId;
use tokio::sync::oneshot;

use super::{
    identify::{self, Identify},
    multistream,
    yamux::{FIN, Frame, WINDOW},
};

/// The ping protocol: the dialer sends 32 random bytes, the listener sends them back, on the
/// same stream as often as the dialer likes.
pub const PING: &str = "/ipfs/ping/1.0.0";
/// A ping's size.
pub const PING_LEN: usize = 32;
/// Bytes queued for a peer that grants us no credit, past which we stop echoing its pings (its
/// own window then fills and stops it).
const OUTBOX_LIMIT: usize = 64 * 1024;
/// The largest data frame we send (frames interleave the streams of a connection).
const MAX_FRAME_BODY: usize = 16 * 1024;

/// What the answer to our pings is sent on: the round trips, or why they failed.
pub type PingReply = oneshot::Sender<io::Result<Vec<Duration>>>;

/// What this node asks of the peer on a stream it opens.
pub enum Request {
    /// `count` pings, one after the other; the round trips go to `reply`.
    Ping { count: usize, reply: PingReply },
    /// The peer's identify message.
    Identify,
}

impl Request {
    fn protocol(&self) -> &'static str {
        match self {
            Request::Ping { .. } => PING,
            Request::Identify => identify::PROTOCOL,
        }
    }
}

/// What a stream's protocol learns about the peer, kept by its session.
#[derive(Debug, Default)]
pub struct PeerState {
    /// The peer's identify message, once received.
    pub identify: Option<Identify>,
    /// How many of the peer's pings this node answered.
    pub pings_answered: u64,
}

/// What the protocols on a stream need from their session.
pub struct Ctx<'a> {
    /// The peer, as Noise authenticated it.
    pub peer: &'a PeerId,
    /// Our identify message for this peer.
    pub ours: &'a Identify,
    /// Where what we learn goes.
    pub state: &'a mut PeerState,
}

/// Where a stream's protocol is.
enum Role {
    /// The peer opened the stream: we await its header and proposals.
    Listener { header: bool, refused: usize },
    /// We opened it and proposed `request`'s protocol: we await the header and the answer.
    Dialer { header: bool, request: Request },
    /// We echo the peer's pings.
    PingEcho,
    /// We ping the peer.
    PingOut(PingOut),
    /// We await the peer's identify message.
    IdentifyIn,
    /// Nothing more is expected; data is dropped.
    Finished,
}

struct PingOut {
    left: usize,
    round_trips: Vec<Duration>,
    payload: [u8; PING_LEN],
    sent: Instant,
    reply: Option<PingReply>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn random_payload() -> [u8; PING_LEN] {
    let mut payload = [0u8; PING_LEN];
    getrandom::fill(&mut payload).expect("the OS has a random number generator");
    payload
}

/// One stream of a session.
pub struct Stream {
    id: u32,
    role: Role,
    /// Received, not yet consumed; never more than the window we granted.
    inbox: BytesMut,
    /// Waiting for credit to be sent.
    outbox: BytesMut,
    send_window: u32,
    recv_window: u32,
    /// Consumed since our last window update.
    consumed: u32,
    fin_wanted: bool,
    fin_sent: bool,
    fin_received: bool,
}

impl Stream {
    fn new(id: u32, role: Role, send_window: u32) -> Self {
        Self {
            id,
            role,
            inbox: BytesMut::new(),
            outbox: BytesMut::new(),
            send_window,
            recv_window: WINDOW,
            consumed: 0,
            fin_wanted: false,
            fin_sent: false,
            fin_received: false,
        }
    }

    /// A stream the peer opened, with `send_window` bytes of credit.
    pub fn inbound(id: u32, send_window: u32) -> Self {
        let role = Role::Listener {
            header: false,
            refused: 0,
        };
        Self::new(id, role, send_window)
    }

    /// A stream we open for `request`; the header and proposal are queued at once.
    pub fn outbound(id: u32, request: Request) -> Self {
        let protocol = request.protocol();
        let role = Role::Dialer {
            header: false,
            request,
        };
        let mut stream = Self::new(id, role, WINDOW);
        multistream::encode(multistream::HEADER, &mut stream.outbox);
        multistream::encode(protocol, &mut stream.outbox);
        stream
    }

    /// Takes a data frame's bytes; more than the window we granted breaks the session.
    pub fn receive(&mut self, body: &[u8]) -> io::Result<()> {
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        if len > self.recv_window {
            return Err(invalid(format!(
                "yamux: stream {} got {len} bytes, more than the {} its window allows",
                self.id, self.recv_window
            )));
        }
        self.recv_window -= len;
        if !self.fin_received {
            self.inbox.extend_from_slice(body);
        }
        Ok(())
    }

    /// Takes more credit; a window past 4 GiB breaks the session.
    pub fn grant(&mut self, credit: u32) -> io::Result<()> {
        self.send_window = self.send_window.checked_add(credit).ok_or_else(|| {
            invalid(format!(
                "yamux: stream {} was granted a window past 4 GiB",
                self.id
            ))
        })?;
        Ok(())
    }

    /// The peer will send no more.
    pub fn close_by_peer(&mut self) {
        self.fin_received = true;
    }

    /// Both sides have closed their halves: the stream can go.
    pub fn is_done(&self) -> bool {
        self.fin_sent && self.fin_received
    }

    /// Runs the protocol over what has arrived. An error is the stream's alone: the session
    /// resets it.
    pub fn advance(&mut self, ctx: &mut Ctx<'_>) -> io::Result<()> {
        let before = self.inbox.len();
        while self.step(ctx)? {}
        self.consumed += (before - self.inbox.len()) as u32;
        if self.fin_received {
            self.on_peer_closed()?;
        }
        Ok(())
    }

    /// One step of the protocol; `false` when it needs more bytes.
    fn step(&mut self, ctx: &mut Ctx<'_>) -> io::Result<bool> {
        match &mut self.role {
            Role::Listener { header, refused } => {
                let Some(message) = multistream::decode(&mut self.inbox)? else {
                    return Ok(false);
                };
                if !*header {
                    if message != multistream::HEADER {
                        return Err(invalid(format!(
                            "multistream-select: expected the header, got {message:?}"
                        )));
                    }
                    *header = true;
                    multistream::encode(multistream::HEADER, &mut self.outbox);
                    return Ok(true);
                }
                match message.as_str() {
                    PING => {
                        multistream::encode(PING, &mut self.outbox);
                        self.role = Role::PingEcho;
                    }
                    identify::PROTOCOL => {
                        multistream::encode(identify::PROTOCOL, &mut self.outbox);
                        self.outbox.put_slice(&ctx.ours.encode());
                        self.fin_wanted = true;
                        self.role = Role::Finished;
                    }
                    _ if *refused < multistream::MAX_PROPOSALS => {
                        *refused += 1;
                        multistream::encode(multistream::NOT_AVAILABLE, &mut self.outbox);
                    }
                    _ => {
                        return Err(invalid(format!(
                            "multistream-select: {} proposals we do not speak",
                            multistream::MAX_PROPOSALS + 1
                        )));
                    }
                }
                Ok(true)
            }
            Role::Dialer { header, request } => {
                let Some(message) = multistream::decode(&mut self.inbox)? else {
                    return Ok(false);
                };
                let protocol = request.protocol();
                if !*header {
                    if message != multistream::HEADER {
                        return Err(invalid(format!(
                            "multistream-select: expected the header, got {message:?}"
                        )));
                    }
                    *header = true;
                } else if message == protocol {
                    self.start_request();
                } else {
                    return Err(invalid(format!(
                        "multistream-select: proposed {protocol}, the peer answered {message:?}"
                    )));
                }
                Ok(true)
            }
            Role::PingEcho => {
                if self.inbox.len() < PING_LEN || self.outbox.len() >= OUTBOX_LIMIT {
                    return Ok(false);
                }
                let ping = self.inbox.split_to(PING_LEN);
                self.outbox.put_slice(&ping);
                ctx.state.pings_answered += 1;
                Ok(true)
            }
            Role::PingOut(ping) => {
                if self.inbox.len() < PING_LEN {
                    return Ok(false);
                }
                let echo = self.inbox.split_to(PING_LEN);
                if echo[..] != ping.payload {
                    return Err(invalid("ping: the answer is not the ping we sent".into()));
                }
                ping.round_trips.push(ping.sent.elapsed());
                ping.left -= 1;
                if ping.left > 0 {
                    ping.payload = random_payload();
                    ping.sent = Instant::now();
                    self.outbox.put_slice(&ping.payload);
                } else {
                    if let Some(reply) = ping.reply.take() {
                        let _ = reply.send(Ok(mem::take(&mut ping.round_trips)));
                    }
                    self.fin_wanted = true;
                    self.role = Role::Finished;
                }
                Ok(true)
            }
            Role::IdentifyIn => match Identify::decode(&mut self.inbox, ctx.peer)? {
                None => Ok(false),
                Some(info) => {
                    ctx.state.identify = Some(info);
                    self.fin_wanted = true;
                    self.role = Role::Finished;
                    Ok(true)
                }
            },
            Role::Finished => {
                self.inbox.clear();
                Ok(false)
            }
        }
    }

    /// The peer accepted our proposal: send the first ping, or await its identify message.
    fn start_request(&mut self) {
        let Role::Dialer { request, .. } = mem::replace(&mut self.role, Role::Finished) else {
            unreachable!("called on an accepted proposal only");
        };
        self.role = match request {
            Request::Ping { count, reply } => {
                let payload = random_payload();
                self.outbox.put_slice(&payload);
                Role::PingOut(PingOut {
                    left: count,
                    round_trips: Vec::with_capacity(count),
                    payload,
                    sent: Instant::now(),
                    reply: Some(reply),
                })
            }
            Request::Identify => Role::IdentifyIn,
        };
    }

    /// The peer closed its half: close ours, or fail what was still expected of it.
    fn on_peer_closed(&mut self) -> io::Result<()> {
        let closed = |what: &str| Err(invalid(format!("the peer closed the stream {what}")));
        match &self.role {
            Role::Dialer { request, .. } => {
                closed(&format!("before accepting {}", request.protocol()))
            }
            Role::PingOut(ping) => closed(&format!("with {} of its pings unanswered", ping.left)),
            Role::IdentifyIn => closed("before its identify message was whole"),
            Role::Listener { .. } | Role::PingEcho | Role::Finished => {
                self.fin_wanted = true;
                Ok(())
            }
        }
    }

    /// Hands `error` to whoever awaits this stream's result (a `ping` call); the stream is
    /// finished.
    pub fn fail(&mut self, error: &io::Error) {
        let reply = match mem::replace(&mut self.role, Role::Finished) {
            Role::Dialer {
                request: Request::Ping { reply, .. },
                ..
            } => Some(reply),
            Role::PingOut(ping) => ping.reply,
            _ => None,
        };
        if let Some(reply) = reply {
            let _ = reply.send(Err(io::Error::new(error.kind(), error.to_string())));
        }
    }

    /// Moves what the credit allows into data frames, then the FIN once all is sent, and
    /// grants the peer more credit once half the window is consumed.
    pub fn flush(&mut self, out: &mut Vec<Frame>) {
        while !self.outbox.is_empty() && self.send_window > 0 {
            let n = self
                .outbox
                .len()
                .min(self.send_window as usize)
                .min(MAX_FRAME_BODY);
            out.push(Frame::data(self.id, 0, self.outbox.split_to(n).freeze()));
            self.send_window -= n as u32;
        }
        if self.fin_wanted && !self.fin_sent && self.outbox.is_empty() {
            out.push(Frame::data(self.id, FIN, Bytes::new()));
            self.fin_sent = true;
        }
        if self.consumed >= WINDOW / 2 && !self.fin_received {
            out.push(Frame::window_update(self.id, 0, self.consumed));
            self.recv_window += self.consumed;
            self.consumed = 0;
        }
    }
}
