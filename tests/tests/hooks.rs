//! Hooks (on_connect / on_disconnect): HOOK-01 .. HOOK-13.

use std::{
    collections::HashMap,
    io::ErrorKind,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    Config, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{OnConnect, OnDisconnect, Reading, Writing},
};
use pea2pea_tests::*;
use tokio::{
    net::TcpListener,
    time::{sleep, timeout},
};

const SEC: Duration = Duration::from_secs(1);

/// What a [`Hooked`] node does in its hooks, and what it observed.
#[derive(Default)]
struct HookState {
    // on_connect behaviour
    connect_delay: Mutex<Duration>,
    connect_gate: Mutex<Option<Gate>>,
    greet: AtomicBool,
    disconnect_in_connect: AtomicBool,
    await_inbound: AtomicBool,
    inbound: Gate,
    // on_disconnect behaviour
    disconnect_delay: Mutex<Duration>,
    say_bye: AtomicBool,
    // observations
    connect_started: AtomicUsize,
    connect_done: AtomicUsize,
    connect_results: Mutex<Vec<String>>,
    disconnect_started: AtomicUsize,
    disconnect_done: AtomicUsize,
    origins: Mutex<Vec<(SocketAddr, DisconnectOrigin)>>,
    /// The close reason each `on_disconnect` read.
    reasons: Mutex<Vec<Option<String>>>,
    connected_in_hook: Mutex<Vec<bool>>,
    ticks: AtomicUsize,
    bye_results: Mutex<Vec<(DisconnectOrigin, Result<(), ErrorKind>)>>,
    processed: AtomicUsize,
}

/// A node with all four non-handshake protocols whose hooks are driven by [`HookState`].
/// `ABORTABLE` is OnConnect's constant, `DISC_MS` OnDisconnect's timeout.
#[derive(Clone)]
struct Hooked<const ABORTABLE: bool, const DISC_MS: u64> {
    node: Node,
    s: Arc<HookState>,
}

impl<const A: bool, const D: u64> Hooked<A, D> {
    fn new(config: Config) -> Self {
        Self {
            node: Node::new(config),
            s: Default::default(),
        }
    }

    async fn enable_hooks(&self) {
        self.enable_on_connect().await;
        self.enable_on_disconnect().await;
    }

    async fn enable_all(&self) {
        self.enable_reading().await;
        self.enable_writing().await;
        self.enable_hooks().await;
    }

    fn origins(&self) -> Vec<DisconnectOrigin> {
        self.s
            .origins
            .lock()
            .unwrap()
            .iter()
            .map(|(_, o)| *o)
            .collect()
    }

    fn connect_started(&self) -> usize {
        self.s.connect_started.load(SeqCst)
    }

    fn connect_done(&self) -> usize {
        self.s.connect_done.load(SeqCst)
    }

    fn disconnect_started(&self) -> usize {
        self.s.disconnect_started.load(SeqCst)
    }
}

impl<const A: bool, const D: u64> Pea2Pea for Hooked<A, D> {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl<const A: bool, const D: u64> Reading for Hooked<A, D> {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {
        self.s.processed.fetch_add(1, SeqCst);
        self.s.inbound.open();
    }
}

impl<const A: bool, const D: u64> Writing for Hooked<A, D> {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
}

impl<const A: bool, const D: u64> OnConnect for Hooked<A, D> {
    const ABORTABLE: bool = A;

    async fn on_connect(&self, addr: SocketAddr) {
        self.s.connect_started.fetch_add(1, SeqCst);
        if self.s.greet.load(SeqCst) {
            let res = send_dm(self, addr, Bytes::from_static(b"hello")).await;
            self.s
                .connect_results
                .lock()
                .unwrap()
                .push(format!("{res:?}"));
        }
        if self.s.disconnect_in_connect.load(SeqCst) {
            let res = self.node.disconnect(addr).await;
            self.s
                .connect_results
                .lock()
                .unwrap()
                .push(format!("{res}"));
        }
        if self.s.await_inbound.load(SeqCst) {
            self.s.inbound.wait().await;
        }
        let gate = self.s.connect_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.wait().await;
        }
        let delay = *self.s.connect_delay.lock().unwrap();
        if !delay.is_zero() {
            sleep(delay).await;
        }
        self.s.connect_done.fetch_add(1, SeqCst);
    }
}

impl<const A: bool, const D: u64> OnDisconnect for Hooked<A, D> {
    const TIMEOUT_MS: u64 = D;

    async fn on_disconnect(&self, addr: SocketAddr, origin: DisconnectOrigin) {
        self.s.disconnect_started.fetch_add(1, SeqCst);
        self.s.origins.lock().unwrap().push((addr, origin));
        let reason = self
            .node
            .connection_info(addr)
            .and_then(|i| i.close_reason());
        self.s.reasons.lock().unwrap().push(reason);
        let connected = self.node.is_connected(addr);
        self.s.connected_in_hook.lock().unwrap().push(connected);
        if self.s.say_bye.load(SeqCst) {
            let res = match self.unicast(addr, Bytes::from_static(b"bye")) {
                Err(e) => Err(e.kind()),
                Ok(conf) => match conf.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.kind()),
                    Err(_) => Err(ErrorKind::ConnectionAborted),
                },
            };
            self.s.bye_results.lock().unwrap().push((origin, res));
        }
        // tick while "working", so a test can tell whether the hook is still running
        let delay = *self.s.disconnect_delay.lock().unwrap();
        let start = Instant::now();
        while start.elapsed() < delay {
            self.s.ticks.fetch_add(1, SeqCst);
            sleep(Duration::from_millis(20)).await;
        }
        self.s.disconnect_done.fetch_add(1, SeqCst);
    }
}

type Abortable = Hooked<true, 3000>;
type Detached = Hooked<false, 3000>;

/// A listening reader/writer to connect to.
async fn listening_peer() -> (Peer, SocketAddr) {
    let peer = Peer::new(test_config());
    peer.enable_rw().await;
    let addr = start_listening(&peer.node).await;
    (peer, addr)
}

// HOOK-01: on_connect can unicast to the new peer and await the confirmation.
#[tokio::test]
async fn hook_01_on_connect_can_send() {
    let node = Abortable::new(test_config());
    node.s.greet.store(true, SeqCst);
    node.enable_all().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    wait_until(SEC, || peer.processed() == 1).await;
    assert_eq!(peer.payloads(), vec![Bytes::from_static(b"hello")]);
    assert_eq!(*node.s.connect_results.lock().unwrap(), vec!["Ok(())"]);
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-01: on_connect can disconnect the new peer.
#[tokio::test]
async fn hook_01_on_connect_can_disconnect() {
    let node = Detached::new(test_config());
    node.s.disconnect_in_connect.store(true, SeqCst);
    node.enable_all().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    wait_until(SEC, || node.connect_done() == 1).await;
    assert_eq!(*node.s.connect_results.lock().unwrap(), vec!["true"]);
    assert!(!node.node.is_connected(addr));
    assert_eq!(node.origins(), vec![DisconnectOrigin::User]);
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-01: on_connect can wait for the peer's first message without deadlocking.
#[tokio::test]
async fn hook_01_on_connect_can_await_inbound() {
    let node = Abortable::new(test_config());
    node.s.await_inbound.store(true, SeqCst);
    node.enable_all().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    wait_for_connections(&peer.node, 1).await;
    sleep(Duration::from_millis(50)).await;
    assert_eq!(node.connect_done(), 0);
    send_dm(
        &peer,
        peer.node.connected_addrs()[0],
        Bytes::from_static(b"hi"),
    )
    .await
    .unwrap();
    wait_until(SEC, || node.connect_done() == 1).await;
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-02: connect doesn't wait for on_connect.
#[tokio::test]
async fn hook_02_connect_does_not_wait_for_on_connect() {
    let node = Abortable::new(test_config());
    *node.s.connect_delay.lock().unwrap() = Duration::from_millis(500);
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;
    let start = Instant::now();
    node.node.connect(addr).await.unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
    assert_eq!(node.node.num_connected(), 1);
    assert_eq!(node.connect_done(), 0);
    wait_until(SEC, || node.connect_done() == 1).await;
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-03: with ABORTABLE = false, on_connect completes despite an immediate disconnect.
#[tokio::test]
async fn hook_03_non_abortable_on_connect_completes() {
    let node = Detached::new(test_config());
    *node.s.connect_delay.lock().unwrap() = Duration::from_millis(300);
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    assert!(node.node.disconnect(addr).await);
    wait_until(Duration::from_secs(2), || node.connect_done() == 1).await;
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-03: ... and despite a shutdown.
#[tokio::test]
async fn hook_03_non_abortable_on_connect_survives_shutdown() {
    let node = Detached::new(test_config());
    *node.s.connect_delay.lock().unwrap() = Duration::from_millis(300);
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    node.node.shut_down().await;
    wait_until(Duration::from_secs(2), || node.connect_done() == 1).await;
    peer.node.shut_down().await;
}

// HOOK-04: with ABORTABLE = true, a disconnect aborts a running on_connect.
#[tokio::test]
async fn hook_04_abortable_on_connect_is_aborted() {
    let node = Abortable::new(test_config());
    *node.s.connect_delay.lock().unwrap() = Duration::from_millis(300);
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    wait_until(SEC, || node.connect_started() == 1).await;
    assert!(node.node.disconnect(addr).await);
    sleep(SEC).await;
    assert_eq!(node.connect_done(), 0, "the hook wasn't aborted");
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-05: a connect dropped right after the connection is registered still gets its
// on_connect, which stays attached to the connection (a disconnect aborts it).
#[tokio::test]
async fn hook_05_cancelled_connect_hook_is_abortable() {
    let node = Abortable::new(test_config());
    *node.s.connect_delay.lock().unwrap() = Duration::from_millis(500);
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;

    let out = poll_until(node.node.connect(addr), || node.node.is_connected(addr)).await;
    if let Some(res) = out {
        res.unwrap();
    }
    wait_until(SEC, || node.connect_started() == 1).await;
    assert!(node.node.disconnect(addr).await);
    sleep(SEC).await;
    assert_eq!(node.connect_done(), 0, "the hook ran detached");
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-06: on_disconnect runs while the connection is still registered, and disconnect waits
// for it.
#[tokio::test]
async fn hook_06_disconnect_awaits_on_disconnect() {
    let node = Abortable::new(test_config());
    *node.s.disconnect_delay.lock().unwrap() = Duration::from_millis(300);
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    let start = Instant::now();
    assert!(node.node.disconnect(addr).await);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(node.s.disconnect_done.load(SeqCst), 1);
    assert_eq!(*node.s.connected_in_hook.lock().unwrap(), vec![true]);
    assert!(!node.node.is_connected(addr));
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-06: ... but only up to OnDisconnect::TIMEOUT_MS (200ms here, with a 10s hook).
#[tokio::test]
async fn hook_06_on_disconnect_timeout_bounds_disconnect() {
    let node = Hooked::<true, 200>::new(test_config());
    *node.s.disconnect_delay.lock().unwrap() = Duration::from_secs(10);
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    let start = Instant::now();
    assert!(node.node.disconnect(addr).await);
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "disconnect took {elapsed:?}"
    );
    assert_eq!(node.s.disconnect_done.load(SeqCst), 0);
    assert!(!node.node.is_connected(addr));
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-07: on_disconnect fires on both sides: the one that disconnects, and the passive one
// whose Reading sees the FIN.
#[tokio::test]
async fn hook_07_on_disconnect_fires_on_both_sides() {
    let a = Abortable::new(test_config());
    let b = Abortable::new(test_config());
    a.enable_all().await;
    b.enable_all().await;
    let addr = start_listening(&b.node).await;
    a.node.connect(addr).await.unwrap();
    wait_for_connections(&b.node, 1).await;
    assert!(a.node.disconnect(addr).await);
    assert_eq!(a.origins(), vec![DisconnectOrigin::User]);
    wait_until(SEC, || b.disconnect_started() == 1).await;
    assert_eq!(b.origins(), vec![DisconnectOrigin::Reading]);
    shut_down_all([&a.node, &b.node]).await;
}

// HOOK-08: User for an explicit disconnect (initiator with neither Reading nor Writing),
// Reading on the reading-only responder.
#[tokio::test]
async fn hook_08_user_and_reading_origins() {
    let initiator = Abortable::new(test_config());
    initiator.enable_hooks().await;
    let responder = Abortable::new(test_config());
    responder.enable_reading().await;
    responder.enable_hooks().await;
    let addr = start_listening(&responder.node).await;
    initiator.node.connect(addr).await.unwrap();
    wait_for_connections(&responder.node, 1).await;

    assert!(initiator.node.disconnect(addr).await);
    assert_eq!(initiator.origins(), vec![DisconnectOrigin::User]);
    wait_until(SEC, || responder.disconnect_started() == 1).await;
    assert_eq!(responder.origins(), vec![DisconnectOrigin::Reading]);
    shut_down_all([&initiator.node, &responder.node]).await;
}

// HOOK-08: Shutdown for every connection torn down by shut_down.
#[tokio::test]
async fn hook_08_shutdown_origin() {
    let node = Abortable::new(test_config());
    node.enable_all().await;
    let (p1, a1) = listening_peer().await;
    let (p2, a2) = listening_peer().await;
    node.node.connect(a1).await.unwrap();
    node.node.connect(a2).await.unwrap();
    node.node.shut_down().await;
    assert_eq!(
        node.origins(),
        vec![DisconnectOrigin::Shutdown, DisconnectOrigin::Shutdown]
    );
    shut_down_all([&p1.node, &p2.node]).await;
}

/// A raw listener whose accepted connection is reset at once, and the node connected to it.
async fn connected_to_resetting_peer<const A: bool, const D: u64>(
    node: &Hooked<A, D>,
) -> SocketAddr {
    let listener = TcpListener::bind(LOCALHOST_ANY_PORT).await.unwrap();
    let addr = listener.local_addr().unwrap();
    node.node.connect(addr).await.unwrap();
    let (stream, _) = listener.accept().await.unwrap();
    // SO_LINGER 0: closing sends a RST, so the node's next writes fail
    stream.set_zero_linger().unwrap();
    drop(stream);
    addr
}

/// Writes to `addr` until the writer notices the peer is gone.
async fn write_until_writer_fails<const A: bool, const D: u64>(
    node: &Hooked<A, D>,
    addr: SocketAddr,
) {
    let start = Instant::now();
    while node.node.is_connected(addr) {
        assert!(start.elapsed() < SEC, "the writer never noticed the reset");
        let _ = node.unicast_fast(addr, Bytes::from_static(b"are you there?"));
        sleep(Duration::from_millis(10)).await;
    }
}

// HOOK-08, HOOK-14: Writing when the writer fails (the peer reset the connection), and the
// write error is the close reason.
#[tokio::test]
async fn hook_08_writing_origin() {
    let node = Abortable::new(test_config());
    node.enable_writing().await;
    node.enable_hooks().await;
    let addr = connected_to_resetting_peer(&node).await;
    write_until_writer_fails(&node, addr).await;
    wait_until(SEC, || node.disconnect_started() == 1).await;
    assert_eq!(node.origins(), vec![DisconnectOrigin::Writing]);
    // HOOK-14: and the reason is the write's error
    let reasons = node.s.reasons.lock().unwrap().clone();
    let reason = reasons[0].as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("writing to the peer failed: "),
        "{reason}"
    );
    node.node.shut_down().await;
}

// HOOK-09: on_disconnect fires exactly once per connection while user disconnects, peer EOFs
// (Reading), write failures and shut_down all race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_09_on_disconnect_exactly_once() {
    for _ in 0..3 {
        let hub = Abortable::new(test_config());
        hub.enable_all().await;
        let hub_addr = start_listening(&hub.node).await;
        let mut peers = Vec::new();
        for _ in 0..20 {
            let p = Peer::new(test_config());
            p.enable_rw().await;
            p.node.connect(hub_addr).await.unwrap();
            peers.push(p);
        }
        wait_for_connections(&hub.node, 20).await;
        let addrs = hub.node.connected_addrs();

        let mut tasks = Vec::new();
        for (addr, peer) in addrs.iter().copied().zip(peers.iter().cloned()) {
            let h = hub.clone();
            tasks.push(tokio::spawn(async move {
                h.node.disconnect(addr).await;
            }));
            tasks.push(tokio::spawn(async move { peer.node.shut_down().await }));
            let h = hub.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    let _ = h.unicast_fast(addr, Bytes::from_static(b"x"));
                    tokio::task::yield_now().await;
                }
            }));
        }
        let h = hub.clone();
        tasks.push(tokio::spawn(async move { h.node.shut_down().await }));
        for t in tasks {
            timeout(Duration::from_secs(5), t).await.unwrap().unwrap();
        }

        assert_eq!(hub.node.num_connected(), 0);
        let mut per_addr: HashMap<SocketAddr, usize> = HashMap::new();
        for (addr, _) in hub.s.origins.lock().unwrap().iter() {
            *per_addr.entry(*addr).or_default() += 1;
        }
        assert_eq!(per_addr.len(), 20, "some connections got no on_disconnect");
        assert!(
            per_addr.values().all(|n| *n == 1),
            "on_disconnect fired more than once: {per_addr:?}"
        );
    }
}

// HOOK-10: a cancelled disconnect still removes the connection at once, doesn't leave its hook
// running detached, releases the accounting and lets shut_down finish.
#[tokio::test]
async fn hook_10_cancelled_disconnect() {
    let node = Hooked::<true, 1000>::new(Config {
        max_connections_per_ip: 1,
        ..test_config()
    });
    *node.s.disconnect_delay.lock().unwrap() = Duration::from_secs(10);
    node.enable_hooks().await;
    let addr = start_listening(&node.node).await;
    let first = Node::new(test_config());
    first.connect(addr).await.unwrap();
    wait_for_connections(&node.node, 1).await;
    let peer = node.node.connected_addrs()[0];

    let res = timeout(Duration::from_millis(100), node.node.disconnect(peer)).await;
    assert!(res.is_err(), "the 10s hook didn't hold the disconnect");
    assert!(!node.node.is_connected(peer));
    assert_eq!(node.node.num_connected(), 0);

    // the hook stops ticking
    sleep(Duration::from_millis(50)).await;
    let ticks = node.s.ticks.load(SeqCst);
    sleep(Duration::from_millis(300)).await;
    assert_eq!(
        node.s.ticks.load(SeqCst),
        ticks,
        "the hook runs on, detached"
    );

    // the per-IP slot was released
    let second = Node::new(test_config());
    second.connect(addr).await.unwrap();
    wait_for_connections(&node.node, 1).await;
    assert_eq!(node.node.heuristics().inbound_connections_rejected(), 0);

    *node.s.disconnect_delay.lock().unwrap() = Duration::ZERO;
    timeout(Duration::from_secs(2), node.node.shut_down())
        .await
        .expect("shut_down hung after a cancelled disconnect");
    shut_down_all([&first, &second]).await;
}

// HOOK-11: on_disconnect may run while on_connect hasn't finished.
#[tokio::test]
async fn hook_11_on_disconnect_before_on_connect_finishes() {
    let node = Detached::new(test_config());
    let gate = Gate::new();
    *node.s.connect_gate.lock().unwrap() = Some(gate.clone());
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    assert!(node.node.disconnect(addr).await);
    assert_eq!(node.s.disconnect_done.load(SeqCst), 1);
    assert_eq!(node.connect_done(), 0);
    gate.open();
    wait_until(SEC, || node.connect_done() == 1).await;
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-12: with ABORTABLE = false, on_connect and on_disconnect calls pair up once every node
// is shut down, even when the shutdown races connection setup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_12_hooks_pair_when_shutdown_races_setup() {
    for round in 0..10u64 {
        let hub = Detached::new(test_config());
        hub.enable_hooks().await;
        let hub_addr = start_listening(&hub.node).await;
        let peers: Vec<Detached> = (0..20).map(|_| Detached::new(test_config())).collect();
        for p in &peers {
            p.enable_hooks().await;
        }
        let mut tasks = Vec::new();
        for p in peers.iter().cloned() {
            tasks.push(tokio::spawn(async move {
                let _ = p.node.connect(hub_addr).await;
            }));
        }
        // shut the hub down somewhere in the middle of the setups
        sleep(Duration::from_micros(500 * round)).await;
        hub.node.shut_down().await;
        for t in tasks {
            timeout(Duration::from_secs(5), t).await.unwrap().unwrap();
        }
        shut_down_all(peers.iter().map(|p| &p.node)).await;

        for n in peers.iter().chain([&hub]) {
            wait_until_desc(SEC, "on_connect/on_disconnect pairing", || {
                n.connect_done() == n.connect_started()
                    && n.connect_started() == n.disconnect_started()
            })
            .await;
        }
    }
}

// HOOK-13: on_disconnect can send a final message with unicast + await.
#[tokio::test]
async fn hook_13_final_message_from_on_disconnect() {
    let node = Abortable::new(test_config());
    node.s.say_bye.store(true, SeqCst);
    node.enable_writing().await;
    node.enable_hooks().await;
    let (peer, addr) = listening_peer().await;
    node.node.connect(addr).await.unwrap();
    assert!(node.node.disconnect(addr).await);
    assert_eq!(
        *node.s.bye_results.lock().unwrap(),
        vec![(DisconnectOrigin::User, Ok(()))]
    );
    wait_until(SEC, || peer.processed() == 1).await;
    assert_eq!(peer.payloads(), vec![Bytes::from_static(b"bye")]);
    shut_down_all([&node.node, &peer.node]).await;
}

// HOOK-13: no final message is possible when the writer itself failed.
#[tokio::test]
async fn hook_13_no_final_message_after_writer_failure() {
    let node = Abortable::new(test_config());
    node.s.say_bye.store(true, SeqCst);
    node.enable_writing().await;
    node.enable_hooks().await;
    let addr = connected_to_resetting_peer(&node).await;
    write_until_writer_fails(&node, addr).await;
    wait_until(SEC, || !node.s.bye_results.lock().unwrap().is_empty()).await;
    let results = node.s.bye_results.lock().unwrap().clone();
    assert_eq!(results.len(), 1);
    let (origin, res) = results[0];
    assert_eq!(origin, DisconnectOrigin::Writing);
    let kind = res.expect_err("a final message went out through a failed writer");
    assert!(
        matches!(kind, ErrorKind::NotConnected | ErrorKind::BrokenPipe),
        "unexpected error kind: {kind:?}"
    );
    node.node.shut_down().await;
}
