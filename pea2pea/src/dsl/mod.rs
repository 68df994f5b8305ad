//! The runtime half of [`protocol!`](crate::protocol) and [`#[node]`](crate::node): what a
//! declared protocol is ([`Protocol`]), which requests a node can call ([`Rpc`]), and the
//! counters the generated code keeps for each node.
//!
//! The DSL's per-node state (calls in flight, counters) lives in the node's extension slot
//! ([`Node::extension_or_default`]), so that `#[node]` adds no field to your struct.
//!
//! The pieces at work together: a handler learns who called it ([`peer_identity`]), a node
//! reaches a peer through one connection whoever dialled (the generated `connect_if_needed`),
//! calls it (a [`Call`]), fans out with a [`SendReport`], and reads its counters.
//!
//! ```
//! use pea2pea::{Config, Message, Node, Pea2Pea, dsl, protocol};
//!
//! #[derive(Message, Debug)]
//! enum Chat {
//!     Say(String),
//! }
//!
//! #[derive(Message, Debug)]
//! struct WhoAmI;
//!
//! #[derive(Message, Debug)]
//! struct YouAre(String);
//!
//! #[pea2pea::node]
//! #[derive(Clone)]
//! struct Peer {
//!     node: Node,
//! }
//!
//! protocol! {
//!     Peer speaks Chat {
//!         handshake = fingerprint,
//!         on Chat::Say(text) from addr => println!("{addr}: {text}"),
//!         // the handshake told this node the caller's name and listening address
//!         rpc WhoAmI from addr -> YouAre => {
//!             let caller = dsl::peer_identity(self.node(), addr);
//!             YouAre(caller.map(|id| id.name().to_owned()).unwrap_or_default())
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let peer = |name: &str| Peer {
//!     node: Node::new(Config { name: Some(name.into()), ..Config::loopback() }),
//! };
//! let (alice, bob) = (peer("alice"), peer("bob"));
//! alice.start().await?;
//! let bob_addr = bob.start().await?;
//!
//! // dials only if neither side has dialled the other yet
//! let bob_conn = alice.connect_if_needed(bob_addr).await?;
//! assert_eq!(alice.connect_if_needed(bob_addr).await?, bob_conn);
//!
//! let YouAre(me) = alice.call(bob_conn, WhoAmI).await?;
//! assert_eq!(me, "alice");
//!
//! let report = alice.send_to_many([bob_conn], &Chat::Say("hi".into())).await;
//! assert!(report.all_queued());
//! assert_eq!(dsl::handler_errors(bob.node()), 0);
//! assert_eq!(dsl::calls_in_flight(alice.node()), 0);
//!
//! alice.node().shut_down().await;
//! bob.node().shut_down().await;
//! # Ok(())
//! # }
//! ```

pub(crate) mod call;
pub(crate) mod codec;
pub(crate) mod compat;
pub(crate) mod describe;
pub(crate) mod ext;
pub(crate) mod fanout;
pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod identity;
pub(crate) mod ordered;
pub(crate) mod outcome;
pub(crate) mod refusal;
pub(crate) mod rpc;
pub(crate) mod send;
pub(crate) mod serve;

pub use call::Call;
pub use fanout::{SendOutcome, SendReport, WhenFull};
pub use frame::MAX_REFUSAL;
pub use identity::PeerIdentity;
pub use outcome::{HandlerResult, RpcAnswer};

use std::{net::SocketAddr, sync::atomic::Ordering};

use crate::{Message, Node};

/// Implemented by `protocol!` for the node type it declares a protocol for.
///
/// ```
/// use pea2pea::{Message, Node, dsl::Protocol, protocol};
///
/// #[derive(Message, Debug)]
/// enum Chat {
///     Say(String),
/// }
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Peer {
///     node: Node,
/// }
///
/// protocol! {
///     Peer speaks Chat {
///         name = "chat",
///         on Chat::Say(text) => println!("{text}"),
///     }
/// }
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Other {
///     node: Node,
/// }
///
/// protocol! {
///     Other speaks Chat over length_delimited(little_endian) {
///         name = "chat",
///         on Chat::Say(text) => println!("{text}"),
///     }
/// }
///
/// assert_eq!(<Peer as Protocol>::NAME, "chat");
/// // another framing of the same messages: another fingerprint
/// assert_ne!(<Peer as Protocol>::FINGERPRINT, <Other as Protocol>::FINGERPRINT);
/// ```
pub trait Protocol {
    /// A readable name of the declaration: its `name = "..."`, or its message types.
    const NAME: &'static str;

    /// A stable 64-bit hash of the declaration: its name, the [`Message::SHAPE`] of every
    /// message, request and response type, and the framing. Two builds whose declarations
    /// differ get different fingerprints; `handshake = fingerprint` exchanges it on connect,
    /// and compares it when a peer sends no description of its protocol (an older build, or
    /// a description too large for a hello); otherwise the descriptions decide, part by part.
    const FINGERPRINT: u64;
}

/// A request that the node type `N` can send with its generated `call`, and the response it
/// gets back; implemented by every `rpc Request -> Response` of `N`'s `protocol!`.
///
/// ```
/// use std::{io, net::SocketAddr};
///
/// use pea2pea::{Message, Node, dsl::Rpc, protocol};
///
/// #[derive(Message, Debug)]
/// struct Ping(u32);
///
/// #[derive(Message, Debug)]
/// struct Pong(u32);
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Client {
///     node: Node,
/// }
///
/// protocol! {
///     Client speaks Ping {
///         on Ping(_) => {},
///         rpc Ping -> Pong,
///     }
/// }
///
/// // code generic over the requests a node can call
/// async fn ask<R: Rpc<Client>>(client: &Client, addr: SocketAddr, request: R) -> io::Result<R::Response> {
///     client.call(addr, request).await
/// }
///
/// let _ = ask::<Ping>;
/// assert_ne!(<Ping as Rpc<Client>>::METHOD, 0);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a request that `{N}` can call",
    label = "`{N}`'s protocol declares no `rpc {Self} -> ...`",
    note = "declare it in the node's protocol!, as `rpc {Self} -> Response` (call only) or with a handler"
)]
pub trait Rpc<N>: Message {
    /// What the peer answers.
    type Response: Message;

    /// The method id on the wire: a hash of the request type's name as the `rpc` line writes
    /// it, without its leading path (`Cube`, `Page<u32>`). Compatible versions of a request
    /// keep their id; the DSL handshake checks that both peers' types can read each other.
    const METHOD: u64;
}

/// How many connections `node` rejected in the fingerprint handshake because the peer spoke a
/// different protocol.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none yet: one more for each peer that failed the DSL handshake
/// assert_eq!(dsl::fingerprint_rejections(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn fingerprint_rejections(node: &Node) -> u64 {
    ext::existing(node).map_or(0, |ext| ext.fingerprint_rejections.load(Ordering::Relaxed))
}

/// How many requests from peers `node` could not decode (each one closed its connection).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none yet: one more for each request from a peer that did not decode
/// assert_eq!(dsl::invalid_requests(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn invalid_requests(node: &Node) -> u64 {
    ext::existing(node).map_or(0, |ext| ext.invalid_requests.load(Ordering::Relaxed))
}

/// How many messages `node`'s `send_to_many_with(.., WhenFull::Drop)` skipped because the
/// peer's outbound queue was full (one per peer and message).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none yet: one more for each peer that `send_to_many_with(.., WhenFull::Drop)` skips
/// assert_eq!(dsl::messages_dropped(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn messages_dropped(node: &Node) -> u64 {
    ext::existing(node).map_or(0, |ext| ext.messages_dropped.load(Ordering::Relaxed))
}

/// How many peers `node`'s `send_to_many_with(.., WhenFull::Disconnect)` disconnected because
/// their outbound queue was full.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none yet: one more for each peer `send_to_many_with(.., WhenFull::Disconnect)` ends
/// assert_eq!(dsl::slow_peers_disconnected(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn slow_peers_disconnected(node: &Node) -> u64 {
    ext::existing(node).map_or(0, |ext| ext.slow_peers_disconnected.load(Ordering::Relaxed))
}

/// Who is at the other end of `node`'s connection with `addr` (a handler's `from`), as the DSL
/// handshake (`handshake = fingerprint`) said: the peer's listening address, dialable from
/// this node, and its name. `None` if there is no such connection or it had no DSL handshake.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // no connection to that address: nobody to name
/// assert_eq!(dsl::peer_identity(&node, "127.0.0.1:9".parse().unwrap()), None);
/// # node.shut_down().await;
/// # }
/// ```
pub fn peer_identity(node: &Node, addr: SocketAddr) -> Option<PeerIdentity> {
    identity::of_peer(node, addr)
}

/// How many connections `node` dropped in the DSL handshake as a second connection between
/// the same two nodes (one of two simultaneous dials, or a dial to a peer already connected).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none yet: one more for each second connection to a node it already has one with
/// assert_eq!(dsl::duplicate_connections(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn duplicate_connections(node: &Node) -> u64 {
    ext::existing(node).map_or(0, |ext| ext.duplicate_connections.load(Ordering::Relaxed))
}

/// How many of `node`'s `on` handlers returned an error (each one disconnected its peer).
///
/// ```
/// use std::{num::ParseIntError, time::Duration};
///
/// use pea2pea::{Config, Message, Node, Pea2Pea, dsl, protocol};
///
/// #[derive(Message, Debug)]
/// enum Cmd {
///     Count(String),
/// }
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Peer {
///     node: Node,
/// }
///
/// protocol! {
///     Peer speaks Cmd {
///         // a text that is not a number fails the handler: the sender is disconnected
///         on Cmd::Count(text) -> Result<(), ParseIntError> => {
///             let n: u32 = text.parse()?;
///             println!("{n}");
///             Ok(())
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let peer = || Peer { node: Node::new(Config::loopback()) };
/// let (alice, bob) = (peer(), peer());
/// alice.start().await?;
/// let bob_addr = bob.start().await?;
/// let conn = alice.connect_if_needed(bob_addr).await?;
/// alice.send(conn, Cmd::Count("seven".into())).await?;
///
/// // the handler runs at bob's: wait for its count, for at most 5 s
/// let failed = async {
///     while dsl::handler_errors(bob.node()) == 0 {
///         tokio::time::sleep(Duration::from_millis(5)).await;
///     }
/// };
/// tokio::time::timeout(Duration::from_secs(5), failed).await.expect("the handler failed");
/// assert_eq!(dsl::handler_errors(bob.node()), 1);
///
/// alice.node().shut_down().await;
/// bob.node().shut_down().await;
/// # Ok(())
/// # }
/// ```
pub fn handler_errors(node: &Node) -> u64 {
    ext::existing(node).map_or(0, |ext| ext.handler_errors.load(Ordering::Relaxed))
}

/// How many refusals `node` received: each one said that the peer could not decode a frame of
/// this node's (a message, request or response; a protocol with `rpc` lines), and closed that
/// connection, whose close reason then says "the peer refused a message: ..." (see
/// [`ConnectionInfo::close_reason`](crate::ConnectionInfo::close_reason)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none yet: one more for each frame of this node's that a peer could not decode
/// assert_eq!(dsl::refused_by_peer(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn refused_by_peer(node: &Node) -> u64 {
    ext::existing(node).map_or(0, |ext| ext.refused_by_peer.load(Ordering::Relaxed))
}

/// How many calls from peers `node` refused because `max_calls` of that peer's calls were
/// being served (each caller got an error answer).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none yet: one more for each call that found its peer's `max_calls` busy
/// assert_eq!(dsl::requests_refused(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn requests_refused(node: &Node) -> u64 {
    ext::existing(node).map_or(0, |ext| ext.requests_refused.load(Ordering::Relaxed))
}

/// How many calls from peers `node`'s handlers are serving now, over all peers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none now: it goes up while a handler serves a peer's call, and back down
/// assert_eq!(dsl::requests_being_served(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn requests_being_served(node: &Node) -> usize {
    ext::existing(node).map_or(0, |ext| ext.serving())
}

/// How many of `node`'s calls are waiting for an answer, over all peers.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use pea2pea::{Config, Node, dsl};
///
/// let node = Node::new(Config::loopback());
/// // none now: it goes up while a `call` of this node waits for its answer, and back down
/// assert_eq!(dsl::calls_in_flight(&node), 0);
/// # node.shut_down().await;
/// # }
/// ```
pub fn calls_in_flight(node: &Node) -> usize {
    ext::existing(node).map_or(0, |ext| ext.in_flight())
}
