//! A TCP stream whose bytes travel as Noise transport messages, each behind a 2-byte big-endian
//! length: the framing of the `noise` example and of libp2p's Noise (so both wrap their stream
//! after the handshake with it).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, BytesMut};
// the stream a handshake takes (tokio's, or a simulated one under --cfg pea2pea_sim)
use pea2pea::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest Noise message, authentication tag included.
pub const MAX_NOISE_MSG: usize = 65535;
/// The authentication tag that every transport message carries.
pub const TAG_LEN: usize = 16;

/// A TCP stream that encrypts everything written to it and decrypts everything read from it
/// with the session keys of a finished Noise handshake. It buffers at most one message each
/// way (plus what the socket delivered beyond it).
pub struct NoiseStream {
    inner: TcpStream,
    noise: snow::TransportState,
    /// Ciphertext read but not yet decrypted (less than one whole message, mostly).
    rx_cipher: BytesMut,
    /// Plaintext decrypted but not yet read.
    rx_plain: BytesMut,
    /// One encrypted message (length included), and how much of it is written.
    tx_frame: Vec<u8>,
    tx_written: usize,
}

/// A `snow` error as an `InvalidData` I/O error that says it came from Noise.
pub fn noise_error(e: snow::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("noise: {e}"))
}

/// A Noise handshake with `pattern`, as initiator or responder, with the static key
/// `private_key` (an empty prologue).
pub fn handshake_state(
    pattern: &str,
    private_key: &[u8],
    initiator: bool,
) -> io::Result<snow::HandshakeState> {
    let builder = snow::Builder::new(pattern.parse().map_err(noise_error)?)
        .local_private_key(private_key)
        .map_err(noise_error)?;
    if initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(noise_error)
}

impl NoiseStream {
    /// Wraps `inner`; `noise` holds the keys of the handshake run over it.
    pub fn new(inner: TcpStream, noise: snow::TransportState) -> Self {
        Self {
            inner,
            noise,
            rx_cipher: BytesMut::new(),
            rx_plain: BytesMut::new(),
            tx_frame: Vec::new(),
            tx_written: 0,
        }
    }

    /// The session's state: the peer's static key, the nonces.
    pub fn session(&self) -> &snow::TransportState {
        &self.noise
    }

    /// Writes out what is left of the pending encrypted message.
    fn poll_write_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.tx_written < self.tx_frame.len() {
            let unwritten = &self.tx_frame[self.tx_written..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, unwritten))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.tx_written += n;
        }
        self.tx_frame.clear();
        self.tx_written = 0;
        Poll::Ready(Ok(()))
    }

    /// Decrypts the first buffered message if it is whole; `false` if more bytes are needed.
    fn decrypt_buffered(&mut self) -> io::Result<bool> {
        if self.rx_cipher.len() < 2 {
            return Ok(false);
        }
        let len = u16::from_be_bytes([self.rx_cipher[0], self.rx_cipher[1]]) as usize;
        if self.rx_cipher.len() < 2 + len {
            return Ok(false);
        }
        self.rx_cipher.advance(2);
        let message = self.rx_cipher.split_to(len);
        // a forged, truncated or reordered message fails here
        self.rx_plain.resize(len, 0);
        let n = self
            .noise
            .read_message(&message, &mut self.rx_plain)
            .map_err(noise_error)?;
        self.rx_plain.truncate(n);
        Ok(true)
    }
}

impl AsyncRead for NoiseStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.rx_plain.is_empty() {
                let n = buf.remaining().min(this.rx_plain.len());
                buf.put_slice(&this.rx_plain.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.decrypt_buffered()? {
                continue;
            }
            this.rx_cipher.reserve(16 * 1024);
            let before = this.rx_cipher.len();
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut this.inner),
                cx,
                &mut this.rx_cipher
            ))?;
            if n == 0 {
                // the end of the stream: clean only between messages
                return Poll::Ready(if before == 0 {
                    Ok(())
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                });
            }
        }
    }
}

impl AsyncWrite for NoiseStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // one message in flight at a time keeps the buffering bounded
        ready!(this.poll_write_frame(cx))?;
        let n = buf.len().min(MAX_NOISE_MSG - TAG_LEN);
        this.tx_frame.resize(2 + n + TAG_LEN, 0);
        let len = this
            .noise
            .write_message(&buf[..n], &mut this.tx_frame[2..])
            .map_err(noise_error)?;
        this.tx_frame[..2].copy_from_slice(&(len as u16).to_be_bytes());
        this.tx_frame.truncate(2 + len);
        // the bytes are taken: push them out now if the socket lets us, else on the next call
        if let Poll::Ready(Err(e)) = this.poll_write_frame(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_frame(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_frame(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
