//! Handlers that return a `Result` (DSL-13, DSL-14, DSL-20): an `Err` is logged with the node's name
//! and the peer, counted, and disconnects that peer (that connection only); `Ok` and `()`
//! handlers keep it. Run on a current-thread runtime with a [`LogCapture`], so that every
//! task logs on the test's thread.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use pea2pea::{Config, Message, Node, Pea2Pea, dsl, protocol};
use pea2pea_tests::{logs::LogCapture, wait_until_10s};
use tracing::Level;

#[derive(Message, Debug, Clone, PartialEq)]
enum Cmd {
    /// Handled by a handler that returns `Ok`.
    Fine,
    /// Handled by a handler that returns `()`.
    Unit,
    /// Makes its handler fail, with this reason, through `?`.
    Fail(String),
}

#[derive(Message, Debug, Clone, PartialEq)]
struct Ping;

#[derive(Message, Debug, Clone, PartialEq)]
struct Pong;

#[derive(Message, Debug, Clone, PartialEq)]
struct Divide(u32, u32);

#[derive(Message, Debug, Clone, PartialEq)]
struct Quotient(u32);

/// The close reasons a node's `on_disconnect` read.
type Reasons = Arc<Mutex<Vec<Option<String>>>>;

fn record(node: &Node, reasons: &Reasons, addr: SocketAddr) {
    let reason = node
        .connection_info(addr)
        .and_then(|info| info.close_reason());
    reasons.lock().unwrap().push(reason);
}

fn fail(reason: String) -> io::Result<()> {
    Err(io::Error::other(reason))
}

/// A protocol without rpcs: the handlers run in the reader.
#[pea2pea::node]
#[derive(Clone)]
struct Plain {
    node: Node,
    handled: Arc<AtomicUsize>,
    reasons: Reasons,
}

protocol! {
    Plain speaks Cmd {
        on Cmd::Fine => {
            self.handled.fetch_add(1, Ordering::SeqCst);
            io::Result::Ok(())
        }
        on Cmd::Unit => {
            self.handled.fetch_add(1, Ordering::SeqCst);
        }
        on Cmd::Fail(reason) => {
            fail(reason)?;
            Ok(())
        }
        on_disconnect(addr) => record(self.node(), &self.reasons, addr),
    }
}

/// A protocol with rpcs: the `on` handlers run in a task per connection.
#[pea2pea::node]
#[derive(Clone)]
struct WithRpc {
    node: Node,
    handled: Arc<AtomicUsize>,
    reasons: Reasons,
}

protocol! {
    WithRpc speaks Cmd {
        on Cmd::Fine -> Result<(), String> => {
            self.handled.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        on Cmd::Unit => {
            self.handled.fetch_add(1, Ordering::SeqCst);
        }
        on Cmd::Fail(reason) -> Result<(), String> => Err(reason),
        rpc Ping -> Pong => Pong,
        rpc Divide(a, b) -> Quotient => {
            let q = a.checked_div(b).ok_or_else(|| io::Error::other("division by zero"))?;
            Ok(Quotient(q))
        }
        on_disconnect(addr) => record(self.node(), &self.reasons, addr),
    }
}

fn node(name: &str) -> Node {
    Node::new(Config {
        name: Some(name.into()),
        ..Config::loopback()
    })
}

/// What both tests check once `b`'s handler for `a`'s `Fail` has run: `a` was disconnected
/// and logged, `c` was not.
async fn assert_failed_once(
    capture: &LogCapture,
    (b, reasons): (&Node, &Reasons),
    a_seen_as: SocketAddr,
) {
    wait_until_10s("b to drop a", || b.num_connected() == 1).await;
    assert_eq!(
        *reasons.lock().unwrap(),
        [Some("a handler failed on its message: nope".to_string())],
        "the close reason b's on_disconnect read"
    );
    assert!(!b.is_connected(a_seen_as), "b dropped the wrong peer");
    assert_eq!(dsl::handler_errors(b), 1);
    let logged = capture.lines_at(Level::WARN).into_iter().any(|line| {
        line.contains("name=b") && line.contains(&a_seen_as.to_string()) && line.contains("nope")
    });
    assert!(
        logged,
        "no warning names the node, the peer and the error: {:#?}",
        capture.lines()
    );
}

// DSL-13: in a protocol without rpcs, an `on` handler's `Err` (through `?`) is logged with the
// node's name and the peer, counted, and disconnects that peer only; `Ok` and `()` keep it.
#[tokio::test]
async fn dsl_13_a_failing_handler_disconnects_its_peer() {
    let (capture, _guard) = LogCapture::install(Level::WARN);
    let plain = |name| Plain {
        node: node(name),
        handled: Default::default(),
        reasons: Default::default(),
    };
    let (a, b, c) = (plain("a"), plain("b"), plain("c"));
    let b_addr = b.start().await.unwrap();
    a.enable_protocols().await;
    c.enable_protocols().await;
    a.node().connect(b_addr).await.unwrap();
    wait_until_10s("b to register a", || b.node().num_connected() == 1).await;
    let a_seen_as = b.node().connected_addrs()[0];
    c.node().connect(b_addr).await.unwrap();

    a.send(b_addr, Cmd::Fine).await.unwrap();
    a.send(b_addr, Cmd::Unit).await.unwrap();
    wait_until_10s("b to handle both", || b.handled.load(Ordering::SeqCst) == 2).await;
    assert_eq!(b.node().num_connected(), 2);
    assert_eq!(dsl::handler_errors(b.node()), 0);

    a.send(b_addr, Cmd::Fail("nope".into())).await.unwrap();
    assert_failed_once(&capture, (b.node(), &b.reasons), a_seen_as).await;
    // b still serves c
    c.send(b_addr, Cmd::Fine).await.unwrap();
    wait_until_10s("b to handle c's message", || {
        b.handled.load(Ordering::SeqCst) == 3
    })
    .await;
    for n in [&a, &b, &c] {
        n.node().shut_down().await;
    }
}

// DSL-14: the same in a protocol with rpcs, whose `on` handlers run in a task per connection:
// the `Err` disconnects the connection the message came on.
#[tokio::test]
async fn dsl_14_a_failing_handler_disconnects_its_peer_with_rpcs() {
    let (capture, _guard) = LogCapture::install(Level::WARN);
    let with_rpc = |name| WithRpc {
        node: node(name),
        handled: Default::default(),
        reasons: Default::default(),
    };
    let (a, b, c) = (with_rpc("a"), with_rpc("b"), with_rpc("c"));
    let b_addr = b.start().await.unwrap();
    a.enable_protocols().await;
    c.enable_protocols().await;
    a.node().connect(b_addr).await.unwrap();
    wait_until_10s("b to register a", || b.node().num_connected() == 1).await;
    let a_seen_as = b.node().connected_addrs()[0];
    c.node().connect(b_addr).await.unwrap();

    a.send(b_addr, Cmd::Fine).await.unwrap();
    a.send(b_addr, Cmd::Unit).await.unwrap();
    assert_eq!(a.call(b_addr, Ping).await.unwrap(), Pong);
    wait_until_10s("b to handle both", || b.handled.load(Ordering::SeqCst) == 2).await;

    a.send(b_addr, Cmd::Fail("nope".into())).await.unwrap();
    assert_failed_once(&capture, (b.node(), &b.reasons), a_seen_as).await;
    assert_eq!(c.call(b_addr, Ping).await.unwrap(), Pong);
    for n in [&a, &b, &c] {
        n.node().shut_down().await;
    }
}

// DSL-20: an rpc handler may evaluate to a `Result` of its response (`?` works): an `Err` is the
// caller's error (`Other`, with the handler's reason), logged and counted; the connection
// stays, and the next call is answered.
#[tokio::test]
async fn dsl_20_a_failing_rpc_handler_answers_its_error() {
    let (capture, _guard) = LogCapture::install(Level::WARN);
    let with_rpc = |name| WithRpc {
        node: node(name),
        handled: Default::default(),
        reasons: Default::default(),
    };
    let (a, b) = (with_rpc("a"), with_rpc("b"));
    let b_addr = b.start().await.unwrap();
    a.enable_protocols().await;
    a.node().connect(b_addr).await.unwrap();

    assert_eq!(a.call(b_addr, Divide(7, 2)).await.unwrap(), Quotient(3));
    let err = a.call(b_addr, Divide(7, 0)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other, "{err}");
    assert!(err.to_string().contains("division by zero"), "{err}");
    assert_eq!(dsl::handler_errors(b.node()), 1);
    assert!(
        capture.any_line_contains(Level::WARN, "division by zero"),
        "{:#?}",
        capture.lines()
    );
    assert_eq!(a.call(b_addr, Divide(9, 3)).await.unwrap(), Quotient(3));
    assert_eq!(b.node().num_connected(), 1);
    a.node().shut_down().await;
    b.node().shut_down().await;
}
