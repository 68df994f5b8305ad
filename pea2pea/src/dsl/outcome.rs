//! What an `on` handler evaluates to: `()`, or a `Result` whose error ends the peer's
//! connection (logged with the node's name and the peer, and counted).

use std::{fmt::Display, net::SocketAddr, sync::atomic::Ordering};

use tracing::warn;

use super::ext;
use crate::{ConnectionId, Pea2Pea};

/// What an `on` handler may evaluate to: `()`, or a `Result<(), E>` whose error displays
/// (`io::Result<()>`, a `Result` of your own error type). An `Err` is logged with the node's
/// name and the peer, counted in [`dsl::handler_errors`](super::handler_errors), and
/// disconnects that peer.
///
/// ```
/// use std::io;
///
/// use pea2pea::{Message, Node, protocol};
///
/// #[derive(Message, Debug)]
/// enum Cmd {
///     Log(String),
///     Save(String),
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
///         // `()`: nothing can fail
///         on Cmd::Log(text) => println!("{text}"),
///         // a `Result`: an `Err` disconnects the peer; `?` makes it an `io::Result<()>`
///         on Cmd::Save(text) => {
///             std::fs::write(std::env::temp_dir().join("pea2pea-note"), text)?;
///             Ok::<(), io::Error>(())
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "an `on` handler evaluates to `()` or to a `Result<(), E>` whose error implements `Display`, not to `{Self}`",
    label = "this handler evaluates to `{Self}`",
    note = "end the body with `;` to drop a value, or say the handler's result: `on Msg(x) -> std::io::Result<()> => {{ ... }}`"
)]
pub trait HandlerResult {
    /// The error's text, if the handler failed.
    fn failure(self) -> Option<String>;
}

impl HandlerResult for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: Display> HandlerResult for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// What an rpc handler that answers with `R` may evaluate to: `R`, or a `Result<R, E>` whose
/// error displays (`io::Result<R>`, ...), so that `?` works in it. An `Err` is answered to the
/// caller as a failure (its `call` fails with `Other`, the error's text in the message),
/// logged with the node's name and the peer, and counted in
/// [`dsl::handler_errors`](super::handler_errors); the connection stays.
///
/// ```
/// use pea2pea::{Message, Node, protocol};
///
/// #[derive(Message, Debug)]
/// struct Get(String);
///
/// #[derive(Message, Debug)]
/// struct Value(u64);
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Store {
///     node: Node,
/// }
///
/// protocol! {
///     Store speaks Get {
///         on _ => {},
///         // the response, or an error whose text the caller's `call` fails with
///         rpc Get(key) -> Value => match key.as_str() {
///             "answer" => Ok(Value(42)),
///             other => Err(format!("no key {other}")),
///         }
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "an rpc handler answering `{R}` evaluates to `{R}` or to a `Result<{R}, E>` whose error implements `Display`, not to `{Self}`",
    label = "this handler evaluates to `{Self}`"
)]
pub trait RpcAnswer<R> {
    /// The response, or the error's text.
    fn into_answer(self) -> Result<R, String>;
}

impl<R> RpcAnswer<R> for R {
    fn into_answer(self) -> Result<R, String> {
        Ok(self)
    }
}

impl<R, E: Display> RpcAnswer<R> for Result<R, E> {
    fn into_answer(self) -> Result<R, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Settles a handler's result for a message from `addr` (on connection `conn`, if known):
/// nothing for `()` and `Ok`; an `Err` disconnects that connection.
pub fn settle<P: Pea2Pea, T: HandlerResult>(
    this: &P,
    addr: SocketAddr,
    conn: Option<ConnectionId>,
    outcome: T,
) {
    if let Some(reason) = outcome.failure() {
        failed(this, addr, conn, reason);
    }
}

#[cold]
fn failed<P: Pea2Pea>(this: &P, addr: SocketAddr, conn: Option<ConnectionId>, reason: String) {
    let node = this.node();
    ext::of(node).handler_errors.fetch_add(1, Ordering::Relaxed);
    warn!(parent: node.span(), "a handler failed on a message from {addr}: {reason}; disconnecting");
    // a reader runs only while its connection is registered, so the one at `addr` is its own
    let Some(id) = conn.or_else(|| node.connection_info(addr).map(|info| info.id())) else {
        return;
    };
    if let Some(info) = node.connection_info(addr).filter(|info| info.id() == id) {
        info.record_close_reason(format!("a handler failed on its message: {reason}"));
    }
    let node = node.clone();
    // not awaited: the teardown may end the very task that runs this handler
    tokio::spawn(async move { node.disconnect_connection(addr, id).await });
}
