//! libp2p's Noise handshake (protocol id `/noise`): `Noise_XX_25519_ChaChaPoly_SHA256` with an
//! empty prologue, each message behind a 2-byte big-endian length, as run by `snow`.
//!
//! The X25519 static key says nothing about who a peer is; libp2p binds it to the peer's
//! identity key: the responder's second message and the initiator's third carry a protobuf
//! `NoiseHandshakePayload` with the identity public key and its signature over
//! `"noise-libp2p-static-key:" + the static public key`. Verifying that signature against the
//! static key the handshake proved is what authenticates the PeerId.

use std::io;

use libp2p_identity::{Keypair, PeerId, PublicKey};
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::noise_stream::{MAX_NOISE_MSG, handshake_state, noise_error};

/// The protocol id negotiated for Noise with multistream-select.
pub const PROTOCOL: &str = "/noise";
/// libp2p's Noise parameters.
pub const PATTERN: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
/// What the identity key signs, before the static key.
pub const STATIC_KEY_DOMAIN: &[u8] = b"noise-libp2p-static-key:";

/// The payload of the second and third handshake messages (libp2p's `payload.proto`; the
/// extensions, field 4, are not used over TCP and skipped when decoding).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HandshakePayload {
    /// The identity public key, protobuf-encoded as libp2p encodes keys.
    #[prost(bytes = "vec", tag = "1")]
    pub identity_key: Vec<u8>,
    /// The identity key's signature over [`STATIC_KEY_DOMAIN`] + the static public key.
    #[prost(bytes = "vec", tag = "2")]
    pub identity_sig: Vec<u8>,
}

/// A node's identity for Noise: its ed25519 identity key pair, a fresh X25519 static key
/// pair, and the payload that binds the two.
pub struct NoiseIdentity {
    /// The long-term identity; its public key is the PeerId.
    pub keypair: Keypair,
    /// The static Diffie-Hellman key pair used in the handshake.
    pub static_keys: snow::Keypair,
    /// What this node sends in its handshake message. Public so that a test can send a
    /// forged one.
    pub payload: HandshakePayload,
}

impl NoiseIdentity {
    /// Makes a static key pair for `keypair` and signs it.
    pub fn new(keypair: Keypair) -> io::Result<Self> {
        let params = PATTERN.parse().map_err(noise_error)?;
        let static_keys = snow::Builder::new(params)
            .generate_keypair()
            .map_err(noise_error)?;
        let signature = keypair
            .sign(&[STATIC_KEY_DOMAIN, &static_keys.public].concat())
            .map_err(|e| io::Error::other(format!("noise: signing the static key: {e}")))?;
        let payload = HandshakePayload {
            identity_key: keypair.public().encode_protobuf(),
            identity_sig: signature,
        };
        Ok(Self {
            keypair,
            static_keys,
            payload,
        })
    }

    /// The PeerId of this identity.
    pub fn peer_id(&self) -> PeerId {
        self.keypair.public().to_peer_id()
    }
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("noise: {what}"))
}

/// Runs the three XX messages over `io` (`-> e`, `<- e, ee, s, es` + the responder's payload,
/// `-> s, se` + the initiator's payload) and checks the peer's payload: its identity key
/// signed the static key it used. Returns the peer's PeerId and the session keys.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    me: &NoiseIdentity,
    initiator: bool,
) -> io::Result<(PeerId, snow::TransportState)> {
    let mut state = handshake_state(PATTERN, &me.static_keys.private, initiator)?;
    let ours = me.payload.encode_to_vec();
    let mut buf = vec![0u8; MAX_NOISE_MSG];

    let theirs = if initiator {
        send(io, &mut state, &[], &mut buf).await?;
        let theirs = receive(io, &mut state, &mut buf).await?;
        send(io, &mut state, &ours, &mut buf).await?;
        theirs
    } else {
        let first = receive(io, &mut state, &mut buf).await?;
        if !first.is_empty() {
            return Err(invalid(
                "the first handshake message carries a payload".into(),
            ));
        }
        send(io, &mut state, &ours, &mut buf).await?;
        receive(io, &mut state, &mut buf).await?
    };
    let their_static = state
        .get_remote_static()
        .ok_or_else(|| invalid("the handshake ended without the peer's static key".into()))?
        .to_vec();
    let peer_id = verify(&theirs, &their_static)?;
    Ok((peer_id, state.into_transport_mode().map_err(noise_error)?))
}

/// Checks a peer's payload against the static key it proved it holds; its PeerId if it holds.
pub fn verify(payload: &[u8], their_static: &[u8]) -> io::Result<PeerId> {
    let payload = HandshakePayload::decode(payload).map_err(|e| {
        invalid(format!(
            "the handshake payload is not a valid protobuf: {e}"
        ))
    })?;
    let key = PublicKey::try_decode_protobuf(&payload.identity_key)
        .map_err(|e| invalid(format!("the identity key (only ed25519 is accepted): {e}")))?;
    let signed = [STATIC_KEY_DOMAIN, their_static].concat();
    if !key.verify(&signed, &payload.identity_sig) {
        return Err(invalid(format!(
            "the signature over the static key does not verify: the peer does not hold the identity {} it claims",
            key.to_peer_id()
        )));
    }
    Ok(key.to_peer_id())
}

async fn send<S: AsyncWrite + Unpin>(
    io: &mut S,
    state: &mut snow::HandshakeState,
    payload: &[u8],
    buf: &mut [u8],
) -> io::Result<()> {
    let len = state.write_message(payload, buf).map_err(noise_error)?;
    let mut framed = Vec::with_capacity(2 + len);
    framed.extend_from_slice(&(len as u16).to_be_bytes());
    framed.extend_from_slice(&buf[..len]);
    io.write_all(&framed).await?;
    io.flush().await
}

/// Reads one handshake message and returns its (decrypted) payload.
async fn receive<S: AsyncRead + Unpin>(
    io: &mut S,
    state: &mut snow::HandshakeState,
    buf: &mut [u8],
) -> io::Result<Vec<u8>> {
    let len = io.read_u16().await? as usize;
    let mut message = vec![0u8; len];
    io.read_exact(&mut message).await?;
    let n = state.read_message(&message, buf).map_err(noise_error)?;
    Ok(buf[..n].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_identities_authenticate_each_other() {
        let (a, b) = (
            NoiseIdentity::new(Keypair::generate_ed25519()).unwrap(),
            NoiseIdentity::new(Keypair::generate_ed25519()).unwrap(),
        );
        let (mut left, mut right) = tokio::io::duplex(4096);
        let (at_a, at_b) = tokio::join!(
            handshake(&mut left, &a, true),
            handshake(&mut right, &b, false)
        );
        assert_eq!(at_a.unwrap().0, b.peer_id());
        assert_eq!(at_b.unwrap().0, a.peer_id());
    }

    #[tokio::test]
    async fn a_payload_signed_for_another_static_key_is_refused() {
        let honest = NoiseIdentity::new(Keypair::generate_ed25519()).unwrap();
        let mut forger = NoiseIdentity::new(Keypair::generate_ed25519()).unwrap();
        // the forger presents the honest identity, with its signature over another static key
        forger.payload = honest.payload.clone();
        let (mut left, mut right) = tokio::io::duplex(4096);
        let (at_forger, at_honest) = tokio::join!(
            handshake(&mut left, &forger, true),
            handshake(&mut right, &honest, false)
        );
        let error = at_honest.unwrap_err().to_string();
        assert!(error.contains("does not verify"), "{error}");
        // the forger finished its side: it sent the last message
        assert!(at_forger.is_ok());
    }
}
