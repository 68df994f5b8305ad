//! The two halves of a connection's byte stream: a plain TCP socket (the common case, with no
//! dynamic dispatch) or whatever a handshake put in its place.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::net::{ReadHalf, WriteHalf};

/// A reading half that a handshake returned in place of the TCP stream.
pub(crate) type BoxedReader = Box<dyn AsyncRead + Unpin + Send + Sync>;
/// A writing half that a handshake returned in place of the TCP stream.
pub(crate) type BoxedWriter = Box<dyn AsyncWrite + Unpin + Send + Sync>;

pub(crate) enum ConnReader {
    Tcp(ReadHalf),
    Boxed(BoxedReader),
}

pub(crate) enum ConnWriter {
    /// Shared with the connection's outbox, which may write to it directly (non-blocking).
    Tcp(Arc<WriteHalf>),
    Boxed(BoxedWriter),
}

impl ConnReader {
    /// Reads a connection's first bytes into `scratch` without a buffer of its own, so that a
    /// silent connection costs no read buffer; `None` for a wrapped stream, which is read
    /// through its buffer from the start.
    pub(crate) async fn first_read(&mut self, scratch: &mut [u8]) -> io::Result<Option<usize>> {
        match self {
            Self::Tcp(half) => half.first_read(scratch).await.map(Some),
            Self::Boxed(_) => Ok(None),
        }
    }
}

impl AsyncRead for ConnReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(half) => Pin::new(half).poll_read(cx, buf),
            Self::Boxed(half) => Pin::new(half).poll_read(cx, buf),
        }
    }
}

impl ConnWriter {
    /// The TCP socket's write half, for writes that must not wait (`try_write`).
    pub(crate) fn shared_tcp(&self) -> Option<Arc<WriteHalf>> {
        match self {
            Self::Tcp(half) => Some(half.clone()),
            Self::Boxed(_) => None,
        }
    }
}

impl AsyncWrite for ConnWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(half) => half.poll_write(cx, buf),
            Self::Boxed(half) => Pin::new(half).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(half) => half.poll_write_vectored(cx, bufs),
            Self::Boxed(half) => Pin::new(half).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Tcp(_) => WriteHalf::VECTORED,
            Self::Boxed(half) => half.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(_) => Poll::Ready(Ok(())), // TCP writes are not buffered here
            Self::Boxed(half) => Pin::new(half).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            // the write half shuts down when its last handle is dropped
            Self::Tcp(half) => match Arc::get_mut(half) {
                Some(half) => half.poll_shutdown(cx),
                None => Poll::Ready(Ok(())),
            },
            Self::Boxed(half) => Pin::new(half).poll_shutdown(cx),
        }
    }
}
