//! From a TCP connection to an authenticated, encrypted one, ready for yamux: what libp2p calls
//! the connection upgrade, run by the node's `Handshake`.
//!
//! 1. multistream-select on the raw TCP stream agrees on `/noise`;
//! 2. the Noise XX handshake authenticates the peer's PeerId and yields session keys;
//! 3. multistream-select again, inside the encrypted stream, agrees on `/yamux/1.0.0`.

use std::{fmt, io};

use libp2p_identity::PeerId;
// the stream a handshake takes (tokio's, or a simulated one under --cfg pea2pea_sim)
use pea2pea::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{multistream, noise, yamux};
use crate::noise_stream::NoiseStream;

/// The layer of the connection that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Negotiating the security protocol or the muxer.
    Multistream,
    /// The Noise handshake or the PeerId it authenticated.
    Noise,
    /// The yamux frames after the upgrade.
    Yamux,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Multistream => "multistream-select",
            Layer::Noise => "noise",
            Layer::Yamux => "yamux",
        })
    }
}

/// A failed upgrade: where, and why.
#[derive(Debug)]
pub struct UpgradeError {
    /// The layer that failed.
    pub layer: Layer,
    /// What went wrong there.
    pub error: io::Error,
}

impl From<UpgradeError> for io::Error {
    fn from(e: UpgradeError) -> Self {
        io::Error::new(e.error.kind(), format!("{} failed: {}", e.layer, e.error))
    }
}

/// Upgrades `tcp` as the connection's dialer or listener. A dialer that knows whom it dialled
/// passes `expected`: a different PeerId fails the Noise layer. Returns the peer's PeerId and
/// the encrypted stream, in which yamux is agreed on.
pub async fn upgrade(
    mut tcp: TcpStream,
    me: &noise::NoiseIdentity,
    dialer: bool,
    expected: Option<PeerId>,
) -> Result<(PeerId, NoiseStream), UpgradeError> {
    let at = |layer| move |error| UpgradeError { layer, error };
    negotiate(&mut tcp, noise::PROTOCOL, dialer)
        .await
        .map_err(at(Layer::Multistream))?;
    let (peer_id, keys) = noise::handshake(&mut tcp, me, dialer)
        .await
        .map_err(at(Layer::Noise))?;
    if let Some(expected) = expected.filter(|expected| *expected != peer_id) {
        let error = io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("dialled {expected}, but the peer proved it is {peer_id}"),
        );
        return Err(at(Layer::Noise)(error));
    }
    let mut stream = NoiseStream::new(tcp, keys);
    negotiate(&mut stream, yamux::PROTOCOL, dialer)
        .await
        .map_err(at(Layer::Multistream))?;
    Ok((peer_id, stream))
}

async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    protocol: &str,
    dialer: bool,
) -> io::Result<()> {
    if dialer {
        multistream::propose(io, protocol).await
    } else {
        multistream::accept(io, protocol).await
    }
}
