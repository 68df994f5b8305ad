//! The identify protocol (`/ipfs/id/1.0.0`): a peer that opens an identify stream asks who the
//! other side is; the other side answers with one `Identify` protobuf, behind an
//! unsigned-varint length, and closes the stream.

use std::io;

use bytes::{Buf, BufMut, BytesMut};
use libp2p_identity::{PeerId, PublicKey};
use multiaddr::Multiaddr;
use prost::Message as _;

/// The protocol id.
pub const PROTOCOL: &str = "/ipfs/id/1.0.0";
/// The largest identify message accepted (rust-libp2p's own bound).
pub const MAX_MESSAGE: usize = 4096;

/// libp2p's `Identify` message (proto2; the signed peer record, field 8, is not used and
/// skipped when decoding).
#[derive(Clone, PartialEq, prost::Message)]
struct IdentifyProto {
    #[prost(string, optional, tag = "5")]
    protocol_version: Option<String>,
    #[prost(string, optional, tag = "6")]
    agent_version: Option<String>,
    #[prost(bytes = "vec", optional, tag = "1")]
    public_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    listen_addrs: Vec<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    observed_addr: Option<Vec<u8>>,
    #[prost(string, repeated, tag = "3")]
    protocols: Vec<String>,
}

/// What a peer says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identify {
    /// The family of protocols it speaks (`ipfs/0.1.0`, ...).
    pub protocol_version: String,
    /// Its software and version, like a user agent.
    pub agent_version: String,
    /// Its identity key: it must be the key of the PeerId that Noise authenticated.
    pub public_key: PublicKey,
    /// Where it accepts connections.
    pub listen_addrs: Vec<Multiaddr>,
    /// The address it sees this connection coming from.
    pub observed_addr: Option<Multiaddr>,
    /// The stream protocols it speaks.
    pub protocols: Vec<String>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("identify: {what}"))
}

impl Identify {
    /// The message as sent: varint length, then the protobuf.
    pub fn encode(&self) -> BytesMut {
        let proto = IdentifyProto {
            protocol_version: Some(self.protocol_version.clone()),
            agent_version: Some(self.agent_version.clone()),
            public_key: Some(self.public_key.encode_protobuf()),
            listen_addrs: self.listen_addrs.iter().map(|a| a.to_vec()).collect(),
            observed_addr: self.observed_addr.as_ref().map(|a| a.to_vec()),
            protocols: self.protocols.clone(),
        };
        let body = proto.encode_to_vec();
        let mut len = unsigned_varint::encode::usize_buffer();
        let mut out = BytesMut::new();
        out.put_slice(unsigned_varint::encode::usize(body.len(), &mut len));
        out.put_slice(&body);
        out
    }

    /// Takes one whole message off the front of `buf` (`None` until it is all there) and
    /// checks that it comes from `peer`. Addresses that do not parse are left out, as
    /// rust-libp2p does.
    pub fn decode(buf: &mut BytesMut, peer: &PeerId) -> io::Result<Option<Self>> {
        let (len, rest) = match unsigned_varint::decode::usize(buf) {
            Ok(decoded) => decoded,
            Err(unsigned_varint::decode::Error::Insufficient) => return Ok(None),
            Err(e) => return Err(invalid(format!("a bad length prefix: {e}"))),
        };
        if len > MAX_MESSAGE {
            return Err(invalid(format!(
                "a message of {len} bytes (at most {MAX_MESSAGE})"
            )));
        }
        if rest.len() < len {
            return Ok(None);
        }
        buf.advance(buf.len() - rest.len());
        let proto = IdentifyProto::decode(buf.split_to(len))
            .map_err(|e| invalid(format!("not a valid protobuf: {e}")))?;
        let key = proto
            .public_key
            .ok_or_else(|| invalid("no public key".into()))?;
        let public_key = PublicKey::try_decode_protobuf(&key)
            .map_err(|e| invalid(format!("the public key: {e}")))?;
        if public_key.to_peer_id() != *peer {
            return Err(invalid(format!(
                "the public key is {}'s, not that of the peer {peer} on this connection",
                public_key.to_peer_id()
            )));
        }
        let addr = |bytes: Vec<u8>| Multiaddr::try_from(bytes).ok();
        Ok(Some(Self {
            protocol_version: proto.protocol_version.unwrap_or_default(),
            agent_version: proto.agent_version.unwrap_or_default(),
            public_key,
            listen_addrs: proto.listen_addrs.into_iter().filter_map(addr).collect(),
            observed_addr: proto.observed_addr.and_then(addr),
            protocols: proto.protocols,
        }))
    }
}

#[cfg(test)]
mod tests {
    use libp2p_identity::Keypair;

    use super::*;

    #[test]
    fn a_message_round_trips_and_must_come_from_the_connected_peer() {
        let key = Keypair::generate_ed25519().public();
        let info = Identify {
            protocol_version: "ipfs/0.1.0".into(),
            agent_version: "test/1".into(),
            public_key: key.clone(),
            listen_addrs: vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()],
            observed_addr: Some("/ip4/127.0.0.1/tcp/5555".parse().unwrap()),
            protocols: vec![PROTOCOL.into()],
        };
        let encoded = info.encode();
        let mut partial = BytesMut::from(&encoded[..encoded.len() - 1]);
        assert_eq!(
            Identify::decode(&mut partial, &key.to_peer_id()).unwrap(),
            None
        );
        let mut buf = encoded.clone();
        let decoded = Identify::decode(&mut buf, &key.to_peer_id()).unwrap();
        assert_eq!(decoded, Some(info));
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        let mut buf = encoded;
        assert!(Identify::decode(&mut buf, &stranger).is_err());
    }
}
