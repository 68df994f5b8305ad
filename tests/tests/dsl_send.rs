//! The DSL's sends under load: `send(..).await` waits for room and then for the write
//! (DSL-01, DSL-02), and `send_to_many` treats a full peer as its policy says, without losing
//! anything for the peers that keep up (DSL-03 .. DSL-05).

use std::{
    io::ErrorKind,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering::SeqCst},
    },
    time::Duration,
};

use bytes::Bytes;
use pea2pea::{
    Message, Node, Pea2Pea,
    dsl::{self, SendOutcome, WhenFull},
    protocol,
};
use pea2pea_tests::{raw, shut_down_all, test_config, wait_until_desc};
use tokio::time::timeout;

const SEC: Duration = Duration::from_secs(1);

#[derive(Message, Debug, Clone)]
enum Feed {
    Item { seq: u32, body: Bytes },
}

/// What a subscriber saw of the feed.
#[derive(Default)]
struct Seen {
    received: AtomicU64,
    /// The last sequence number, -1 before the first.
    last: AtomicI64,
    /// Items that came after a later one.
    out_of_order: AtomicU64,
    /// Items that came after a hole in the sequence.
    after_gap: AtomicU64,
}

impl Seen {
    fn new() -> Arc<Self> {
        let seen = Self::default();
        seen.last.store(-1, SeqCst);
        Arc::new(seen)
    }

    fn record(&self, seq: u32) {
        let last = self.last.swap(seq.into(), SeqCst);
        if i64::from(seq) <= last {
            self.out_of_order.fetch_add(1, SeqCst);
        } else if i64::from(seq) > last + 1 {
            self.after_gap.fetch_add(1, SeqCst);
        }
        self.received.fetch_add(1, SeqCst);
    }

    fn received(&self) -> u64 {
        self.received.load(SeqCst)
    }

    /// Whether what arrived is a gap-free, in-order prefix of the feed.
    fn in_order_without_gaps(&self) -> bool {
        self.out_of_order.load(SeqCst) == 0 && self.after_gap.load(SeqCst) == 0
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Sub {
    node: Node,
    seen: Arc<Seen>,
    /// Sleeps this long after each item (a subscriber that cannot keep up).
    pause: Option<Duration>,
}

protocol! {
    Sub speaks Feed {
        on Feed::Item { seq, .. } => {
            self.seen.record(seq);
            if let Some(pause) = self.pause {
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Hub {
    node: Node,
}

protocol! {
    Hub speaks Feed {
        on _ => {},
    }
}

const ITEMS: u32 = 20_000;
const SUBS: usize = 10;

/// A hub connected to ten subscribers (the first one slow: 1 ms per item), each dialled from
/// a socket with a 4 KiB send buffer, so that a peer that falls behind fills its queue soon.
async fn hub_and_subs() -> (Hub, Vec<Sub>, Vec<SocketAddr>) {
    let hub = Hub {
        node: Node::new(test_config()),
    };
    hub.enable_protocols().await;
    let (mut subs, mut addrs) = (Vec::new(), Vec::new());
    for i in 0..SUBS {
        let sub = Sub {
            node: Node::new(test_config()),
            seen: Seen::new(),
            pause: (i == 0).then_some(Duration::from_millis(1)),
        };
        let addr = sub.start().await.unwrap();
        hub.node()
            .connect_using_socket(addr, raw::small_send_buffer_socket())
            .await
            .unwrap();
        subs.push(sub);
        addrs.push(addr);
    }
    (hub, subs, addrs)
}

/// Per subscriber, how many items each outcome had.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    queued: u64,
    dropped: u64,
    disconnected: u64,
    failed: u64,
}

/// Sends the whole feed with `when_full` (`None`: the common call, `send_to_many`), like a
/// real source would: in bursts of 20 items a clock tick apart (a pace the fast subscribers
/// can follow, and the slow one cannot); returns the tally per subscriber.
async fn fan_out(hub: &Hub, addrs: &[SocketAddr], when_full: Option<WhenFull>) -> Vec<Tally> {
    let mut tallies = vec![Tally::default(); addrs.len()];
    let body = Bytes::from(vec![0x5a; 512]);
    for seq in 0..ITEMS {
        if seq % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let item = Feed::Item {
            seq,
            body: body.clone(),
        };
        let peers = addrs.iter().copied();
        let report = match when_full {
            None => hub.send_to_many(peers, &item).await,
            Some(when_full) => hub.send_to_many_with(peers, &item, when_full).await,
        };
        for (tally, (_, outcome)) in tallies.iter_mut().zip(report) {
            match outcome {
                SendOutcome::Queued => tally.queued += 1,
                SendOutcome::Dropped => tally.dropped += 1,
                SendOutcome::Disconnected => tally.disconnected += 1,
                SendOutcome::Failed(_) => tally.failed += 1,
            }
        }
    }
    tallies
}

/// Sets up a hub and its subscribers, sends the feed (within `limit`) and waits until every
/// subscriber still connected has what was queued for it.
async fn run_feed(
    when_full: Option<WhenFull>,
    limit: Duration,
) -> (Hub, Vec<Sub>, Vec<SocketAddr>, Vec<Tally>) {
    let (hub, subs, addrs) = hub_and_subs().await;
    let tallies = timeout(limit, fan_out(&hub, &addrs, when_full))
        .await
        .unwrap_or_else(|_| panic!("the feed took more than {limit:?}"));
    wait_for_delivery(&subs, &tallies).await;
    (hub, subs, addrs, tallies)
}

/// Waits until each subscriber has received what was queued for it (all of it, for those
/// still connected).
async fn wait_for_delivery(subs: &[Sub], tallies: &[Tally]) {
    for (i, (sub, tally)) in subs.iter().zip(tallies).enumerate() {
        if tally.disconnected == 0 {
            wait_until_desc(
                60 * SEC,
                &format!("subscriber {i} to get its items"),
                || sub.seen.received() == tally.queued,
            )
            .await;
        }
    }
}

async fn shut_down(hub: &Hub, subs: &[Sub]) {
    let nodes = std::iter::once(hub.node()).chain(subs.iter().map(|s| s.node()));
    shut_down_all(nodes).await;
}

// DSL-03: with the default policy (wait), every subscriber gets every item, in order: the ones
// that keep up and the slow one, which sets the hub's pace. Nothing is dropped or counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsl_03_default_policy_loses_nothing() {
    let (hub, subs, _, tallies) = run_feed(None, 180 * SEC).await;
    for (i, tally) in tallies.iter().enumerate() {
        assert_eq!(tally.queued, u64::from(ITEMS), "subscriber {i}: {tally:?}");
    }
    for (i, sub) in subs.iter().enumerate() {
        assert_eq!(sub.seen.received(), u64::from(ITEMS), "subscriber {i}");
        assert!(sub.seen.in_order_without_gaps(), "subscriber {i}");
    }
    assert_eq!(dsl::messages_dropped(hub.node()), 0);
    assert_eq!(dsl::slow_peers_disconnected(hub.node()), 0);
    shut_down(&hub, &subs).await;
}

// DSL-04: WhenFull::Drop never waits: a subscriber whose queue is full misses the item, the
// report says so, and the node counts it. Every item is accounted for at every subscriber
// (received + dropped = all), what arrives is in order, and the slow one misses items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsl_04_drop_policy_skips_full_peers_and_counts_them() {
    let (hub, subs, _, tallies) = run_feed(Some(WhenFull::Drop), 120 * SEC).await;
    let mut dropped = 0;
    for (i, (sub, tally)) in subs.iter().zip(&tallies).enumerate() {
        assert_eq!(
            tally.failed + tally.disconnected,
            0,
            "subscriber {i}: {tally:?}"
        );
        assert_eq!(
            tally.queued + tally.dropped,
            u64::from(ITEMS),
            "subscriber {i}"
        );
        assert_eq!(sub.seen.received(), tally.queued, "subscriber {i}");
        assert_eq!(sub.seen.out_of_order.load(SeqCst), 0, "subscriber {i}");
        dropped += tally.dropped;
    }
    assert!(tallies[0].dropped > 0, "the slow subscriber missed nothing");
    assert_eq!(dsl::messages_dropped(hub.node()), dropped);
    assert_eq!(dsl::slow_peers_disconnected(hub.node()), 0);
    shut_down(&hub, &subs).await;
}

// DSL-05: WhenFull::Disconnect disconnects a subscriber whose queue is full (counted, once per
// subscriber); it got a gap-free, in-order prefix of the feed. The others (a fast one can also
// fall behind for a moment on a loaded machine, and is then disconnected too) get everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsl_05_disconnect_policy_drops_the_laggard_and_counts_it() {
    let (hub, subs, addrs, tallies) = run_feed(Some(WhenFull::Disconnect), 120 * SEC).await;
    let mut disconnected = 0;
    for (i, (sub, tally)) in subs.iter().zip(&tallies).enumerate() {
        assert_eq!(tally.dropped, 0, "subscriber {i}: {tally:?}");
        assert!(tally.disconnected <= 1, "subscriber {i}: {tally:?}");
        assert!(sub.seen.in_order_without_gaps(), "subscriber {i}");
        if tally.disconnected == 1 {
            disconnected += 1;
            // after its disconnect, it is not connected any more
            assert_eq!(
                tally.queued + tally.disconnected + tally.failed,
                u64::from(ITEMS),
                "subscriber {i}"
            );
            assert!(sub.seen.received() <= tally.queued, "subscriber {i}");
            assert!(!hub.node().is_connected(addrs[i]), "subscriber {i}");
        } else {
            assert_eq!(tally.queued, u64::from(ITEMS), "subscriber {i}: {tally:?}");
        }
    }
    assert_eq!(tallies[0].disconnected, 1, "the slow subscriber was kept");
    assert_eq!(dsl::slow_peers_disconnected(hub.node()), disconnected);
    assert_eq!(dsl::messages_dropped(hub.node()), 0);
    shut_down(&hub, &subs).await;
}

#[pea2pea::node]
#[derive(Clone)]
struct Writer {
    node: Node,
}

protocol! {
    Writer speaks Feed over length_delimited(max_frame = 1 MiB) {
        write_queue = 1,
        write_timeout = 300 ms,
        on _ => {},
    }
}

// DSL-01: eight tasks send(..).await through a queue of one message at the same time: the
// queue is full most of the time, and every send waits for room instead of failing; each
// task's items arrive complete and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsl_01_send_waits_for_room() {
    const TASKS: u32 = 8;
    const EACH: u32 = 500;
    #[pea2pea::node]
    #[derive(Clone)]
    struct Collector {
        node: Node,
        got: Arc<Mutex<Vec<u32>>>,
    }
    protocol! {
        Collector speaks Feed over length_delimited(max_frame = 1 MiB) {
            on Feed::Item { seq, .. } => self.got.lock().unwrap().push(seq),
        }
    }
    let collector = Collector {
        node: Node::new(test_config()),
        got: Default::default(),
    };
    let addr = collector.start().await.unwrap();
    let writer = Writer {
        node: Node::new(test_config()),
    };
    writer.enable_protocols().await;
    writer
        .node()
        .connect_using_socket(addr, raw::small_send_buffer_socket())
        .await
        .unwrap();

    let body = Bytes::from(vec![1u8; 2000]);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (writer, body) = (writer.clone(), body.clone());
            tokio::spawn(async move {
                for n in 0..EACH {
                    let seq = task * EACH + n;
                    let item = Feed::Item {
                        seq,
                        body: body.clone(),
                    };
                    writer.send(addr, item).await.unwrap_or_else(|e| {
                        panic!("send {seq} failed: {e}");
                    });
                }
            })
        })
        .collect();
    for task in tasks {
        timeout(60 * SEC, task)
            .await
            .expect("the senders hung")
            .unwrap();
    }
    wait_until_desc(10 * SEC, "every item to arrive", || {
        collector.got.lock().unwrap().len() == (TASKS * EACH) as usize
    })
    .await;
    let got = collector.got.lock().unwrap().clone();
    for task in 0..TASKS {
        let mine: Vec<u32> = got.iter().copied().filter(|s| s / EACH == task).collect();
        let expected: Vec<u32> = (task * EACH..(task + 1) * EACH).collect();
        assert_eq!(mine, expected, "task {task}'s items");
    }
    shut_down_all([writer.node(), collector.node()]).await;
}

// DSL-02: send(..).await to a peer that never reads fails with TimedOut (the write timeout,
// 300 ms here), and the connection is torn down.
#[tokio::test]
async fn dsl_02_send_to_a_peer_that_never_reads_times_out() {
    let writer = Writer {
        node: Node::new(test_config()),
    };
    writer.enable_protocols().await;
    let listener = raw::small_buffer_listener();
    let addr = listener.local_addr().unwrap();
    writer
        .node()
        .connect_using_socket(addr, raw::small_send_buffer_socket())
        .await
        .unwrap();
    let (_never_read, _) = listener.accept().await.unwrap();

    let body = Bytes::from(vec![1u8; 60_000]);
    let err = timeout(10 * SEC, async {
        for seq in 0.. {
            let item = Feed::Item {
                seq,
                body: body.clone(),
            };
            if let Err(e) = writer.send(addr, item).await {
                return e;
            }
        }
        unreachable!()
    })
    .await
    .expect("send never gave up");
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    wait_until_desc(10 * SEC, "the connection to be torn down", || {
        !writer.node().is_connected(addr)
    })
    .await;
    // and then the peer is simply not connected
    let item = Feed::Item { seq: 0, body };
    let err = writer.send(addr, item).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
    writer.node().shut_down().await;
}
