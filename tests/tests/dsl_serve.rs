//! rpc served side by side (DSL-07..12): requests run as tasks of their own, at most
//! `max_calls` per peer; the reader routes answers whatever handlers are running, so a handler
//! can call its caller back; `on` handlers keep their connection's order.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use pea2pea::{Config, Message, Node, Pea2Pea, dsl, protocol};
use pea2pea_tests::{bounded, wait_until_10s};
use tokio::sync::Semaphore;

#[derive(Message, Debug, Clone, PartialEq)]
enum Note {
    /// A numbered message, recorded by the `on` handler after sleeping `pause` ms.
    Seq { n: u64, pause: u64 },
    /// Makes the receiver's `on` handler call the sender back.
    Ask(u64),
}

/// Answered after sleeping that many milliseconds.
#[derive(Message, Debug, Clone, PartialEq)]
struct Nap(u64);

#[derive(Message, Debug, Clone, PartialEq)]
struct Done(u64);

/// Answered once the server's gate lets it through.
#[derive(Message, Debug, Clone, PartialEq)]
struct Gated;

#[derive(Message, Debug, Clone, PartialEq)]
struct Square(u64);

#[derive(Message, Debug, Clone, PartialEq)]
struct Squared(u64);

/// Its handler calls the caller back with `Square` and answers with the result.
#[derive(Message, Debug, Clone, PartialEq)]
struct CallMeBack(u64);

#[derive(Message, Debug, Clone, PartialEq)]
struct Boom;

/// The handler of `Boom`.
fn boom() -> Done {
    panic!("the handler panics")
}

/// A high-water mark of how many handlers run at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    fn enter(&self) -> GaugeGuard<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        GaugeGuard(self)
    }

    fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Both sides of every test: it serves and calls.
#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    rpc_gauge: Arc<Gauge>,
    on_gauge: Arc<Gauge>,
    seen: Arc<Mutex<Vec<u64>>>,
    answers: Arc<Mutex<Vec<io::Result<Squared>>>>,
    gate: Arc<Semaphore>,
}

protocol! {
    Peer speaks Note {
        call_timeout = 1 s,
        max_calls = 1000,
        on Note::Seq { n, pause } => {
            let _running = self.on_gauge.enter();
            tokio::time::sleep(Duration::from_millis(pause)).await;
            self.seen.lock().unwrap().push(n);
        }
        on Note::Ask(n) from addr => {
            // over the connection this message came on, from inside its handler
            let answer = self.call(addr, Square(n)).await;
            self.answers.lock().unwrap().push(answer);
        }
        rpc Nap(ms) -> Done => {
            let _running = self.rpc_gauge.enter();
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Done(ms)
        }
        rpc Gated -> Done => {
            let _running = self.rpc_gauge.enter();
            let _pass = self.gate.acquire().await.unwrap();
            Done(0)
        }
        rpc Square(n) -> Squared => Squared(n * n),
        rpc CallMeBack(n) from addr -> Squared => match self.call(addr, Square(n)).await {
            Ok(squared) => squared,
            Err(e) => panic!("the call back failed: {e}"),
        },
        rpc Boom -> Done => boom(),
    }
}

/// A second declaration with a smaller `max_calls`, and a longer `call_timeout`.
#[pea2pea::node]
#[derive(Clone)]
struct Strict {
    node: Node,
    gate: Arc<Semaphore>,
}

protocol! {
    Strict speaks Note {
        name = "strict",
        max_calls = 2,
        on _ => {},
        rpc Gated -> Done => {
            let _pass = self.gate.acquire().await.unwrap();
            Done(0)
        }
    }
}

/// Its caller.
#[pea2pea::node]
#[derive(Clone)]
struct StrictCaller {
    node: Node,
}

protocol! {
    StrictCaller speaks Note {
        name = "strict",
        on _ => {},
        rpc Gated -> Done,
    }
}

fn peer(name: &str) -> Peer {
    Peer {
        node: Node::new(Config {
            name: Some(name.into()),
            ..Config::loopback()
        }),
        rpc_gauge: Default::default(),
        on_gauge: Default::default(),
        seen: Default::default(),
        answers: Default::default(),
        gate: Arc::new(Semaphore::new(0)),
    }
}

/// Two started peers, `a` connected to `b`; returns `b`'s address.
async fn pair() -> (Peer, Peer, SocketAddr) {
    let (a, b) = (peer("a"), peer("b"));
    a.start().await.unwrap();
    let b_addr = b.start().await.unwrap();
    a.node().connect(b_addr).await.unwrap();
    wait_until_10s("b to register a", || b.node().num_connected() == 1).await;
    (a, b, b_addr)
}

async fn shut_down(peers: &[&Peer]) {
    for p in peers {
        p.node().shut_down().await;
    }
}

// DSL-07: 1000 concurrent calls whose handlers sleep 0 to 50 ms all complete, and the
// handlers ran side by side (the gauge's high-water mark), not one after another.
#[tokio::test]
async fn dsl_07_a_thousand_slow_handlers_run_side_by_side() {
    let (a, b, b_addr) = pair().await;
    let calls: Vec<_> = (0..1000u64)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { (i, a.call(b_addr, Nap(i % 51)).await) })
        })
        .collect();
    for call in calls {
        let (i, answer) = bounded(Duration::from_secs(30), "a call", call)
            .await
            .unwrap();
        assert_eq!(answer.unwrap(), Done(i % 51));
    }
    let peak = b.rpc_gauge.peak();
    println!("at most {peak} handlers ran at once");
    assert!(peak > 1, "the handlers ran one at a time");
    assert_eq!(dsl::calls_in_flight(a.node()), 0);
    wait_until_10s("the handlers' tasks to end", || {
        dsl::requests_being_served(b.node()) == 0
    })
    .await;
    shut_down(&[&a, &b]).await;
}

// DSL-08: a handler can call its caller back over the same connection: the reader routes the
// answer while the handler waits. Both kinds: an rpc handler, and an `on` handler.
#[tokio::test]
async fn dsl_08_a_handler_calls_its_caller_back() {
    let (a, b, b_addr) = pair().await;
    // a calls b; b's handler calls a while a's call waits for it
    let answer = bounded(
        Duration::from_secs(10),
        "a call whose handler calls back",
        a.call(b_addr, CallMeBack(6)),
    )
    .await;
    assert_eq!(answer.unwrap(), Squared(36));

    // a message whose `on` handler calls its sender
    a.send(b_addr, Note::Ask(7)).await.unwrap();
    wait_until_10s("b's on handler to get its answer", || {
        !b.answers.lock().unwrap().is_empty()
    })
    .await;
    let answer = b.answers.lock().unwrap().pop().unwrap();
    assert_eq!(answer.unwrap(), Squared(49));
    shut_down(&[&a, &b]).await;
}

// DSL-09: beyond `max_calls` requests of one peer being served, the next one is refused at
// once with an error answer that the caller sees, and counted; the others complete.
#[tokio::test]
async fn dsl_09_max_calls_overflow_is_refused_and_counted() {
    let server = Strict {
        node: Node::new(Config::loopback()),
        gate: Arc::new(Semaphore::new(0)),
    };
    let caller = StrictCaller {
        node: Node::new(Config::loopback()),
    };
    let server_addr = server.start().await.unwrap();
    caller.enable_protocols().await;
    caller.node().connect(server_addr).await.unwrap();

    let held: Vec<_> = (0..2)
        .map(|_| {
            let caller = caller.clone();
            tokio::spawn(async move { caller.call(server_addr, Gated).await })
        })
        .collect();
    wait_until_10s("two requests to be served", || {
        dsl::requests_being_served(server.node()) == 2
    })
    .await;
    let err = caller.call(server_addr, Gated).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other, "{err}");
    assert!(err.to_string().contains("busy"), "{err}");
    assert_eq!(dsl::requests_refused(server.node()), 1);

    server.gate.add_permits(2);
    for call in held {
        let answer = bounded(Duration::from_secs(10), "a held call", call).await;
        assert_eq!(answer.unwrap().unwrap(), Done(0));
    }
    caller.node().shut_down().await;
    server.node().shut_down().await;
}

// DSL-10: a handler that does not return does not make an unrelated call on the same
// connection time out.
#[tokio::test]
async fn dsl_10_a_slow_handler_does_not_delay_other_calls() {
    let (a, b, b_addr) = pair().await;
    let stuck = {
        let a = a.clone();
        tokio::spawn(async move { a.call(b_addr, Gated).await })
    };
    wait_until_10s("the gated request to be served", || {
        dsl::requests_being_served(b.node()) == 1
    })
    .await;
    // the call timeout is 1 s; the gated handler never returns before the gate opens
    for n in 0..10 {
        assert_eq!(a.call(b_addr, Square(n)).await.unwrap(), Squared(n * n));
    }
    b.gate.add_permits(1);
    assert_eq!(stuck.await.unwrap().unwrap(), Done(0));
    shut_down(&[&a, &b]).await;
}

// DSL-11: in a protocol with rpcs, a connection's `on` handlers still run one at a time, in
// the order the messages came, beside its rpc handlers.
#[tokio::test]
async fn dsl_11_on_handlers_keep_their_order() {
    let (a, b, b_addr) = pair().await;
    let calls: Vec<_> = (0..50u64)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { a.call(b_addr, Nap(i % 5)).await })
        })
        .collect();
    for n in 0..200u64 {
        a.send(b_addr, Note::Seq { n, pause: n % 3 }).await.unwrap();
    }
    wait_until_10s("b to handle every message", || {
        b.seen.lock().unwrap().len() == 200
    })
    .await;
    assert_eq!(*b.seen.lock().unwrap(), (0..200).collect::<Vec<_>>());
    assert_eq!(b.on_gauge.peak(), 1, "two on handlers ran at once");
    for call in calls {
        call.await.unwrap().unwrap();
    }
    shut_down(&[&a, &b]).await;
}

// DSL-12: a panic in an rpc handler disconnects that peer only (its call ends with
// `ConnectionAborted`); the node lives on and serves the others.
#[tokio::test]
async fn dsl_12_a_panicking_handler_disconnects_its_peer_only() {
    let (a, b, b_addr) = pair().await;
    let c = peer("c");
    c.enable_protocols().await;
    c.node().connect(b_addr).await.unwrap();

    let err = a.call(b_addr, Boom).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
    wait_until_10s("b to drop a", || b.node().num_connected() == 1).await;
    assert_eq!(c.call(b_addr, Square(5)).await.unwrap(), Squared(25));
    shut_down(&[&a, &b, &c]).await;
}
