//! The same workloads through a `protocol!` node and through hand-written trait impls with the
//! same message type, codec and settings, alternating in one run: what the DSL costs.
//!
//! ```text
//! cargo bench -p pea2pea-benches --bench dsl
//! ```

use std::{
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    Config, ConnectionSide, Encoded, Message, MessageCodec, Node, Outgoing, Pea2Pea, protocol,
    protocols::{Reading, Writing},
};
use pea2pea_benches::workloads::{Counter, config};

/// The benchmark's one message.
#[derive(Message)]
enum Load {
    Blob(Bytes),
}

const MAX_FRAME: usize = 1024 * 1024;
const QUEUE: usize = 128;

/// The DSL node.
#[pea2pea::node]
#[derive(Clone)]
struct DslPeer {
    node: Node,
    counter: Arc<Counter>,
}

protocol! {
    DslPeer speaks Load over length_delimited(max_frame = 1 MiB) {
        write_queue = 128,
        on Load::Blob(blob) => self.counter.add(blob.len()),
    }
}

/// The same node, written by hand.
#[derive(Clone)]
struct HandPeer {
    node: Node,
    counter: Arc<Counter>,
}

impl Pea2Pea for HandPeer {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for HandPeer {
    type Message = Load;
    type Codec = MessageCodec<Load>;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
        MessageCodec::new().max_frame_len(MAX_FRAME)
    }

    async fn process_message(&self, _source: SocketAddr, message: Load) {
        let Load::Blob(blob) = message;
        self.counter.add(blob.len());
    }
}

impl Writing for HandPeer {
    const MESSAGE_QUEUE_DEPTH: usize = QUEUE;

    // a message, or one encoded once for many peers: what the DSL node sends too
    type Message = Outgoing<Load>;
    type Codec = MessageCodec<Load>;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
        MessageCodec::new().max_frame_len(MAX_FRAME)
    }
}

/// What the two kinds of node have in common, for the workload.
trait Bench: Clone + Send + Sync + 'static {
    fn make(config: Config) -> Self;
    fn counter(&self) -> &Counter;
    fn base(&self) -> &Node;
    async fn begin(&self) -> SocketAddr;
    fn push(&self, addr: SocketAddr, load: Load) -> io::Result<()>;
    /// Waits for room, then for the write.
    fn push_confirmed(
        &self,
        addr: SocketAddr,
        load: Load,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// The same message to every peer, waiting for room in full queues.
    async fn push_to_many(&self, addrs: &[SocketAddr], load: &Load);
}

impl Bench for DslPeer {
    fn make(config: Config) -> Self {
        Self {
            node: Node::new(config),
            counter: Default::default(),
        }
    }
    fn counter(&self) -> &Counter {
        &self.counter
    }
    fn base(&self) -> &Node {
        &self.node
    }
    async fn begin(&self) -> SocketAddr {
        self.start().await.unwrap()
    }
    fn push(&self, addr: SocketAddr, load: Load) -> io::Result<()> {
        self.send_fast(addr, load)
    }
    async fn push_confirmed(&self, addr: SocketAddr, load: Load) -> io::Result<()> {
        self.send(addr, load).await
    }
    async fn push_to_many(&self, addrs: &[SocketAddr], load: &Load) {
        let report = self.send_to_many(addrs.iter().copied(), load).await;
        assert!(report.all_queued(), "{report:?}");
    }
}

impl Bench for HandPeer {
    fn make(config: Config) -> Self {
        Self {
            node: Node::new(config),
            counter: Default::default(),
        }
    }
    fn counter(&self) -> &Counter {
        &self.counter
    }
    fn base(&self) -> &Node {
        &self.node
    }
    async fn begin(&self) -> SocketAddr {
        self.enable_reading().await;
        self.enable_writing().await;
        self.node.toggle_listener().await.unwrap().unwrap()
    }
    fn push(&self, addr: SocketAddr, load: Load) -> io::Result<()> {
        self.unicast_fast(addr, Outgoing::Message(load))
    }
    async fn push_confirmed(&self, addr: SocketAddr, load: Load) -> io::Result<()> {
        let written = self
            .unicast_when_ready(addr, Outgoing::Message(load))
            .await?;
        written
            .await
            .map_err(|_| io::ErrorKind::ConnectionAborted)?
    }
    async fn push_to_many(&self, addrs: &[SocketAddr], load: &Load) {
        // encode once; queue where there is room, then wait for the full ones in turn
        let encoded = Encoded::new(load);
        let mut full = Vec::new();
        for &addr in addrs {
            match self.unicast_fast(addr, Outgoing::Encoded(encoded.clone())) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::QuotaExceeded => full.push(addr),
                Err(e) => panic!("{e}"),
            }
        }
        for addr in full {
            let sent = self.unicast_when_ready(addr, Outgoing::Encoded(encoded.clone()));
            sent.await.unwrap();
        }
    }
}

/// A sender connected to a receiver, and the receiver's address.
async fn connected_pair<B: Bench>() -> (B, B, SocketAddr) {
    let receiver = B::make(config());
    let addr = receiver.begin().await;
    let sender = B::make(config());
    sender.begin().await;
    sender.base().connect(addr).await.unwrap();
    (sender, receiver, addr)
}

/// One sender streams `count` messages of `size` bytes to one receiver.
async fn stream<B: Bench>(count: usize, size: usize) -> Duration {
    let (sender, receiver, addr) = connected_pair::<B>().await;
    let payload = Bytes::from(vec![7u8; size]);
    let begin = Instant::now();
    let task = {
        let sender = sender.clone();
        tokio::spawn(async move {
            for _ in 0..count {
                let mut refused = 0;
                while let Err(e) = sender.push(addr, Load::Blob(payload.clone())) {
                    assert_eq!(e.kind(), io::ErrorKind::QuotaExceeded, "{e}");
                    refused += 1;
                    if refused > 1 {
                        tokio::task::yield_now().await;
                    }
                }
            }
        })
    };
    receiver.counter().wait_for((count * size) as u64).await;
    let elapsed = begin.elapsed();
    task.await.unwrap();
    sender.base().shut_down().await;
    receiver.base().shut_down().await;
    elapsed
}

/// `senders` tasks each send `count / senders` messages of `size` bytes to one receiver with
/// a confirmed send (wait for room, then for the write), more at once than the queue holds.
async fn confirmed_stream<B: Bench>(senders: usize, count: usize, size: usize) -> Duration {
    let (sender, receiver, addr) = connected_pair::<B>().await;
    let payload = Bytes::from(vec![7u8; size]);
    let begin = Instant::now();
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let (sender, payload) = (sender.clone(), payload.clone());
            tokio::spawn(async move {
                for _ in 0..count / senders {
                    sender
                        .push_confirmed(addr, Load::Blob(payload.clone()))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    receiver
        .counter()
        .wait_for((count / senders * senders * size) as u64)
        .await;
    let elapsed = begin.elapsed();
    for task in tasks {
        task.await.unwrap();
    }
    sender.base().shut_down().await;
    receiver.base().shut_down().await;
    elapsed
}

/// One hub sends `count` messages of `size` bytes, each to all of `peers` receivers.
async fn fan_out<B: Bench>(peers: usize, count: usize, size: usize) -> Duration {
    let hub = B::make(config());
    hub.begin().await;
    let mut receivers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..peers {
        let receiver = B::make(config());
        let addr = receiver.begin().await;
        hub.base().connect(addr).await.unwrap();
        receivers.push(receiver);
        addrs.push(addr);
    }
    let load = Load::Blob(Bytes::from(vec![7u8; size]));
    let begin = Instant::now();
    for _ in 0..count {
        hub.push_to_many(&addrs, &load).await;
    }
    for receiver in &receivers {
        receiver.counter().wait_for((count * size) as u64).await;
    }
    let elapsed = begin.elapsed();
    hub.base().shut_down().await;
    for receiver in &receivers {
        receiver.base().shut_down().await;
    }
    elapsed
}

/// The median of 11 alternating runs of `run` for each kind of node, as a rate.
async fn compare_with<D, H>(
    name: &str,
    unit: &str,
    per_run: f64,
    mut dsl_run: impl FnMut() -> D,
    mut hand_run: impl FnMut() -> H,
) where
    D: Future<Output = Duration>,
    H: Future<Output = Duration>,
{
    let (mut dsl, mut hand) = (Vec::new(), Vec::new());
    for _ in 0..11 {
        dsl.push(per_run / dsl_run().await.as_secs_f64());
        hand.push(per_run / hand_run().await.as_secs_f64());
    }
    for v in [&mut dsl, &mut hand] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let (d, h) = (dsl[dsl.len() / 2], hand[hand.len() / 2]);
    println!("| {name} | {unit} | {d:.2} | {h:.2} | {:.3} |", d / h);
}

async fn compare(name: &str, unit: &str, scale: f64, count: usize, size: usize) {
    compare_with(
        name,
        unit,
        scale * count as f64,
        || stream::<DslPeer>(count, size),
        || stream::<HandPeer>(count, size),
    )
    .await;
}

#[tokio::main]
async fn main() {
    println!("protocol! node vs hand-written impls (medians of 11 alternating runs)\n");
    println!("| workload | unit | protocol! | hand-written | ratio |");
    println!("| --- | --- | ---: | ---: | ---: |");
    compare("small 1->1, 64 B", "Mmsg/s", 1e-6, 300_000, 64).await;
    compare(
        "throughput 1->1, 32 KiB",
        "GiB/s",
        32.0 * 1024.0 / (1u64 << 30) as f64,
        10_000,
        32 * 1024,
    )
    .await;
    // 256 senders share a queue of 128: most sends find it full and wait for room
    let (senders, count) = (256, 100_000);
    compare_with(
        "send(..).await, full queue, 256 senders, 64 B",
        "Mmsg/s",
        1e-6 * count as f64,
        || confirmed_stream::<DslPeer>(senders, count, 64),
        || confirmed_stream::<HandPeer>(senders, count, 64),
    )
    .await;
    let (peers, count) = (10, 20_000);
    compare_with(
        "send_to_many, 10 peers, 64 B",
        "Mmsg/s delivered",
        1e-6 * (peers * count) as f64,
        || fan_out::<DslPeer>(peers, count, 64),
        || fan_out::<HandPeer>(peers, count, 64),
    )
    .await;
}
