//! The DSL handshake (`handshake = fingerprint`): each side sends a magic preamble and a hello
//! (its protocol's fingerprint, its listening address, its name, its version and the versions
//! it accepts, and a [`Description`] of its protocol), rejects a peer it cannot talk to
//! (`compat.rs` decides, and says what differs), and then both sides exchange a verdict on
//! keeping the connection (one connection per pair of nodes: `identity.rs`).
//!
//! A hello without a version or a description (an older build's, or one whose description did
//! not fit) is judged as before: the fingerprints must be equal.
//!
//! Wire format, both ways at once: the 8-byte [`MAGIC`], a 2-byte big-endian length, the
//! [`Hello`]; then one byte, `0` to keep the connection, `1` to drop it as a duplicate.

use std::{io, net::SocketAddr, sync::atomic::Ordering};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, warn};

use super::{
    compat::{self, Versions},
    describe::{self, Declared, Description},
    ext,
    identity::{self, Arrival, PeerIdentity, Verdict},
};
use crate::{Connection, ConnectionSide, Message, message::fingerprint, protocols::Handshake};

/// Says "a pea2pea DSL hello follows" (and its version). A node without the handshake
/// recognises its start (`codec::HELLO_PREFIX`) to say so.
pub(crate) const MAGIC: [u8; 8] = *b"p2pdsl/2";

/// The magic of the first DSL handshake (a fingerprint alone), recognised to say so.
const OLD_MAGIC: [u8; 8] = *b"p2pfp/1\0";

/// The longest hello: what its 2-byte length can say.
const MAX_HELLO: usize = u16::MAX as usize;

/// What each side says about itself. Later versions add trailing `#[message(default)]` fields;
/// `extensible` makes this version skip them (and older builds skip `versions` and
/// `description`).
#[derive(crate::Message, Debug, Clone, PartialEq)]
#[message(crate = "crate", extensible)]
pub(crate) struct Hello {
    /// The [`Protocol::FINGERPRINT`](super::Protocol::FINGERPRINT) of its declaration.
    fingerprint: u64,
    /// The address it listens on, as bound (possibly `0.0.0.0`); `None` if it does not listen.
    listening: Option<SocketAddr>,
    /// Its node name.
    #[message(max_len = 255)]
    name: String,
    /// Its protocol's version and the versions it accepts.
    #[message(default)]
    versions: Option<Versions>,
    /// Its protocol, part by part; `None` if it would not fit in a hello.
    #[message(default)]
    description: Option<Description>,
}

/// Runs the DSL handshake on `conn`'s stream.
pub async fn fingerprint_handshake<H: Handshake>(
    this: &H,
    mut conn: Connection,
    declared: &'static Declared,
) -> io::Result<Connection> {
    let node = this.node().clone();
    let (addr, id) = (conn.addr(), conn.info().id());
    // `Connection::side` is the peer's role: this node's is the other one
    let side = match conn.side() {
        ConnectionSide::Initiator => ConnectionSide::Responder,
        ConnectionSide::Responder => ConnectionSide::Initiator,
    };
    // a dial made with a plain `Node::connect` is recorded from here (`connect_if_needed`
    // records its own before the TCP connect), so that the peer's dial at the same time is
    // judged knowing of it
    let _dialling =
        (side == ConnectionSide::Initiator).then(|| identity::Dialling::start(&node, addr));
    let listening = node.listening_addr().await.ok();
    let mut hello = our_hello(&node, declared, listening);
    let body = encode_hello(&node, &mut hello);
    let stream = this.borrow_stream(&mut conn);
    let agreed = exchange_hellos(stream, &body)
        .await
        .and_then(|theirs| agree(declared, &hello, theirs, addr));
    let (theirs, served) = agreed.map_err(|reason| {
        reject(&node, addr, &reason);
        io::Error::new(io::ErrorKind::InvalidData, reason)
    })?;

    // the peer's address as this node can dial it
    let dialable = theirs.listening.map(|mut l| {
        if l.ip().is_unspecified() {
            l.set_ip(addr.ip());
        }
        l
    });
    let arrival = Arrival {
        addr,
        id,
        side,
        peer: PeerIdentity::new(dialable, theirs.name),
        served,
        ours_advertised: listening,
        theirs_advertised: theirs.listening,
    };
    let verdict = identity::judge(&node, arrival);
    let stream = this.borrow_stream(&mut conn);
    let exchanged = async {
        stream.write_u8(u8::from(verdict != Verdict::Keep)).await?;
        stream.read_u8().await
    };
    // (a handshake cut off by its timeout leaves its entry unsettled: pruned once the
    // connection is no longer setting up)
    let theirs_kept = match exchanged.await {
        Ok(0) => true,
        Ok(1) => false,
        Ok(other) => {
            identity::settle(&node, addr, id, false);
            let reason = format!("the peer sent an unknown handshake verdict {other}");
            reject(&node, addr, &reason);
            return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
        }
        Err(e) => {
            identity::settle(&node, addr, id, false);
            return Err(e);
        }
    };
    if identity::settle(&node, addr, id, theirs_kept) {
        return Ok(conn);
    }
    ext::of(&node)
        .duplicate_connections
        .fetch_add(1, Ordering::Relaxed);
    let why = match verdict {
        Verdict::Drop(why) => why.to_string(),
        Verdict::Keep if theirs_kept => {
            "a connection dialled by the lower address came meanwhile".into()
        }
        Verdict::Keep => "it keeps another connection to this node".into(),
    };
    debug!(parent: node.span(), "dropped a second connection with {addr}: {why}");
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("a duplicate connection with {addr} was dropped: {why}"),
    ))
}

/// What this node says about itself.
fn our_hello(node: &crate::Node, declared: &Declared, listening: Option<SocketAddr>) -> Hello {
    let mut name = node.name().to_owned();
    truncate(&mut name, 255);
    Hello {
        fingerprint: declared.fingerprint,
        listening,
        name,
        versions: Some(Versions {
            version: declared.version,
            accepts: declared.accepts,
        }),
        description: describe::describe(declared),
    }
}

/// Encodes this node's hello; one whose description does not fit goes without it, and
/// `hello` is left as sent (both sides must judge the hellos that were sent).
fn encode_hello(node: &crate::Node, hello: &mut Hello) -> Bytes {
    let body = hello.to_bytes();
    if body.len() <= MAX_HELLO {
        return body;
    }
    debug!(
        parent: node.span(),
        "the protocol's description takes {} bytes, more than a hello holds: sending none (peers compare fingerprints)",
        body.len()
    );
    hello.description = None;
    hello.to_bytes()
}

/// The method ids of the rpcs a peer serves, when its hello said.
type Served = Option<Vec<u64>>;

/// Whether this node, which sent `ours`, can talk to the peer that sent `theirs` at `addr`;
/// both sides decide alike. Returns the peer's hello and the rpcs it serves.
fn agree(
    declared: &Declared,
    ours: &Hello,
    theirs: Hello,
    addr: SocketAddr,
) -> Result<(Hello, Served), String> {
    if let Some(description) = &theirs.description {
        description
            .validate()
            .map_err(|e| format!("the peer's hello is invalid: {e}"))?;
    }
    let differ = |e: String| format!("the protocols differ: {e}");
    if let (Some(o), Some(t)) = (ours.versions, theirs.versions) {
        compat::versions_agree(declared.display, o, t).map_err(differ)?;
    }
    if let (Some(o), Some(t)) = (&ours.description, &theirs.description) {
        compat::compatible(o, t).map_err(differ)?;
        let served = t.rpcs.iter().filter(|r| r.served);
        let served = served.map(|r| method_of(&r.name)).collect();
        return Ok((theirs, Some(served)));
    }
    if theirs.fingerprint != ours.fingerprint {
        return Err(format!(
            "the protocols differ: this node speaks `{}` (fingerprint {:#018x}) and {addr} speaks one with fingerprint {:#018x}",
            declared.display, ours.fingerprint, theirs.fingerprint
        ));
    }
    Ok((theirs, None))
}

/// Writes our hello and reads the peer's, both at once (a hello of up to 64 KiB may not fit
/// in the socket buffers, so neither side may wait for its write before it reads); the error
/// is the reason to reject the peer.
async fn exchange_hellos<S>(stream: &mut S, body: &[u8]) -> Result<Hello, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut out = Vec::with_capacity(10 + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async { writer.write_all(&out).await.map_err(io_err) };
    let ((), theirs) = tokio::try_join!(write, read_hello(&mut reader))?;
    Ok(theirs)
}

fn io_err(e: io::Error) -> String {
    format!("the handshake failed: {e}")
}

/// Reads the peer's magic and hello.
async fn read_hello<R: tokio::io::AsyncRead + Unpin>(stream: &mut R) -> Result<Hello, String> {
    let mut magic = [0u8; 8];
    stream.read_exact(&mut magic).await.map_err(|e| match e.kind() {
        // what a node without the handshake does: it reads our hello as a frame, and hangs up
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => "the peer closed the connection instead of sending a pea2pea DSL hello: it may speak a `protocol!` without `handshake = fingerprint`".into(),
        _ => io_err(e),
    })?;
    if magic == OLD_MAGIC {
        return Err("the peer speaks the first version of the DSL handshake (a fingerprint alone): upgrade it".into());
    }
    if magic != MAGIC {
        return Err("the peer did not send a pea2pea DSL hello: it does not speak a `protocol!` with `handshake = fingerprint`".into());
    }
    // at most `MAX_HELLO` (a u16 says no more), and the buffer grows with what arrives, not
    // with what the length claims
    let len = stream.read_u16().await.map_err(io_err)?;
    let mut body = Vec::new();
    let mut limited = (&mut *stream).take(u64::from(len));
    limited.read_to_end(&mut body).await.map_err(io_err)?;
    if body.len() < usize::from(len) {
        return Err(format!(
            "the handshake failed: the peer's hello ended after {} of its {len} bytes",
            body.len()
        ));
    }
    Hello::from_bytes(Bytes::from(body)).map_err(|e| format!("the peer's hello is invalid: {e}"))
}

/// Counts and logs a rejected peer.
fn reject(node: &crate::Node, addr: SocketAddr, reason: &str) {
    ext::of(node)
        .fingerprint_rejections
        .fetch_add(1, Ordering::Relaxed);
    warn!(parent: node.span(), "rejected {addr}: {reason}");
}

/// Shortens `s` to at most `max` bytes, at a character boundary.
fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// Starts a declaration's fingerprint from its name.
pub const fn fp_start(name: &str) -> u64 {
    fingerprint(name)
}

/// Mixes `value` into the fingerprint `hash` (FNV-1a over its 8 bytes).
pub const fn fp_mix(mut hash: u64, value: u64) -> u64 {
    let bytes = value.to_le_bytes();
    let mut i = 0;
    while i < 8 {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// What an rpc adds to its protocol's fingerprint: its request's and response's shapes.
pub const fn rpc_shape(request: u64, response: u64) -> u64 {
    fp_mix(fp_mix(fp_start("rpc"), request), response)
}

/// The method id of an rpc: a hash of its request type's name as the `rpc` line writes it
/// (its leading path stripped), so that compatible versions of the request keep their id; the
/// handshake compares the types.
pub const fn method_of(request: &str) -> u64 {
    fp_mix(fp_start("rpc"), fingerprint(request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Config, Node,
        dsl::describe::{NodeKind, TypeNode},
    };

    fn description(types: usize) -> Description {
        let node = TypeNode {
            name: "T".repeat(255),
            kind: NodeKind::Opaque,
            params: Vec::new(),
        };
        Description {
            name: "chat".into(),
            framing: 8,
            inbound: Some(0),
            outbound: Some(0),
            rpcs: Vec::new(),
            types: vec![node; types],
        }
    }

    #[tokio::test]
    async fn a_description_too_large_for_a_hello_is_left_out() {
        let node = Node::new(Config::loopback());
        let mut hello = Hello {
            fingerprint: 7,
            listening: None,
            name: "n".into(),
            versions: Some(Versions {
                version: 1,
                accepts: (1, 1),
            }),
            description: Some(description(2)),
        };
        let small = encode_hello(&node, &mut hello);
        assert!(hello.description.is_some());
        assert_eq!(Hello::from_bytes(small).unwrap(), hello);

        // 300 names of 255 bytes: more than 64 KiB
        hello.description = Some(description(300));
        let body = encode_hello(&node, &mut hello);
        assert!(body.len() <= MAX_HELLO);
        assert_eq!(hello.description, None, "the hello is left as sent");
        let sent = Hello::from_bytes(body).unwrap();
        assert_eq!(sent.description, None);
        assert_eq!(sent.versions, hello.versions);
    }
}
