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
    Config, ConnectionSide, Message, MessageCodec, Node, Pea2Pea, protocol,
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

    type Message = Load;
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
        self.unicast_fast(addr, load)
    }
}

/// One sender streams `count` messages of `size` bytes to one receiver.
async fn stream<B: Bench>(count: usize, size: usize) -> Duration {
    let receiver = B::make(config());
    let addr = receiver.begin().await;
    let sender = B::make(config());
    sender.begin().await;
    sender.base().connect(addr).await.unwrap();
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

async fn compare(name: &str, unit: &str, scale: f64, count: usize, size: usize) {
    let (mut dsl, mut hand) = (Vec::new(), Vec::new());
    for _ in 0..11 {
        dsl.push(scale * count as f64 / stream::<DslPeer>(count, size).await.as_secs_f64());
        hand.push(scale * count as f64 / stream::<HandPeer>(count, size).await.as_secs_f64());
    }
    for v in [&mut dsl, &mut hand] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let (d, h) = (dsl[dsl.len() / 2], hand[hand.len() / 2]);
    println!("| {name} | {unit} | {d:.2} | {h:.2} | {:.3} |", d / h);
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
}
