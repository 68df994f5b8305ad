use std::{future::Future, io, time::Duration};

use tokio::io::{AsyncRead, AsyncWrite, split};

use super::{HandshakeSlot, enable};
use crate::{Connection, Pea2Pea, net::TcpStream};

#[cfg(doc)]
use crate::{Node, protocols::Reading};

/// Runs a handshake on every new connection before anything else happens on it.
///
/// The connection is registered (and [`Node::connect`] returns) only if
/// [`perform_handshake`](Handshake::perform_handshake) returns `Ok` within
/// [`TIMEOUT_MS`](Handshake::TIMEOUT_MS); otherwise it is closed, no other protocol sees it,
/// and the dialling side's `connect` gets the error (`TimedOut` for a timeout). A panic in the
/// handshake fails only that connection.
///
/// ```
/// use std::io;
/// use pea2pea::{Connection, ConnectionSide, Node, Pea2Pea, protocols::Handshake};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// #[derive(Clone)]
/// struct Peer { node: Node }
///
/// impl Pea2Pea for Peer {
///     fn node(&self) -> &Node { &self.node }
/// }
///
/// impl Handshake for Peer {
///     async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
///         let dialled = conn.side() == ConnectionSide::Responder; // the peer's side
///         let stream = self.borrow_stream(&mut conn);
///         stream.set_nodelay(true)?;
///         if dialled {
///             stream.write_all(b"hi").await?;
///             conn.stats().register_sent_messages(1, 2); // the engine counts only its codecs
///         } else {
///             let mut hello = [0u8; 2];
///             stream.read_exact(&mut hello).await?;
///             if &hello != b"hi" {
///                 return Err(io::Error::new(io::ErrorKind::InvalidData, "bad greeting"));
///             }
///             conn.stats().register_received_message(2);
///         }
///         Ok(conn)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> io::Result<()> {
/// # use pea2pea::Config;
/// let (alice, bob) = (Peer { node: Node::new(Config::loopback()) }, Peer { node: Node::new(Config::loopback()) });
/// alice.enable_handshake().await;
/// bob.enable_handshake().await;
/// let bob_addr = bob.node().toggle_listener().await?.unwrap();
/// alice.node().connect(bob_addr).await?; // returns once alice's side of the handshake is done
/// assert_eq!(alice.node().connection_info(bob_addr).unwrap().stats().sent(), (1, 2));
/// # alice.node().shut_down().await;
/// # bob.node().shut_down().await;
/// # Ok(())
/// # }
/// ```
pub trait Handshake: Pea2Pea
where
    Self: Clone + Send + Sync + 'static,
{
    /// How long a handshake may take, in milliseconds. Exceeding it fails the connection and
    /// counts in [`Heuristics::handshake_timeouts`](crate::Heuristics::handshake_timeouts).
    const TIMEOUT_MS: u64 = 3_000;

    /// Makes the node run [`perform_handshake`](Handshake::perform_handshake) on every new
    /// connection, inbound and outbound.
    ///
    /// # Panics
    ///
    /// If the handshake is already enabled. Once shutdown has begun, enabling does nothing.
    fn enable_handshake(&self) -> impl Future<Output = ()> + Send {
        let this = self.clone();
        async move {
            let node = this.node().clone();
            enable(
                &node,
                "Handshake",
                |p| &p.handshake,
                || HandshakeSlot {
                    timeout: Duration::from_millis(Self::TIMEOUT_MS),
                    run: Box::new(move |conn| {
                        let this = this.clone();
                        Box::pin(async move { this.perform_handshake(conn).await })
                    }),
                },
            );
        }
    }

    /// The handshake itself: talk to the peer over the connection's stream and return the
    /// connection to admit it, or an error to reject it.
    fn perform_handshake(
        &self,
        conn: Connection,
    ) -> impl Future<Output = io::Result<Connection>> + Send;

    /// The connection's TCP stream, to use in place (set socket options, exchange bytes).
    /// The engine has already set `TCP_NODELAY` on it; set it back to `false` to use Nagle's
    /// algorithm. It is tokio's stream, or turmoil's in a simulation build: name its type as
    /// [`pea2pea::net::TcpStream`](crate::net::TcpStream) and the handshake compiles in both.
    ///
    /// # Panics
    ///
    /// If the stream was already taken with [`take_stream`](Handshake::take_stream).
    fn borrow_stream<'a>(&self, conn: &'a mut Connection) -> &'a mut TcpStream {
        conn.stream
            .as_mut()
            .expect("the stream was taken; borrow_stream must come before take_stream")
    }

    /// Takes the connection's TCP stream, to wrap it (TLS, Noise) and hand the wrapper back
    /// with [`return_stream`](Handshake::return_stream). A connection whose stream is taken
    /// and not returned fails its setup.
    ///
    /// # Panics
    ///
    /// If the stream was already taken.
    fn take_stream(&self, conn: &mut Connection) -> TcpStream {
        conn.stream
            .take()
            .expect("the stream was already taken; take_stream can be called once")
    }

    /// Gives the connection the stream that [`Reading`] and [`Writing`](crate::protocols::Writing)
    /// will use from now on; it is split into a reading and a writing half.
    fn return_stream<T: AsyncRead + AsyncWrite + Send + Sync + 'static>(
        &self,
        conn: &mut Connection,
        stream: T,
    ) {
        let (reader, writer) = split(stream);
        conn.reader = Some(Box::new(reader));
        conn.writer = Some(Box::new(writer));
    }
}
