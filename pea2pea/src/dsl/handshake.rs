//! The built-in fingerprint handshake: each side sends a magic tag and the 64-bit fingerprint
//! of its protocol declaration, and rejects a peer whose fingerprint differs.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::warn;

use super::ext;
use crate::{Connection, message::fingerprint, protocols::Handshake};

/// Says "a pea2pea protocol fingerprint follows" (and its version).
const MAGIC: [u8; 8] = *b"p2pfp/1\0";

/// Runs the fingerprint exchange on `conn`'s stream.
pub async fn fingerprint_handshake<H: Handshake>(
    this: &H,
    mut conn: Connection,
    ours: u64,
    name: &'static str,
) -> io::Result<Connection> {
    let addr = conn.addr();
    let stream = this.borrow_stream(&mut conn);
    let mut hello = [0u8; 16];
    hello[..8].copy_from_slice(&MAGIC);
    hello[8..].copy_from_slice(&ours.to_be_bytes());
    // both sides write first: 16 bytes always fit in the socket buffers, so nobody waits
    stream.write_all(&hello).await?;
    let mut theirs = [0u8; 16];
    stream.read_exact(&mut theirs).await?;

    let reason = if theirs[..8] != MAGIC {
        format!(
            "the protocols differ: {addr} did not send a protocol fingerprint, so it does not speak `{name}` with `handshake = fingerprint`"
        )
    } else {
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&theirs[8..]);
        let theirs = u64::from_be_bytes(fp);
        if theirs == ours {
            return Ok(conn);
        }
        format!(
            "the protocols differ: this node speaks `{name}` (fingerprint {ours:#018x}) and {addr} speaks one with fingerprint {theirs:#018x}"
        )
    };
    ext::of(this.node())
        .fingerprint_rejections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    warn!(parent: this.node().span(), "rejected {addr}: {reason}");
    Err(io::Error::new(io::ErrorKind::InvalidData, reason))
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

/// The method id of an rpc: its request's and response's shapes.
pub const fn method_id(request: u64, response: u64) -> u64 {
    fp_mix(fp_mix(fp_start("rpc"), request), response)
}
