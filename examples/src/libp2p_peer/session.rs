//! A connection's yamux session: its streams, who may open which, and what each frame does.
//!
//! The dialer of the connection numbers its streams 1, 3, 5...; the listener 2, 4, 6....
//! A stream opens with a `SYN` on its first frame and is accepted with an `ACK`; each side
//! half-closes it with a `FIN`, or resets it with an `RST`. A frame for a stream that is
//! already gone is ignored, as rust-yamux does: it may have been sent before the peer learnt.

use std::{collections::HashMap, io};

use libp2p_identity::PeerId;

use super::{
    identify::Identify,
    stream::{Ctx, PeerState, Request, Stream},
    yamux::{ACK, FIN, Frame, Kind, RST, SYN, WINDOW},
};

/// The most streams open at once on one connection; a peer's stream past it is reset.
pub const MAX_STREAMS: usize = 32;

/// What a frame did, besides the frames it made us send.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing the node needs to know.
    Fine,
    /// A stream's protocol failed; the stream was reset.
    StreamReset(u32, io::Error),
    /// The peer ends the session, with this code.
    GoAway(u32),
}

/// The yamux state of one connection.
pub struct Session {
    /// The peer, as Noise authenticated it.
    pub peer_id: PeerId,
    /// Whether this node dialled the connection (and so numbers its streams odd).
    pub dialer: bool,
    /// What the peer's streams told us.
    pub state: PeerState,
    /// What we say about ourselves on this connection.
    ours: Identify,
    next_id: u32,
    streams: HashMap<u32, Stream>,
}

fn violation(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("yamux: {what}"))
}

impl Session {
    /// A session over a freshly upgraded connection.
    pub fn new(peer_id: PeerId, dialer: bool, ours: Identify) -> Self {
        Self {
            peer_id,
            dialer,
            state: PeerState::default(),
            ours,
            next_id: if dialer { 1 } else { 2 },
            streams: HashMap::new(),
        }
    }

    /// Opens a stream for `request`; its frames go to `out`. Returns the stream's id.
    pub fn open(&mut self, request: Request, out: &mut Vec<Frame>) -> io::Result<u32> {
        if self.streams.len() >= MAX_STREAMS {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!("{MAX_STREAMS} streams are open on this connection already"),
            ));
        }
        let id = self.next_id;
        self.next_id = id
            .checked_add(2)
            .ok_or_else(|| io::Error::other("this connection has used up its stream ids"))?;
        let mut stream = Stream::outbound(id, request);
        out.push(Frame::window_update(id, SYN, 0));
        stream.flush(out);
        self.streams.insert(id, stream);
        Ok(id)
    }

    /// Resets one of our streams (a `ping` call that gave up), failing it with `why`.
    pub fn reset(&mut self, id: u32, why: &io::Error, out: &mut Vec<Frame>) {
        if let Some(mut stream) = self.streams.remove(&id) {
            stream.fail(why);
            out.push(Frame::window_update(id, RST, 0));
        }
    }

    /// Applies one frame from the peer; the frames it makes us send go to `out`. An error is a
    /// breach of yamux that ends the connection.
    pub fn on_frame(&mut self, frame: Frame, out: &mut Vec<Frame>) -> io::Result<Outcome> {
        match frame.kind {
            Kind::Ping => {
                if !frame.has(ACK) {
                    out.push(Frame::ping(ACK, frame.value));
                }
                Ok(Outcome::Fine)
            }
            Kind::GoAway => Ok(Outcome::GoAway(frame.value)),
            Kind::Data | Kind::WindowUpdate => self.on_stream_frame(frame, out),
        }
    }

    fn on_stream_frame(&mut self, frame: Frame, out: &mut Vec<Frame>) -> io::Result<Outcome> {
        let id = frame.stream;
        if id == 0 {
            return Err(violation(format!("a {:?} frame for stream 0", frame.kind)));
        }
        if frame.has(RST) {
            if let Some(mut stream) = self.streams.remove(&id) {
                stream.fail(&io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "the peer reset the stream",
                ));
            }
            return Ok(Outcome::Fine);
        }
        if frame.has(SYN) && !self.accept(&frame, out)? {
            return Ok(Outcome::Fine);
        }
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(Outcome::Fine);
        };
        match frame.kind {
            Kind::Data => stream.receive(&frame.body)?,
            // a SYN's credit was counted when the stream was accepted
            Kind::WindowUpdate if !frame.has(SYN) => stream.grant(frame.value)?,
            _ => {}
        }
        if frame.has(FIN) {
            stream.close_by_peer();
        }
        let mut ctx = Ctx {
            peer: &self.peer_id,
            ours: &self.ours,
            state: &mut self.state,
        };
        if let Err(e) = stream.advance(&mut ctx) {
            stream.fail(&e);
            self.streams.remove(&id);
            out.push(Frame::window_update(id, RST, 0));
            return Ok(Outcome::StreamReset(id, e));
        }
        stream.flush(out);
        if stream.is_done() {
            self.streams.remove(&id);
        }
        Ok(Outcome::Fine)
    }

    /// Accepts a stream the peer opens with `frame`: `false` if it was refused (reset).
    fn accept(&mut self, frame: &Frame, out: &mut Vec<Frame>) -> io::Result<bool> {
        let id = frame.stream;
        // the dialer's streams are odd: the peer's are odd exactly when we did not dial
        if (id % 2 == 1) == self.dialer {
            return Err(violation(format!(
                "the peer opened stream {id}, a number of our side's"
            )));
        }
        if self.streams.contains_key(&id) {
            return Err(violation(format!("the peer opened stream {id} twice")));
        }
        if self.streams.len() >= MAX_STREAMS {
            out.push(Frame::window_update(id, RST, 0));
            return Ok(false);
        }
        // a window update that opens a stream adds its credit to the initial window
        let extra = if frame.kind == Kind::WindowUpdate {
            frame.value
        } else {
            0
        };
        let window = WINDOW
            .checked_add(extra)
            .ok_or_else(|| violation(format!("stream {id} opened with a window past 4 GiB")))?;
        self.streams.insert(id, Stream::inbound(id, window));
        out.push(Frame::window_update(id, ACK, 0));
        Ok(true)
    }

    /// How many streams are open.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }
}
