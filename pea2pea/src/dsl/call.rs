//! The future of a generated `call`. It starts the call when first polled, where the request
//! type is known to be one of the node's rpcs: so `call` itself has no bound on the request,
//! and a request the protocol does not declare is one compile error (at `.await`), where a
//! bound on `call` would report it three times.

use std::{
    fmt,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Bytes;

use super::{
    Rpc,
    frame::Frame,
    rpc::{call_bytes, decode_answer},
};
use crate::{ConnectionId, protocols::Writing};

type Answer<'a> = Pin<Box<dyn Future<Output = io::Result<(Bytes, ConnectionId)>> + Send + 'a>>;

/// A call in progress: what the generated `call` of a node with `rpc` lines returns. Await it
/// for the response (or the error that ended the call); dropping it abandons the call. It is a
/// `Future` when `R` is one of the node's rpc requests. The [module's example](crate::dsl)
/// awaits one.
///
/// ```
/// use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
///
/// #[derive(Message, Debug)]
/// struct Ping(u32);
///
/// #[derive(Message, Debug)]
/// struct Pong(u32);
///
/// #[pea2pea::node]
/// #[derive(Clone)]
/// struct Peer {
///     node: Node,
/// }
///
/// protocol! {
///     Peer speaks Ping {
///         on Ping(_) => {},
///         rpc Ping(n) -> Pong => Pong(n + 1),
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
///
/// let call = alice.call(conn, Ping(41)); // nothing is sent yet
/// let Pong(n) = call.await?;
/// assert_eq!(n, 42);
///
/// alice.node().shut_down().await;
/// bob.node().shut_down().await;
/// # Ok(())
/// # }
/// ```
#[must_use = "the request is not sent unless this future is awaited"]
pub struct Call<'a, N, R> {
    node: &'a N,
    addr: SocketAddr,
    request: Option<R>,
    timeout_ms: u64,
    max_calls: usize,
    answer: Option<Answer<'a>>,
}

// nothing in a `Call` is ever pinned in place: the request is moved out, and the call's own
// future is boxed
impl<N, R> Unpin for Call<'_, N, R> {}

impl<'a, N, R> Call<'a, N, R> {
    #[doc(hidden)]
    pub fn new(
        node: &'a N,
        addr: SocketAddr,
        request: R,
        timeout_ms: u64,
        max_calls: usize,
    ) -> Self {
        Call {
            node,
            addr,
            request: Some(request),
            timeout_ms,
            max_calls,
            answer: None,
        }
    }
}

impl<'a, N, M, R> Future for Call<'a, N, R>
where
    N: Writing<Message = Frame<M>>,
    M: 'a,
    R: Rpc<N>,
{
    type Output = io::Result<R::Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let name = std::any::type_name::<R>();
        let answer = match (&mut this.answer, this.request.take()) {
            (Some(answer), _) => answer,
            (answer @ None, Some(request)) => answer.insert(Box::pin(call_bytes(
                this.node,
                this.addr,
                (R::METHOD, request.to_bytes(), name),
                this.timeout_ms,
                this.max_calls,
            ))),
            (None, None) => panic!("a `Call` was polled after it completed"),
        };
        let answered = ready!(answer.as_mut().poll(cx));
        this.answer = None;
        Poll::Ready(
            answered
                .and_then(|(bytes, conn)| decode_answer(this.node, (this.addr, conn), bytes, name)),
        )
    }
}

impl<N, R: fmt::Debug> fmt::Debug for Call<'_, N, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Call")
            .field("addr", &self.addr)
            .field("request", &self.request)
            .field("started", &self.answer.is_some())
            .finish()
    }
}
