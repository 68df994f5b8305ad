//! The network under the engine: tokio's TCP sockets, or turmoil's simulated ones.
//!
//! A normal build uses [tokio's sockets](https://docs.rs/tokio/latest/tokio/net/). A build
//! with `RUSTFLAGS="--cfg pea2pea_sim"` uses [turmoil's](https://docs.rs/turmoil/latest/turmoil/net/)
//! instead: every node then lives on a host of a deterministic, seeded simulation, with
//! simulated time, latency, partitions and crashes (see the README's "Testing your protocol
//! under hardship"). This module is the only part of the engine that knows which; the rest
//! uses the names below.
//!
//! [`TcpStream`] is the type that a [`Handshake`](crate::protocols::Handshake) borrows or
//! takes. Name it through this module (`pea2pea::net::TcpStream`) rather than as
//! `tokio::net::TcpStream`, and the same handshake compiles in both builds:
//!
//! ```
//! use pea2pea::net::TcpStream;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! /// A step of a hand-written handshake: tokio's stream here, turmoil's in a simulation.
//! async fn exchange_versions(stream: &mut TcpStream, ours: u8) -> std::io::Result<u8> {
//!     stream.write_u8(ours).await?;
//!     stream.read_u8().await
//! }
//! ```
//!
//! In a simulation build:
//! * a node must be created and used inside the software of a turmoil host (or its client):
//!   the host it runs on is the one whose address it dials from and listens at. Outside a
//!   simulation, listening and dialling fail with `Unsupported`;
//! * listen on the unspecified address (`0.0.0.0:PORT`): each host has an address of its own,
//!   and a loopback listener is reachable only from its own host;
//! * [`Node::connect_using_socket`](crate::Node::connect_using_socket) fails with
//!   `Unsupported` (a real socket has no place in the simulated network), and so does
//!   [`Config::reuse_listener_port`](crate::Config::reuse_listener_port);
//!   [`Config::listener_backlog`](crate::Config::listener_backlog) is ignored;
//! * the simulated TCP does not retransmit: a segment lost to a partition is lost, and the
//!   connection stalls behind it until a read idle timeout or a write timeout ends it.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, ReadBuf};

#[cfg(not(pea2pea_sim))]
pub use tokio_sockets::TcpStream;
#[cfg(not(pea2pea_sim))]
pub(crate) use tokio_sockets::*;

#[cfg(pea2pea_sim)]
pub use turmoil_sockets::TcpStream;
#[cfg(pea2pea_sim)]
pub(crate) use turmoil_sockets::*;

/// The reading half of a connection; how its first bytes are read depends on the sockets.
pub(crate) struct ReadHalf(OwnedReadHalf);

impl AsyncRead for ReadHalf {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

#[cfg(not(pea2pea_sim))]
mod tokio_sockets {
    use std::{
        io,
        net::SocketAddr,
        pin::Pin,
        task::{Context, Poll, ready},
    };

    use tokio::io::AsyncWrite;
    pub use tokio::net::TcpStream;

    use super::ReadHalf;
    pub(crate) use tokio::net::{TcpListener, TcpSocket};

    /// Opens a connection to `addr`, from `socket` if the caller prepared one.
    pub(crate) async fn dial(addr: SocketAddr, socket: Option<TcpSocket>) -> io::Result<TcpStream> {
        match socket {
            Some(socket) => socket.connect(addr).await,
            None => TcpStream::connect(addr).await,
        }
    }

    /// Binds a listening socket to `addr` (with `SO_REUSEADDR`, and `SO_REUSEPORT` if asked).
    pub(crate) async fn listen(
        addr: SocketAddr,
        reuse_port: bool,
        backlog: u32,
    ) -> io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if reuse_port {
            set_reuseport(&socket)?;
        }
        socket.bind(addr)?;
        socket.listen(backlog)
    }

    #[cfg(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    ))]
    fn set_reuseport(socket: &TcpSocket) -> io::Result<()> {
        socket.set_reuseport(true)
    }

    #[cfg(not(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    )))]
    fn set_reuseport(_socket: &TcpSocket) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "SO_REUSEPORT is not supported on this platform",
        ))
    }

    /// Splits a connected stream into the halves that the reader and the writer own.
    pub(crate) fn split(stream: TcpStream) -> (ReadHalf, WriteHalf) {
        let (read, write) = stream.into_split();
        (ReadHalf(read), WriteHalf(write))
    }

    pub(crate) type OwnedReadHalf = tokio::net::tcp::OwnedReadHalf;

    impl ReadHalf {
        /// Reads into `scratch` once bytes have arrived (0: the peer closed). tokio reports a
        /// new socket readable before anything arrived, so only a read that returns bytes
        /// proves there is something to read.
        pub(crate) async fn first_read(&self, scratch: &mut [u8]) -> io::Result<usize> {
            loop {
                self.0.readable().await?;
                match self.0.try_read(scratch) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    result => return result,
                }
            }
        }
    }

    /// The writing half of a TCP connection, written through a shared reference so that the
    /// writer task and a connection's outbox can both hold it.
    pub(crate) struct WriteHalf(tokio::net::tcp::OwnedWriteHalf);

    impl WriteHalf {
        /// Writes what the socket takes now, without waiting (`WouldBlock` when it is full).
        #[inline]
        pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            self.0.try_write(buf)
        }

        #[inline]
        pub(crate) fn poll_write(
            &self,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_with(cx, |half| half.try_write(buf))
        }

        #[inline]
        pub(crate) fn poll_write_vectored(
            &self,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_with(cx, |half| half.try_write_vectored(bufs))
        }

        pub(crate) const VECTORED: bool = true;

        /// Waits for write readiness, then `try_write`s, which clears the readiness when the
        /// socket is full (what tokio's own `poll_write` does, through `&self`).
        fn poll_write_with(
            &self,
            cx: &mut Context<'_>,
            mut write: impl FnMut(&tokio::net::tcp::OwnedWriteHalf) -> io::Result<usize>,
        ) -> Poll<io::Result<usize>> {
            loop {
                ready!(self.0.as_ref().poll_write_ready(cx))?;
                match write(&self.0) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    result => return Poll::Ready(result),
                }
            }
        }

        /// Shuts the write direction down (sends FIN).
        pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }
}

#[cfg(pea2pea_sim)]
mod turmoil_sockets {
    use std::{
        io,
        net::SocketAddr,
        pin::Pin,
        sync::Mutex,
        task::{Context, Poll, Waker},
    };

    use tokio::io::{AsyncReadExt, AsyncWrite};
    pub(crate) use tokio::net::TcpSocket;
    pub(crate) use turmoil::net::TcpListener;

    use super::ReadHalf;
    pub use turmoil::net::TcpStream;

    fn unsupported(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, what.to_owned())
    }

    /// Fails with a clear error, rather than turmoil's panic, outside a simulation.
    fn in_simulation() -> io::Result<()> {
        if turmoil::in_simulation() {
            Ok(())
        } else {
            Err(unsupported(
                "pea2pea was built with --cfg pea2pea_sim: nodes can listen and dial only \
                 inside a turmoil simulation",
            ))
        }
    }

    /// Opens a simulated connection to `addr`; a real `socket` has no place in the simulated
    /// network and fails with `Unsupported`.
    pub(crate) async fn dial(addr: SocketAddr, socket: Option<TcpSocket>) -> io::Result<TcpStream> {
        in_simulation()?;
        if socket.is_some() {
            return Err(unsupported(
                "connect_using_socket takes a real socket, which a simulation (--cfg pea2pea_sim) \
                 cannot use; call connect instead",
            ));
        }
        TcpStream::connect(addr).await
    }

    /// Binds a simulated listener to `addr`; `SO_REUSEPORT` does not exist there, and the
    /// simulated accept queue has no backlog setting.
    pub(crate) async fn listen(
        addr: SocketAddr,
        reuse_port: bool,
        _backlog: u32,
    ) -> io::Result<TcpListener> {
        in_simulation()?;
        if reuse_port {
            return Err(unsupported(
                "Config::reuse_listener_port is not supported in a simulation (--cfg pea2pea_sim)",
            ));
        }
        TcpListener::bind(addr).await
    }

    /// Splits a connected stream into the halves that the reader and the writer own.
    pub(crate) fn split(stream: TcpStream) -> (ReadHalf, WriteHalf) {
        let (read, write) = stream.into_split();
        (ReadHalf(read), WriteHalf(Mutex::new(write)))
    }

    pub(crate) type OwnedReadHalf = turmoil::net::tcp::OwnedReadHalf;

    impl ReadHalf {
        /// Reads into `scratch` once bytes have arrived (0: the peer closed).
        pub(crate) async fn first_read(&mut self, scratch: &mut [u8]) -> io::Result<usize> {
            self.0.read(scratch).await
        }
    }

    /// The writing half of a simulated connection. turmoil's half writes only through
    /// `&mut`, so a mutex gives the writer task and the outbox their shared access; the
    /// simulation runs on one thread, so it is never contended.
    pub(crate) struct WriteHalf(Mutex<turmoil::net::tcp::OwnedWriteHalf>);

    impl WriteHalf {
        fn half(&self) -> std::sync::MutexGuard<'_, turmoil::net::tcp::OwnedWriteHalf> {
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// Writes now or fails with `WouldBlock`. turmoil keeps one waker per direction, and
        /// this poll leaves a no-op one there, so it must not run while the writer task waits
        /// in `poll_write`: the outbox calls it only when no batch is being written.
        pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            let mut cx = Context::from_waker(Waker::noop());
            match Pin::new(&mut *self.half()).poll_write(&mut cx, buf) {
                Poll::Ready(result) => result,
                Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
            }
        }

        pub(crate) fn poll_write(
            &self,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut *self.half()).poll_write(cx, buf)
        }

        pub(crate) fn poll_write_vectored(
            &self,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut *self.half()).poll_write_vectored(cx, bufs)
        }

        pub(crate) const VECTORED: bool = false;

        /// Shuts the write direction down (sends FIN).
        pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let half = self.0.get_mut().unwrap_or_else(|p| p.into_inner());
            Pin::new(half).poll_shutdown(cx)
        }
    }
}
