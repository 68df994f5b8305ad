//! multistream-select 1.0: how two libp2p peers agree on a protocol, for the whole connection
//! (the security protocol, then the muxer) and again for every yamux stream.
//!
//! Each message is a protocol name (or `na`, "not available") followed by `\n`, behind an
//! unsigned-varint length that counts the newline. Both sides first send the header
//! `/multistream/1.0.0`; the dialer then proposes a protocol and the listener echoes it to
//! accept it or answers `na`. A "lazy" dialer (rust-libp2p's, for the connection) sends its
//! header, proposal and first protocol bytes at once, without waiting for the answers.

use std::io;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The header both sides send first.
pub const HEADER: &str = "/multistream/1.0.0";
/// The listener's answer to a protocol it does not speak.
pub const NOT_AVAILABLE: &str = "na";
/// The longest message we accept, newline included. Protocol names are short; the bound keeps a
/// peer from making us buffer a large "name".
pub const MAX_MESSAGE: usize = 1024;
/// How many proposals a listener answers with `na` before giving up on the dialer.
pub const MAX_PROPOSALS: usize = 8;

fn invalid(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("multistream-select: {what}"),
    )
}

/// Appends `message` to `out`, framed: varint length, the text, a newline.
pub fn encode(message: &str, out: &mut BytesMut) {
    let mut len = unsigned_varint::encode::usize_buffer();
    out.put_slice(unsigned_varint::encode::usize(message.len() + 1, &mut len));
    out.put_slice(message.as_bytes());
    out.put_u8(b'\n');
}

/// Takes one whole message off the front of `buf`, or `None` if it is not all there yet.
/// Fails on a length over [`MAX_MESSAGE`] (before its bytes arrive) or a malformed message.
pub fn decode(buf: &mut BytesMut) -> io::Result<Option<String>> {
    let (len, rest) = match unsigned_varint::decode::usize(buf) {
        Ok(decoded) => decoded,
        Err(unsigned_varint::decode::Error::Insufficient) => return Ok(None),
        Err(e) => return Err(invalid(format!("a bad length prefix: {e}"))),
    };
    check_len(len)?;
    let prefix = buf.len() - rest.len();
    if rest.len() < len {
        return Ok(None);
    }
    buf.advance(prefix);
    let body = buf.split_to(len);
    parse(&body).map(Some)
}

fn check_len(len: usize) -> io::Result<()> {
    if len > MAX_MESSAGE {
        return Err(invalid(format!(
            "a message of {len} bytes (at most {MAX_MESSAGE} are accepted)"
        )));
    }
    Ok(())
}

/// The text of a message body: UTF-8, one trailing newline and no other.
fn parse(body: &[u8]) -> io::Result<String> {
    let text = body
        .strip_suffix(b"\n")
        .ok_or_else(|| invalid("a message without its trailing newline".into()))?;
    if text.contains(&b'\n') {
        return Err(invalid("a message with a newline inside".into()));
    }
    String::from_utf8(text.to_vec()).map_err(|_| invalid("a message that is not UTF-8".into()))
}

/// Reads one message from `io`, byte-exact: nothing past the message is consumed, so what the
/// peer sent after it (a lazy dialer's first Noise message) stays in the socket.
pub async fn read<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<String> {
    let mut prefix = [0u8; 10];
    let mut used = 0;
    let len = loop {
        if used == prefix.len() {
            return Err(invalid("a length prefix longer than 10 bytes".into()));
        }
        prefix[used] = io.read_u8().await?;
        used += 1;
        if prefix[used - 1] & 0x80 == 0 {
            let (len, _) = unsigned_varint::decode::usize(&prefix[..used])
                .map_err(|e| invalid(format!("a bad length prefix: {e}")))?;
            break len;
        }
    };
    check_len(len)?;
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    parse(&body)
}

/// Writes `messages` in one write.
pub async fn write<S: AsyncWrite + Unpin>(io: &mut S, messages: &[&str]) -> io::Result<()> {
    let mut out = BytesMut::new();
    for message in messages {
        encode(message, &mut out);
    }
    io.write_all(&out).await?;
    io.flush().await
}

/// Reads the peer's header; anything else is an error.
async fn expect_header<S: AsyncRead + Unpin>(io: &mut S) -> io::Result<()> {
    match read(io).await? {
        header if header == HEADER => Ok(()),
        other => Err(invalid(format!(
            "expected the header {HEADER:?}, got {other:?}"
        ))),
    }
}

/// The dialer's side for one protocol: header and proposal, then the listener's header and
/// its echo. `na` is an `Unsupported` error.
pub async fn propose<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    protocol: &str,
) -> io::Result<()> {
    write(io, &[HEADER, protocol]).await?;
    expect_header(io).await?;
    match read(io).await? {
        echo if echo == protocol => Ok(()),
        na if na == NOT_AVAILABLE => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("multistream-select: the peer does not speak {protocol}"),
        )),
        other => Err(invalid(format!(
            "proposed {protocol:?}, the peer answered {other:?}"
        ))),
    }
}

/// The listener's side: the dialer's header, then its proposals until one is `protocol`
/// (answered with an echo), each other one answered with `na`, at most [`MAX_PROPOSALS`].
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    protocol: &str,
) -> io::Result<()> {
    expect_header(io).await?;
    write(io, &[HEADER]).await?;
    for _ in 0..MAX_PROPOSALS {
        let proposal = read(io).await?;
        if proposal == protocol {
            return write(io, &[protocol]).await;
        }
        write(io, &[NOT_AVAILABLE]).await?;
    }
    Err(invalid(format!(
        "{MAX_PROPOSALS} proposals and none of them {protocol:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_waits_for_its_last_byte() {
        let mut buf = BytesMut::new();
        encode("/ipfs/ping/1.0.0", &mut buf);
        assert_eq!(buf[0] as usize, "/ipfs/ping/1.0.0\n".len());
        let whole = buf.clone();
        let mut partial = BytesMut::from(&whole[..whole.len() - 1]);
        assert_eq!(decode(&mut partial).unwrap(), None);
        assert_eq!(partial.len(), whole.len() - 1, "nothing is consumed early");
        let mut buf = whole;
        assert_eq!(
            decode(&mut buf).unwrap().as_deref(),
            Some("/ipfs/ping/1.0.0")
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn malformed_messages_are_errors() {
        // a length far past the bound fails before its bytes arrive
        let mut huge = BytesMut::from(&[0xff, 0xff, 0x03][..]);
        assert!(decode(&mut huge).unwrap_err().to_string().contains("bytes"));
        let mut no_newline = BytesMut::from(&b"\x03abc"[..]);
        assert!(decode(&mut no_newline).is_err());
        let mut inner_newline = BytesMut::from(&b"\x04a\nb\n"[..]);
        assert!(decode(&mut inner_newline).is_err());
        let mut not_utf8 = BytesMut::from(&b"\x03\xff\xfe\n"[..]);
        assert!(decode(&mut not_utf8).is_err());
    }
}
