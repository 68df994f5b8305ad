//! Typed request/response with the DSL: a key-value store served with `rpc` handlers and
//! called with the generated `call`, beside ordinary one-way messages.
//!
//! ```text
//! cargo run --release --example rpc -- [--calls N] [--clients C]
//! ```
//!
//! The server answers `Put`, `Get` and `Slow` requests and tells the clients that subscribed
//! when a key changes (plain messages, sent with `send_to_many`). Clients connect through the
//! built-in fingerprint handshake, which checks that both sides declare the same messages and
//! rpcs. The run shows single calls, a change notification, a burst of calls from many clients
//! at once, and a call that times out.

use std::{
    collections::{HashMap, HashSet},
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use pea2pea::{Config, Message, Node, Pea2Pea, dsl::WhenFull, protocol};
use pea2pea_examples::Args;
use tokio::{sync::mpsc, task::JoinSet};

// ---- the requests and their responses ----

#[derive(Message, Debug)]
struct Put {
    #[message(max_len = 256)]
    key: String,
    #[message(max_len = 4096)]
    value: String,
}

#[derive(Message, Debug, PartialEq)]
struct Stored {
    previous: Option<String>,
}

#[derive(Message, Debug)]
struct Get(#[message(max_len = 256)] String);

#[derive(Message, Debug, PartialEq)]
struct Found(Option<String>);

/// Answers after the given number of milliseconds (to show a call timing out).
#[derive(Message, Debug)]
struct Slow(u64);

#[derive(Message, Debug)]
struct Done;

/// One-way messages, beside the calls.
#[derive(Message, Debug)]
enum Event {
    /// Client to server: tell me about every change.
    Subscribe,
    /// Server to subscribers: `by` changed `key`.
    Changed { key: String, by: SocketAddr },
}

// ---- the server: every rpc has a handler ----

#[pea2pea::node]
#[derive(Clone)]
struct Store {
    node: Node,
    map: Arc<Mutex<HashMap<String, String>>>,
    subscribers: Arc<Mutex<HashSet<SocketAddr>>>,
    /// Change notifications that found a subscriber's queue full (they are not retried).
    dropped: Arc<AtomicUsize>,
}

protocol! {
    Store speaks Event {
        name = "kv",
        handshake = fingerprint,
        on Event::Subscribe from client => { self.subscribers.lock().unwrap().insert(client); }
        on Event::Changed { .. } => {} // for clients only
        on_disconnect(client) => { self.subscribers.lock().unwrap().remove(&client); }
        rpc Put { key, value } from client -> Stored => {
            let previous = self.map.lock().unwrap().insert(key.clone(), value);
            // tell the subscribers, without waiting for one whose queue is full: a slow
            // subscriber misses news (counted) rather than holding up this call
            let others: Vec<_> = self.subscribers.lock().unwrap().iter().copied().filter(|&a| a != client).collect();
            let event = Event::Changed { key, by: client };
            let sent = self.send_to_many_with(others, &event, WhenFull::Drop).await;
            self.dropped.fetch_add(sent.len() - sent.queued(), Relaxed);
            Stored { previous }
        }
        rpc Get(key) -> Found => Found(self.map.lock().unwrap().get(&key).cloned()),
        rpc Slow(ms) -> Done => {
            // a handler holds up its connection's later messages while it runs
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Done
        }
    }
}

// ---- the client: the same rpcs, call-only ----

#[pea2pea::node]
#[derive(Clone)]
struct Client {
    node: Node,
    events: mpsc::UnboundedSender<String>,
}

protocol! {
    Client speaks Event {
        name = "kv",
        handshake = fingerprint,
        call_timeout = 1 s,
        on Event::Subscribe => {} // for servers only
        on Event::Changed { key, by } => { let _ = self.events.send(format!("{by} changed {key:?}")); }
        rpc Put -> Stored,
        rpc Get -> Found,
        rpc Slow -> Done,
    }
}

fn config(name: &str) -> Config {
    Config {
        name: Some(name.into()),
        ..Config::loopback() // the clients share 127.0.0.1
    }
}

async fn client(
    name: &str,
    server: SocketAddr,
) -> io::Result<(Client, mpsc::UnboundedReceiver<String>)> {
    let (events, inbox) = mpsc::unbounded_channel();
    let client = Client {
        node: Node::new(config(name)),
        events,
    };
    client.enable_protocols().await; // a client only dials
    client.node().connect(server).await?;
    Ok((client, inbox))
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger_at("error");
    let args = Args::parse_or_exit(&["calls", "clients"], "rpc [--calls N] [--clients C]");
    let calls: usize = args.get("calls", 20_000);
    let clients: usize = args.get("clients", 16).clamp(1, 64);
    match run(calls, clients).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("rpc example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(calls: usize, clients: usize) -> io::Result<bool> {
    let store = Store {
        node: Node::new(config("store")),
        map: Default::default(),
        subscribers: Default::default(),
        dropped: Default::default(),
    };
    let server = store.start().await?;
    let (alice, _) = client("alice", server).await?;
    let (bob, mut bob_events) = client("bob", server).await?;
    println!("a key-value store on {server}; alice and bob connected");
    bob.send(server, Event::Subscribe).await?;
    // the server handles bob's message in bob's connection, alice's calls in hers: wait
    pea2pea_examples::wait_until(Duration::from_secs(5), || {
        !store.subscribers.lock().unwrap().is_empty()
    })
    .await;
    println!("bob subscribed to changes");

    // single calls: the types say what comes back
    let stored = alice
        .call(
            server,
            Put {
                key: "greeting".into(),
                value: "hello".into(),
            },
        )
        .await?;
    println!("alice: Put greeting=hello  -> {stored:?}");
    let found = bob.call(server, Get("greeting".into())).await?;
    println!("bob:   Get greeting        -> {found:?}");
    let missing = bob.call(server, Get("nothing".into())).await?;
    println!("bob:   Get nothing         -> {missing:?}");
    let event = tokio::time::timeout(Duration::from_secs(5), bob_events.recv()).await;
    let notified = matches!(&event, Ok(Some(_)));
    if let Ok(Some(event)) = event {
        println!("bob was told: {event}");
    }

    // a burst: `clients` more clients at once, each calling in turn
    let mut burst = Vec::with_capacity(clients);
    for c in 0..clients {
        burst.push(client(&format!("client{c}"), server).await?.0);
    }
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (c, client) in burst.iter().cloned().enumerate() {
        let share = calls / clients + usize::from(c < calls % clients);
        tasks.spawn(async move {
            let mut slowest = Duration::ZERO;
            for i in 0..share {
                let (key, value) = (format!("key-{c}-{i}"), format!("value {i}"));
                let pair_started = Instant::now();
                client
                    .call(
                        server,
                        Put {
                            key: key.clone(),
                            value: value.clone(),
                        },
                    )
                    .await?;
                let found = client.call(server, Get(key)).await?;
                if found != Found(Some(value)) {
                    return Err(io::Error::other(format!("wrong answer {found:?}")));
                }
                slowest = slowest.max(pair_started.elapsed());
            }
            Ok::<_, io::Error>(slowest)
        });
    }
    let mut slowest = Duration::ZERO;
    while let Some(result) = tasks.join_next().await {
        slowest = slowest.max(result.map_err(io::Error::other)??);
    }
    let elapsed = started.elapsed();
    let total = 2 * calls;
    println!(
        "{total} calls ({calls} Put + Get pairs from {clients} clients) in {elapsed:.2?}: \
         {:.0} calls/s, slowest pair {slowest:.2?}",
        total as f64 / elapsed.as_secs_f64()
    );
    let size = store.map.lock().unwrap().len();
    // bob is told of every change, unless his queue on the server was full
    let mut told = 0;
    while let Ok(Some(_)) =
        tokio::time::timeout(Duration::from_millis(500), bob_events.recv()).await
    {
        told += 1;
    }
    println!(
        "bob was told of {told} of those {calls} changes; {} were dropped, his queue on the \
         server being full",
        store.dropped.load(Relaxed)
    );

    // a call that outlives the client's call_timeout (1 s) fails with TimedOut
    let slow = bob.call(server, Slow(1_500)).await;
    match &slow {
        Err(e) => println!("bob:   Slow(1500 ms)       -> {:?}: {e}", e.kind()),
        Ok(done) => println!("bob:   Slow(1500 ms)       -> {done:?} (expected a timeout)"),
    }

    for client in burst.iter().chain([&alice, &bob]) {
        client.node().shut_down().await;
    }
    store.node().shut_down().await;
    Ok(stored == Stored { previous: None }
        && found == Found(Some("hello".into()))
        && missing == Found(None)
        && notified
        && size == calls + 1
        && matches!(slow, Err(e) if e.kind() == io::ErrorKind::TimedOut))
}
