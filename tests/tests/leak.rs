//! SHUT-08: no heap growth per connection.
//!
//! This file has its own test binary because it installs a counting global allocator; it holds
//! a single test, so nothing else allocates concurrently (the test runs on a current-thread
//! runtime, on the test's own thread).

use std::{
    alloc::System,
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use bytes::Bytes;
use pea2pea::{
    Config, Connection, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};
use pea2pea_tests::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::time::sleep;

/// Counts every allocation, so that the test can read the live heap (no `unsafe` of our own:
/// the counting allocator comes from `stats_alloc`).
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// All five protocols: a no-op handshake and hooks, counting Reading, Writing.
#[derive(Clone)]
struct Full {
    node: Node,
    processed: Arc<AtomicUsize>,
    disconnects: Arc<AtomicUsize>,
    liveness: Arc<()>,
}

impl Full {
    async fn new() -> Self {
        let node = Self {
            node: Node::new(Config {
                max_connections: 10,
                ..test_config()
            }),
            processed: Default::default(),
            disconnects: Default::default(),
            liveness: Default::default(),
        };
        node.enable_handshake().await;
        node.enable_reading().await;
        node.enable_writing().await;
        node.enable_on_connect().await;
        node.enable_on_disconnect().await;
        node
    }
}

impl Pea2Pea for Full {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Handshake for Full {
    async fn perform_handshake(&self, conn: Connection) -> io::Result<Connection> {
        Ok(conn)
    }
}

impl Reading for Full {
    // keep the per-connection buffers small, so that a leak of one stands out less than the
    // rest of the connection's state would; any growth fails the test anyway
    const INITIAL_BUFFER_SIZE: usize = 1024;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {
        self.processed.fetch_add(1, SeqCst);
    }
}

impl Writing for Full {
    const INITIAL_BUFFER_SIZE: usize = 1024;
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

impl OnConnect for Full {
    async fn on_connect(&self, _: SocketAddr) {}
}

impl OnDisconnect for Full {
    async fn on_disconnect(&self, _: SocketAddr, _: DisconnectOrigin) {
        self.disconnects.fetch_add(1, SeqCst);
    }
}

const CYCLES: usize = 100;
const MEASURE_AFTER: usize = 33;
const MESSAGES: usize = 10;

/// One cycle: a temporary node connects, 10 messages go each way, the temporary node shuts
/// down, and we wait until the long-lived node has let go of everything.
async fn cycle(hub: &Full, hub_addr: SocketAddr, round: usize) {
    let temp = Full::new().await;
    temp.node.connect(hub_addr).await.unwrap();
    wait_for_connections(&hub.node, 1).await;
    let temp_addr = hub.node.connected_addrs()[0];
    let payload = Bytes::from_static(b"0123456789abcdef");
    for _ in 0..MESSAGES {
        send_dm(&temp, hub_addr, payload.clone()).await.unwrap();
        send_dm(hub, temp_addr, payload.clone()).await.unwrap();
    }
    let expected = (round + 1) * MESSAGES;
    wait_until(Duration::from_secs(1), || {
        hub.processed.load(SeqCst) == expected && temp.processed.load(SeqCst) == MESSAGES
    })
    .await;

    temp.node.shut_down().await;
    let liveness = temp.liveness.clone();
    drop(temp);
    wait_for_connections(&hub.node, 0).await;
    wait_until(Duration::from_secs(1), || {
        hub.disconnects.load(SeqCst) == round + 1 && Arc::strong_count(&liveness) == 1
    })
    .await;
}

/// The live heap once the runtime has had a moment to reap finished and aborted tasks.
async fn settled_heap() -> isize {
    sleep(Duration::from_millis(100)).await;
    live_bytes(ALLOCATOR.stats())
}

// SHUT-08: 100 connect/exchange/shutdown cycles against one long-lived node leave the heap
// exactly as it was after cycle 33: nothing is retained per connection. The first 33 cycles
// let every lazily grown structure (maps, channel blocks, runtime internals) reach its steady
// size; from then on the expected growth is 0 bytes, and the test allows none.
#[tokio::test]
async fn shut_08_no_heap_growth_per_connection() {
    let hub = Full::new().await;
    let hub_addr = start_listening(&hub.node).await;

    let mut baseline = None;
    for round in 0..CYCLES {
        cycle(&hub, hub_addr, round).await;
        if round + 1 == MEASURE_AFTER {
            baseline = Some(settled_heap().await);
        }
    }
    let end = settled_heap().await;
    let baseline = baseline.unwrap();
    let growth = end - baseline;
    assert!(
        growth <= 0,
        "the heap grew by {growth} bytes over {} cycles ({} per cycle)",
        CYCLES - MEASURE_AFTER,
        growth as f64 / (CYCLES - MEASURE_AFTER) as f64
    );
    hub.node.shut_down().await;
}
