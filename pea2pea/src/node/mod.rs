//! The [`Node`]: configuration, state views, and the entry points of a connection's life
//! (listening, dialling, disconnecting, shutting down), each in its own module.

mod addr_hash;
mod extensions;
mod listener;
pub(crate) mod registry;
mod setup;
mod shutdown;
mod teardown;

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use tracing::Span;

use crate::{
    Config, ConnectionId, ConnectionInfo, Heuristics, Stats, net::TcpSocket, protocols::Protocols,
};

use self::{extensions::Extensions, listener::Listener, registry::Registry, shutdown::Shutdown};

/// The error inside every `io::Error` that the node returns because it is shutting down
/// (kind `Other`, message "shutting down"). Such an error is final: do not retry.
///
/// ```
/// # use pea2pea::{Node, ShuttingDown};
/// # async fn f(node: &Node, addr: std::net::SocketAddr) {
/// if let Err(e) = node.connect(addr).await {
///     if ShuttingDown::caused(&e) {
///         return; // the node is stopping; retrying would fail the same way
///     }
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShuttingDown;

impl fmt::Display for ShuttingDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shutting down")
    }
}

impl std::error::Error for ShuttingDown {}

impl ShuttingDown {
    /// Whether `err` is the node's own shutdown error (it looks at `err` itself, not at
    /// errors that wrap it).
    pub fn caused(err: &io::Error) -> bool {
        err.get_ref().is_some_and(|inner| inner.is::<Self>())
    }

    pub(crate) fn error() -> io::Error {
        io::Error::other(Self)
    }
}

/// A P2P node: the handle to one listener and its set of TCP connections.
///
/// `Node` is a cheap handle (an `Arc`); clone it freely. It does nothing until told: enable the
/// [`protocols`](crate::protocols) your type implements, then call
/// [`toggle_listener`](Node::toggle_listener) and/or [`connect`](Node::connect).
///
/// The enabled protocols hold clones of your type, and so of this node: dropping your handles
/// does not stop it. Call [`shut_down`](Node::shut_down) when you are done.
///
/// Two bare nodes (no protocol enabled, so they only connect):
///
/// ```
/// use pea2pea::{Config, Node};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let alice = Node::new(Config { name: Some("alice".into()), ..Config::loopback() });
/// let bob = Node::new(Config { name: Some("bob".into()), ..Config::loopback() });
/// let bob_addr = bob.toggle_listener().await?.expect("bob was not listening yet");
///
/// alice.connect(bob_addr).await?;
/// assert!(alice.is_connected(bob_addr));
/// assert_eq!(alice.connected_addrs(), [bob_addr]);
/// assert_eq!(alice.num_connected(), 1);
///
/// assert!(alice.disconnect(bob_addr).await);
/// alice.shut_down().await;
/// bob.shut_down().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Node(Arc<Inner>);

pub(crate) struct Inner {
    span: Span,
    config: Config,
    stats: Stats,
    heuristics: Heuristics,
    registry: Registry,
    protocols: Protocols,
    listener: Listener,
    shutdown: Shutdown,
    next_conn_id: AtomicU64,
    /// State of layers built on the engine, one value per type, made on first use.
    extensions: Extensions,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// The sequence behind the names of unnamed nodes.
static NEXT_NODE_NUMBER: AtomicUsize = AtomicUsize::new(0);

impl Node {
    /// Creates a node. It neither listens nor dials yet, and needs no runtime until it does.
    ///
    /// # Panics
    ///
    /// If `max_connections`, `max_connections_per_ip` or `max_connecting` is 0.
    ///
    /// ```
    /// use pea2pea::{Config, Node};
    ///
    /// let node = Node::new(Config { max_connections: 16, ..Config::loopback() });
    /// assert_eq!(node.config().max_connecting, 16); // clamped to max_connections
    /// assert_eq!(node.num_connected(), 0);
    /// ```
    pub fn new(mut config: Config) -> Self {
        for (value, field) in [
            (config.max_connections, "max_connections"),
            (config.max_connections_per_ip, "max_connections_per_ip"),
            (config.max_connecting, "max_connecting"),
        ] {
            assert!(value != 0, "Config::{field} must not be 0");
        }
        config.max_connecting = config.max_connecting.min(config.max_connections);
        let name = config
            .name
            .get_or_insert_with(|| NEXT_NODE_NUMBER.fetch_add(1, Ordering::Relaxed).to_string());
        // ERROR, the highest level, so that the span is on whenever any event is: a warning
        // or an error then names its node at every log level, not only at INFO and below
        let span = tracing::error_span!("node", name = %name);
        let registry = Registry::new(
            config.max_connections,
            config.max_connections_per_ip,
            config.max_connecting,
        );

        Self(Arc::new(Inner {
            span,
            config,
            stats: Default::default(),
            heuristics: Default::default(),
            registry,
            protocols: Default::default(),
            listener: Default::default(),
            shutdown: Default::default(),
            next_conn_id: AtomicU64::new(0),
            extensions: Default::default(),
        }))
    }

    /// The node's name (from [`Config::name`], or its number).
    ///
    /// ```
    /// use pea2pea::{Config, Node};
    ///
    /// let named = Node::new(Config { name: Some("relay".into()), ..Config::loopback() });
    /// assert_eq!(named.name(), "relay");
    /// let unnamed = Node::new(Config::loopback());
    /// assert!(unnamed.name().parse::<usize>().is_ok()); // "0", "1", ... in creation order
    /// ```
    pub fn name(&self) -> &str {
        self.0.config.name.as_deref().unwrap_or_default()
    }

    /// The node's configuration, with `name` filled in and `max_connecting` clamped.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The node's message and byte counters, accumulated over its whole life.
    ///
    /// ```
    /// # let node = pea2pea::Node::new(pea2pea::Config::loopback());
    /// let (messages, bytes) = node.stats().received();
    /// println!("{} received {messages} messages ({bytes} bytes)", node.name());
    /// ```
    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// Counters of rejections and timeouts (see [`Heuristics`] for an example).
    ///
    /// ```
    /// # let node = pea2pea::Node::new(pea2pea::Config::loopback());
    /// let idle = node.heuristics().idle_timeouts();
    /// # assert_eq!(idle, 0);
    /// ```
    pub fn heuristics(&self) -> &Heuristics {
        &self.0.heuristics
    }

    /// The node's tracing span, `node{name=..}`; use it as the parent of your own events.
    ///
    /// It is an ERROR-level span, so it is on whenever any event is: a warning from the node
    /// (or your own, under this parent) names the node even at `RUST_LOG=warn`. Each
    /// connection's span is a child of it, and the engine runs your hooks and handlers inside
    /// that child.
    ///
    /// ```
    /// # let node = pea2pea::Node::new(pea2pea::Config { name: Some("relay".into()), ..pea2pea::Config::loopback() });
    /// // logged as `WARN node{name=relay}: ...: no peers left`
    /// tracing::warn!(parent: node.span(), "no peers left");
    /// ```
    pub fn span(&self) -> &Span {
        &self.0.span
    }

    /// Starts listening on [`Config::listener_addr`] if the node is not listening, and returns
    /// `Some` of the bound address (the configured IP, with the real port); otherwise stops
    /// listening and returns `None`. Stopping keeps established connections.
    ///
    /// Fails with `AddrNotAvailable` when `listener_addr` is `None`, and with the
    /// [`ShuttingDown`] error once [`shut_down`](Node::shut_down) has begun.
    ///
    /// ```
    /// # use pea2pea::{Config, Node};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let node = Node::new(Config::loopback());
    /// let addr = node.toggle_listener().await?.expect("it was not listening");
    /// assert_eq!(node.listening_addr().await?, addr);
    /// assert_eq!(node.toggle_listener().await?, None); // stopped
    /// assert!(node.listening_addr().await.is_err());
    /// # node.shut_down().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn toggle_listener(&self) -> io::Result<Option<SocketAddr>> {
        listener::toggle(self).await
    }

    /// Starts listening on [`Config::listener_addr`] unless the node already listens, and
    /// returns the address it listens on. Unlike [`toggle_listener`](Node::toggle_listener) it
    /// never stops the listener, so it is safe to call from anywhere, any number of times:
    /// concurrent calls bind once and all return the same address.
    ///
    /// Fails like `toggle_listener`: with `AddrNotAvailable` when `listener_addr` is `None`,
    /// with the error of binding the socket, or with the [`ShuttingDown`] error.
    ///
    /// ```
    /// # use pea2pea::{Config, Node};
    /// # #[tokio::main] async fn main() -> std::io::Result<()> {
    /// let node = Node::new(Config::loopback());
    /// let addr = node.start_listening().await?;
    /// assert_eq!(node.start_listening().await?, addr); // already listening: same address
    /// # node.shut_down().await;
    /// # Ok(()) }
    /// ```
    pub async fn start_listening(&self) -> io::Result<SocketAddr> {
        listener::start(self).await
    }

    /// The address the node listens on; `AddrNotAvailable` when it is not listening. See
    /// [`toggle_listener`](Node::toggle_listener) for an example.
    pub async fn listening_addr(&self) -> io::Result<SocketAddr> {
        self.0.listener.addr().ok_or_else(|| {
            io::Error::new(io::ErrorKind::AddrNotAvailable, "the node is not listening")
        })
    }

    /// Connects to `addr` and returns once the connection is fully set up: admitted, through
    /// the [`Handshake`](crate::protocols::Handshake) (if enabled), with reading and writing
    /// running and the connection registered. `on_connect` is started but not awaited.
    ///
    /// Errors: `AlreadyExists` if `addr` is connected, being connected or being disconnected;
    /// `QuotaExceeded` when a limit is reached; `AddrInUse` for the node's own address;
    /// `TimedOut` after [`Config::connection_timeout_ms`] or the handshake timeout; the
    /// handshake's own error; the [`ShuttingDown`] error.
    ///
    /// Dropping the future before it completes rolls everything back; dropping it after the
    /// connection is registered leaves the connection up (check [`is_connected`](Node::is_connected)).
    ///
    /// ```
    /// # use pea2pea::{Config, Node};
    /// use std::io::ErrorKind;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let peer = Node::new(Config::loopback());
    /// # let peer_addr = peer.toggle_listener().await?.unwrap();
    /// let node = Node::new(Config::loopback());
    /// node.connect(peer_addr).await?;
    /// assert!(node.is_connected(peer_addr));
    /// assert!(!node.is_connecting(peer_addr)); // set up, and so no longer connecting
    /// assert_eq!(node.num_connecting(), 0);
    ///
    /// let again = node.connect(peer_addr).await.unwrap_err();
    /// assert_eq!(again.kind(), ErrorKind::AlreadyExists);
    /// # node.shut_down().await;
    /// # peer.shut_down().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        setup::connect(self, addr, None).await
    }

    /// Like [`connect`](Node::connect), but dials from `socket`, which the caller has prepared
    /// (bound to a source address, socket options set).
    ///
    /// A simulation build (see [`net`](crate::net)) has no real sockets: there this fails with
    /// `Unsupported`. The method stays, so that code which calls it still compiles there.
    ///
    /// ```
    /// # use pea2pea::{Config, Node};
    /// use tokio::net::TcpSocket;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let peer = Node::new(Config::loopback());
    /// # let peer_addr = peer.toggle_listener().await?.unwrap();
    /// let node = Node::new(Config::loopback());
    /// let socket = TcpSocket::new_v4()?;
    /// socket.set_send_buffer_size(64 * 1024)?;
    /// socket.bind("127.0.0.1:0".parse().unwrap())?; // the source address the peer will see
    /// node.connect_using_socket(peer_addr, socket).await?;
    /// assert!(node.is_connected(peer_addr));
    /// # node.shut_down().await;
    /// # peer.shut_down().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_using_socket(
        &self,
        addr: SocketAddr,
        socket: TcpSocket,
    ) -> io::Result<()> {
        setup::connect(self, addr, Some(socket)).await
    }

    /// Disconnects from `addr`: runs `on_disconnect` (if enabled, bounded by its timeout), then
    /// removes the connection and closes the socket. Returns `true` only for the call that tore
    /// the connection down; `false` if `addr` is unknown or already being disconnected.
    ///
    /// Dropping the future part-way still removes the connection at once; only the hook is cut short.
    ///
    /// ```
    /// # use pea2pea::{Config, Node};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let peer = Node::new(Config::loopback());
    /// # let peer_addr = peer.toggle_listener().await?.unwrap();
    /// # let node = Node::new(Config::loopback());
    /// node.connect(peer_addr).await?;
    /// assert!(node.disconnect(peer_addr).await); // this call tore it down
    /// assert!(!node.disconnect(peer_addr).await); // nothing left to disconnect
    /// assert!(!node.is_connected(peer_addr));
    /// # node.shut_down().await;
    /// # peer.shut_down().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn disconnect(&self, addr: SocketAddr) -> bool {
        self.disconnect_with(addr, crate::DisconnectOrigin::User, None)
            .await
    }

    /// Disconnects from `addr` like [`disconnect`](Node::disconnect), first recording `reason`
    /// as the connection's [close reason](ConnectionInfo::close_reason), which its
    /// `on_disconnect` hook can read (unless another cause recorded one first: the first is
    /// kept). The connection is looked up and the reason recorded when this is called, not
    /// when the future is first polled; a newer connection at the same address by then is
    /// left alone.
    ///
    /// ```
    /// # async fn f(node: pea2pea::Node, addr: std::net::SocketAddr) {
    /// node.disconnect_with_reason(addr, "it sent 100 invalid votes").await;
    /// # }
    /// ```
    pub fn disconnect_with_reason(
        &self,
        addr: SocketAddr,
        reason: impl Into<String>,
    ) -> impl Future<Output = bool> + Send + 'static {
        // the connection found now is the one recorded and the one torn down
        let id = self.connection_info(addr).map(|info| {
            info.record_close_reason(reason);
            info.id().0
        });
        let node = self.clone();
        async move {
            match id {
                Some(id) => {
                    node.disconnect_with(addr, crate::DisconnectOrigin::User, Some(id))
                        .await
                }
                None => false,
            }
        }
    }

    /// Disconnects the connection `id` with `addr`, and only that one: if the peer has since
    /// reconnected, the newer connection (another id at the same address) is left alone. It
    /// tears down like [`disconnect`](Node::disconnect) (origin [`User`](crate::DisconnectOrigin::User))
    /// and returns `true` only for the call that did it.
    ///
    /// Use it wherever a decision about a connection may be acted on after that connection
    /// has gone: a task that was started for one connection, a timer, a reply that came late.
    ///
    /// ```
    /// # async fn f(node: pea2pea::Node, addr: std::net::SocketAddr) {
    /// let Some(info) = node.connection_info(addr) else { return };
    /// // ... later, perhaps after the peer has reconnected:
    /// node.disconnect_connection(addr, info.id()).await;
    /// # }
    /// ```
    pub async fn disconnect_connection(&self, addr: SocketAddr, id: ConnectionId) -> bool {
        self.disconnect_with(addr, crate::DisconnectOrigin::User, Some(id.0))
            .await
    }

    /// A future that resolves when the connection `id` with `addr` has been torn down: after
    /// its `on_disconnect` hook has returned (or was cut short by its timeout) and after the
    /// connection was removed from the node (so [`is_connected`](Node::is_connected) no longer
    /// counts it), whatever ended it; a teardown that outlives shutdown's deadline resolves it
    /// when shutdown removes the connection. It resolves at once if that connection is not
    /// registered when this is called: already gone, not yet registered (as during its
    /// handshake), or never known. A newer connection at the same address never resolves it
    /// or delays it.
    ///
    /// The connection is looked up now, and the future holds no lock and no reference to the
    /// node: keep it, move it to a task, `select!` on it. Dropping it does nothing.
    ///
    /// ```
    /// # use std::{io, net::SocketAddr};
    /// # async fn f(node: pea2pea::Node, addr: SocketAddr, answer: tokio::sync::oneshot::Receiver<u64>) -> io::Result<u64> {
    /// let id = node.connection_info(addr).ok_or(io::ErrorKind::NotConnected)?.id();
    /// tokio::select! {
    ///     answer = answer => answer.map_err(|_| io::ErrorKind::BrokenPipe.into()),
    ///     () = node.connection_closed(addr, id) => Err(io::ErrorKind::ConnectionAborted.into()),
    /// }
    /// # }
    /// ```
    pub fn connection_closed(
        &self,
        addr: SocketAddr,
        id: ConnectionId,
    ) -> impl Future<Output = ()> + Send + 'static {
        let entry = self.0.registry.get(addr).filter(|entry| entry.id == id.0);
        async move {
            if let Some(entry) = entry {
                entry.wait_closed().await;
            }
        }
    }

    /// The node's value of type `T`, made with `T::default()` on first use; every later call
    /// returns the same value. For state that a layer built on the engine keeps per node
    /// (counters, tables) without a field in the user's struct: a library makes a type of its
    /// own for it, so that no other code can reach it.
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicU64, Ordering};
    /// # use pea2pea::{Config, Node};
    /// #[derive(Default)]
    /// struct Greetings(AtomicU64);
    ///
    /// let node = Node::new(Config::default());
    /// assert!(node.extension::<Greetings>().is_none());
    /// node.extension_or_default::<Greetings>().0.fetch_add(1, Ordering::Relaxed);
    /// assert_eq!(node.extension::<Greetings>().unwrap().0.load(Ordering::Relaxed), 1);
    /// ```
    pub fn extension_or_default<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        self.0.extensions.get_or_default()
    }

    /// The node's value of type `T`, if [`extension_or_default`](Node::extension_or_default)
    /// has made one; it makes none.
    pub fn extension<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.0.extensions.get()
    }

    /// Shuts the node down: stops the listener, admits nothing more, disconnects every peer
    /// (origin `Shutdown`, with `on_disconnect` for each), waits for teardowns in flight (for
    /// at most 3 seconds), and releases the protocols, and with them the node's handles to
    /// itself. Calling it again, or after a cancelled call, waits for the same completion.
    ///
    /// When it returns, no connection is registered and every socket is closed, however slow
    /// the hooks: a teardown still running after the 3 seconds is cut off. If it was shutdown's
    /// own, its `on_disconnect` is dropped mid-way; if it was started elsewhere (a
    /// [`disconnect`](Node::disconnect) call, a failed reader or writer), its connection is
    /// removed at once and its `on_disconnect` goes on in that caller, bounded by
    /// [`OnDisconnect::TIMEOUT_MS`](crate::protocols::OnDisconnect::TIMEOUT_MS).
    ///
    /// Do not call it from inside one of the node's own hooks: it would wait for that hook.
    ///
    /// ```
    /// # use pea2pea::{Config, Node, ShuttingDown};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let peer = Node::new(Config::loopback());
    /// # let peer_addr = peer.toggle_listener().await?.unwrap();
    /// let node = Node::new(Config::loopback());
    /// node.toggle_listener().await?;
    /// node.connect(peer_addr).await?;
    ///
    /// node.shut_down().await;
    /// assert_eq!(node.num_connected(), 0);
    /// let refused = node.connect(peer_addr).await.unwrap_err();
    /// assert!(ShuttingDown::caused(&refused)); // final: the node stays down
    /// # peer.shut_down().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shut_down(&self) {
        shutdown::shut_down(self).await
    }

    /// The addresses of all established connections.
    pub fn connected_addrs(&self) -> Vec<SocketAddr> {
        self.0.registry.addrs()
    }

    /// Whether a connection with `addr` is established (it stays so until teardown completes).
    pub fn is_connected(&self, addr: SocketAddr) -> bool {
        self.0.registry.is_connected(addr)
    }

    /// Whether a connection with `addr` is being set up.
    pub fn is_connecting(&self, addr: SocketAddr) -> bool {
        self.0.registry.is_connecting(addr)
    }

    /// The number of established connections.
    pub fn num_connected(&self) -> usize {
        self.0.registry.num_connected()
    }

    /// The number of connections being set up.
    pub fn num_connecting(&self) -> usize {
        self.0.registry.num_connecting()
    }

    /// The description of the connection with `addr`, if it is established.
    ///
    /// ```
    /// # use pea2pea::{Config, ConnectionSide, Node};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// # let peer = Node::new(Config::loopback());
    /// # let peer_addr = peer.toggle_listener().await?.unwrap();
    /// # let node = Node::new(Config::loopback());
    /// node.connect(peer_addr).await?;
    /// let info = node.connection_info(peer_addr).expect("connected");
    /// assert_eq!(info.addr(), peer_addr);
    /// assert_eq!(info.side(), ConnectionSide::Responder); // the peer's role: it accepted
    /// assert_eq!(info.stats().sent(), (0, 0));
    /// assert_eq!(node.connection_infos().len(), 1);
    /// # node.shut_down().await;
    /// # peer.shut_down().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connection_info(&self, addr: SocketAddr) -> Option<ConnectionInfo> {
        self.0.registry.get(addr).map(|entry| entry.info.clone())
    }

    /// The descriptions of all established connections.
    pub fn connection_infos(&self) -> HashMap<SocketAddr, ConnectionInfo> {
        self.0.registry.infos()
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.0.registry
    }

    pub(crate) fn protocols(&self) -> &Protocols {
        &self.0.protocols
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.0.shutdown.has_begun()
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.0.next_conn_id.fetch_add(1, Ordering::Relaxed)
    }
}
