//! A publish/subscribe hub: subscribers name a topic, a publisher sends items to the hub, and
//! the hub relays each item to the topic's subscribers with `send_to_many`. One subscriber is
//! slow (it sleeps 1 ms per item). With the default policy nothing is lost: every subscriber,
//! the slow one included, gets every item in order, and the slow one sets the pace, which
//! reaches the publisher as backpressure through its `send(..).await`. No retry loop, no
//! sleep, no oversized queue: the sends wait for room themselves.
//!
//! ```text
//! cargo run --release --example pubsub -- [--items N] [--subscribers S] [--when-full wait|drop|disconnect]
//! ```
//!
//! `--when-full drop` relays with `send_to_many_with(.., WhenFull::Drop)` instead: the hub
//! never waits, the slow subscriber misses items (a fast one may too, in a burst), and the
//! counts say how many; `disconnect` hangs up on a subscriber whose queue is full. The run
//! prints what each subscriber received and what the hub's reports and counters say.

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    Config, Message, Node, Pea2Pea,
    dsl::{self, SendOutcome, WhenFull},
    protocol,
};
use pea2pea_examples::{Args, wait_until};

// ---- the protocol ----

#[derive(Message, Debug, Clone)]
enum PubSub {
    /// A subscriber's first message: who it is, and what it wants.
    Subscribe { name: String, topic: String },
    /// From a publisher to the hub.
    Publish {
        topic: String,
        seq: u64,
        body: Bytes,
    },
    /// From the hub to each subscriber of the topic.
    Item {
        topic: String,
        seq: u64,
        body: Bytes,
    },
}

// ---- the hub ----

#[pea2pea::node]
#[derive(Clone)]
struct Hub {
    node: Node,
    when_full: WhenFull,
    /// Subscribers by topic, with their names.
    topics: Arc<Mutex<HashMap<String, HashMap<SocketAddr, String>>>>,
    /// What the hub's reports said, per subscriber name.
    outcomes: Arc<Mutex<HashMap<String, Outcomes>>>,
}

/// How many items went each way, for one subscriber.
#[derive(Default, Debug, Clone, Copy)]
struct Outcomes {
    queued: u64,
    dropped: u64,
    disconnected: u64,
    failed: u64,
}

protocol! {
    Hub speaks PubSub over length_delimited(max_frame = 64 KiB) {
        // room for a burst of items per subscriber (256 x 4 KiB = 1 MiB at most)
        write_queue = 256,
        on PubSub::Subscribe { name, topic } from addr => {
            self.topics.lock().unwrap().entry(topic).or_default().insert(addr, name);
        }
        on PubSub::Publish { topic, seq, body } => self.relay(topic, seq, body).await,
        on PubSub::Item { .. } => {}, // only the hub sends items
        on_disconnect(addr) => {
            for subscribers in self.topics.lock().unwrap().values_mut() {
                subscribers.remove(&addr);
            }
        }
    }
}

impl Hub {
    /// Sends the item to every subscriber of its topic, as the hub's policy says.
    async fn relay(&self, topic: String, seq: u64, body: Bytes) {
        let subscribers = self.topics.lock().unwrap().get(&topic).cloned();
        let Some(subscribers) = subscribers else {
            return;
        };
        let item = PubSub::Item { topic, seq, body };
        let addrs = subscribers.keys().copied();
        let report = self.send_to_many_with(addrs, &item, self.when_full).await;
        let mut outcomes = self.outcomes.lock().unwrap();
        for (addr, outcome) in report {
            let counts = outcomes.entry(subscribers[&addr].clone()).or_default();
            match outcome {
                SendOutcome::Queued => counts.queued += 1,
                SendOutcome::Dropped => counts.dropped += 1,
                SendOutcome::Disconnected => counts.disconnected += 1,
                SendOutcome::Failed(_) => counts.failed += 1,
            }
        }
    }
}

// ---- a subscriber ----

#[pea2pea::node]
#[derive(Clone)]
struct Subscriber {
    node: Node,
    name: String,
    /// Sleeps this long per item: a subscriber that cannot keep up.
    pause: Option<Duration>,
    received: Arc<AtomicU64>,
    /// Items that arrived after a later one (there should be none).
    out_of_order: Arc<AtomicU64>,
    next: Arc<AtomicU64>,
}

protocol! {
    Subscriber speaks PubSub over length_delimited(max_frame = 64 KiB) {
        on PubSub::Item { seq, .. } => {
            if seq < self.next.load(Relaxed) {
                self.out_of_order.fetch_add(1, Relaxed);
            }
            self.next.store(seq + 1, Relaxed);
            self.received.fetch_add(1, Relaxed);
            if let Some(pause) = self.pause {
                tokio::time::sleep(pause).await;
            }
        }
        on _ => {}, // subscribers only read items
    }
}

// ---- the publisher: it only sends ----

#[pea2pea::node]
#[derive(Clone)]
struct Publisher {
    node: Node,
}

protocol! {
    Publisher writes PubSub over length_delimited(max_frame = 64 KiB) {}
}

fn config(name: &str) -> Config {
    // loopback: every subscriber dials the hub from 127.0.0.1
    Config {
        name: Some(name.into()),
        ..Config::loopback()
    }
}

const TOPIC: &str = "prices";

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let usage = "pubsub [--items N] [--subscribers S] [--when-full wait|drop|disconnect]";
    let args = Args::parse_or_exit(&["items", "subscribers", "when-full"], usage);
    let items: u64 = args.get("items", 2000);
    let subscribers: usize = args.get("subscribers", 6).max(1);
    let when_full = match args.get_str("when-full", "wait") {
        "wait" => WhenFull::Wait,
        "drop" => WhenFull::Drop,
        "disconnect" => WhenFull::Disconnect,
        other => {
            eprintln!("unknown --when-full {other}\nusage: {usage}");
            return ExitCode::FAILURE;
        }
    };
    match run(items, subscribers, when_full).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("pubsub failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(items: u64, subscribers: usize, when_full: WhenFull) -> io::Result<bool> {
    println!(
        "pubsub: {items} items of 4 KiB to {subscribers} subscribers (sub-0 sleeps 1 ms per item), when full: {when_full:?}"
    );
    let hub = Hub {
        node: Node::new(config("hub")),
        when_full,
        topics: Default::default(),
        outcomes: Default::default(),
    };
    let hub_addr = hub.start().await?;

    let mut subs = Vec::new();
    for i in 0..subscribers {
        let name = format!("sub-{i}");
        let sub = Subscriber {
            node: Node::new(config(&name)),
            pause: (i == 0).then_some(Duration::from_millis(1)),
            name,
            received: Default::default(),
            out_of_order: Default::default(),
            next: Default::default(),
        };
        sub.enable_protocols().await;
        sub.node().connect(hub_addr).await?;
        let subscribe = PubSub::Subscribe {
            name: sub.name.clone(),
            topic: TOPIC.into(),
        };
        sub.send(hub_addr, subscribe).await?;
        subs.push(sub);
    }
    // the hub has read every subscription before it reads the publisher's first item
    let subscribed = wait_until(Duration::from_secs(5), || {
        hub.topics.lock().unwrap().get(TOPIC).map_or(0, |s| s.len()) == subscribers
    })
    .await;
    if !subscribed {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the subscriptions did not reach the hub",
        ));
    }

    let publisher = Publisher {
        node: Node::new(config("publisher")),
    };
    publisher.enable_protocols().await;
    publisher.node().connect(hub_addr).await?;
    let started = Instant::now();
    let body = Bytes::from(vec![0x42; 4096]);
    for seq in 0..items {
        let publish = PubSub::Publish {
            topic: TOPIC.into(),
            seq,
            body: body.clone(),
        };
        // waits for room in the queue to the hub, then for the write: the hub's pace
        publisher.send(hub_addr, publish).await?;
    }
    let published = started.elapsed();

    // every subscriber still connected gets what the hub queued for it
    let expected = |sub: &Subscriber| {
        let outcomes = hub.outcomes.lock().unwrap();
        outcomes.get(&sub.name).map_or(0, |o| o.queued)
    };
    let delivered = wait_until(Duration::from_secs(60), || {
        let all_relayed = hub.outcomes.lock().unwrap().values().all(|o| {
            o.queued + o.dropped + o.disconnected + o.failed == items || o.disconnected > 0
        });
        all_relayed
            && subs.iter().all(|sub| {
                sub.node().num_connected() == 0 || sub.received.load(Relaxed) == expected(sub)
            })
    })
    .await;
    let elapsed = started.elapsed();

    println!("published in {published:.2?}, delivered in {elapsed:.2?}");
    let mut lossless = true;
    for sub in &subs {
        let outcomes = hub
            .outcomes
            .lock()
            .unwrap()
            .get(&sub.name)
            .copied()
            .unwrap_or_default();
        let received = sub.received.load(Relaxed);
        let out_of_order = sub.out_of_order.load(Relaxed);
        lossless &= received == items && out_of_order == 0;
        println!(
            "  {:<6} received {received:>6} of {items}, {out_of_order} out of order  \
             (hub: {} queued, {} dropped, {} disconnected, {} failed){}",
            sub.name,
            outcomes.queued,
            outcomes.dropped,
            outcomes.disconnected,
            outcomes.failed,
            if sub.pause.is_some() { "  <- slow" } else { "" },
        );
    }
    println!(
        "hub counters: messages_dropped {}, slow_peers_disconnected {}",
        dsl::messages_dropped(hub.node()),
        dsl::slow_peers_disconnected(hub.node())
    );

    publisher.node().shut_down().await;
    for sub in &subs {
        sub.node().shut_down().await;
    }
    hub.node().shut_down().await;

    if !delivered {
        println!("not everything queued was delivered within 60 s");
        return Ok(false);
    }
    // with the default policy, nothing may be lost; with the others, losses are the point
    if when_full == WhenFull::Wait && !lossless {
        println!("items were lost under WhenFull::Wait");
        return Ok(false);
    }
    println!(
        "every subscriber got {}",
        if lossless {
            "every item, in order"
        } else {
            "what the hub's reports say"
        }
    );
    Ok(true)
}
