//! IP and socket addresses and `Duration`, encoded as serde + postcard encode them.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    time::Duration,
};

use bytes::{BufMut, BytesMut};

use crate::message::{DecodeError, DecodeErrorKind, Message, Reader};

impl Message for Ipv4Addr {
    const SHAPE: &'static str = "Ipv4Addr";
    const MIN_LEN: usize = 4;

    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(&self.octets());
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        src.read_array::<4>("Ipv4Addr").map(Ipv4Addr::from)
    }
}

impl Message for Ipv6Addr {
    const SHAPE: &'static str = "Ipv6Addr";
    const MIN_LEN: usize = 16;

    fn encoded_len(&self) -> usize {
        16
    }

    fn encode(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(&self.octets());
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        src.read_array::<16>("Ipv6Addr").map(Ipv6Addr::from)
    }
}

/// The variant index of an address enum (0 = V4, 1 = V6), as serde numbers them.
fn read_family(src: &mut Reader, ty: &'static str) -> Result<bool, DecodeError> {
    let at = src.offset();
    match src.read_variant(ty)? {
        0 => Ok(false),
        1 => Ok(true),
        tag => Err(DecodeError::new(
            DecodeErrorKind::UnknownVariant(tag),
            ty,
            at,
        )),
    }
}

impl Message for IpAddr {
    const SHAPE: &'static str = "IpAddr";
    const MIN_LEN: usize = 5;

    fn encoded_len(&self) -> usize {
        1 + if self.is_ipv4() { 4 } else { 16 }
    }

    fn encode(&self, dst: &mut BytesMut) {
        match self {
            IpAddr::V4(ip) => {
                dst.put_u8(0);
                ip.encode(dst);
            }
            IpAddr::V6(ip) => {
                dst.put_u8(1);
                ip.encode(dst);
            }
        }
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        Ok(if read_family(src, "IpAddr")? {
            IpAddr::V6(Ipv6Addr::decode(src)?)
        } else {
            IpAddr::V4(Ipv4Addr::decode(src)?)
        })
    }
}

impl Message for SocketAddrV4 {
    const SHAPE: &'static str = "SocketAddrV4";
    const MIN_LEN: usize = 5;

    fn encoded_len(&self) -> usize {
        4 + self.port().encoded_len()
    }

    fn encode(&self, dst: &mut BytesMut) {
        self.ip().encode(dst);
        self.port().encode(dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SocketAddrV4::new(Ipv4Addr::decode(src)?, u16::decode(src)?))
    }
}

/// Only the address and the port travel (flowinfo and scope id decode as 0), as with serde.
impl Message for SocketAddrV6 {
    const SHAPE: &'static str = "SocketAddrV6";
    const MIN_LEN: usize = 17;

    fn encoded_len(&self) -> usize {
        16 + self.port().encoded_len()
    }

    fn encode(&self, dst: &mut BytesMut) {
        self.ip().encode(dst);
        self.port().encode(dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        Ok(SocketAddrV6::new(
            Ipv6Addr::decode(src)?,
            u16::decode(src)?,
            0,
            0,
        ))
    }
}

impl Message for SocketAddr {
    const SHAPE: &'static str = "SocketAddr";
    const MIN_LEN: usize = 6;

    fn encoded_len(&self) -> usize {
        1 + match self {
            SocketAddr::V4(a) => a.encoded_len(),
            SocketAddr::V6(a) => a.encoded_len(),
        }
    }

    fn encode(&self, dst: &mut BytesMut) {
        match self {
            SocketAddr::V4(a) => {
                dst.put_u8(0);
                a.encode(dst);
            }
            SocketAddr::V6(a) => {
                dst.put_u8(1);
                a.encode(dst);
            }
        }
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        Ok(if read_family(src, "SocketAddr")? {
            SocketAddr::V6(SocketAddrV6::decode(src)?)
        } else {
            SocketAddr::V4(SocketAddrV4::decode(src)?)
        })
    }
}

/// Seconds (u64) then nanoseconds (u32), like serde's `Duration { secs, nanos }`.
impl Message for Duration {
    const SHAPE: &'static str = "Duration";
    const MIN_LEN: usize = 2;

    fn encoded_len(&self) -> usize {
        self.as_secs().encoded_len() + self.subsec_nanos().encoded_len()
    }

    fn encode(&self, dst: &mut BytesMut) {
        self.as_secs().encode(dst);
        self.subsec_nanos().encode(dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        let secs = u64::decode(src)?;
        let at = src.offset();
        let nanos = u32::decode(src)?;
        // Duration::new panics when the carry from nanos overflows the seconds.
        if nanos >= 1_000_000_000 && secs.checked_add(u64::from(nanos / 1_000_000_000)).is_none() {
            let kind = DecodeErrorKind::Invalid("Duration overflows");
            return Err(DecodeError::new(kind, "Duration", at));
        }
        Ok(Duration::new(secs, nanos))
    }
}
