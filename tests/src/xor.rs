//! [`XorStream`], a stand-in for an encrypted transport (TLS, Noise) that handshakes can wrap
//! the connection's stream in.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream whose bytes are XORed with `key` both ways.
pub struct XorStream<T> {
    inner: T,
    key: u8,
}

impl<T> XorStream<T> {
    /// Wraps `inner`, masking every byte read and written with `key`.
    pub fn new(inner: T, key: u8) -> Self {
        Self { inner, key }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for XorStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let key = self.key;
        for byte in &mut buf.filled_mut()[before..] {
            *byte ^= key;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for XorStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        // XOR is per byte, so a partial write of the masked copy is a partial write of `data`
        let masked: Vec<u8> = data.iter().map(|b| b ^ self.key).collect();
        Pin::new(&mut self.inner).poll_write(cx, &masked)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
