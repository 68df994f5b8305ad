//! Limits & filtering: LIM-01 .. LIM-12.

use std::{
    io::{self, ErrorKind},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{
    Config, Connection, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{Handshake, OnDisconnect, Reading},
};
use pea2pea_tests::*;
use tokio::{
    sync::Barrier,
    time::{sleep, timeout},
};

const SEC: Duration = Duration::from_secs(1);

/// Creates `n` plain listening nodes to be used as dial targets.
async fn targets(n: usize) -> (Vec<Node>, Vec<SocketAddr>) {
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..n {
        let node = Node::new(test_config());
        addrs.push(start_listening(&node).await);
        nodes.push(node);
    }
    (nodes, addrs)
}

// LIM-01: an outbound connect beyond max_connections fails with QuotaExceeded.
#[tokio::test]
async fn lim_01_outbound_max_connections() {
    let node = Node::new(Config {
        max_connections: 1,
        ..test_config()
    });
    let (ts, addrs) = targets(2).await;
    node.connect(addrs[0]).await.unwrap();
    let err = node.connect(addrs[1]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(node.num_connected(), 1);
    assert_eq!(node.num_connecting(), 0);
    shut_down_all(ts.iter().chain([&node])).await;
}

// LIM-02: the inbound surplus is accepted at the TCP level and dropped before any protocol runs.
#[tokio::test]
async fn lim_02_inbound_max_connections() {
    let target = GatedNode::new(Config {
        max_connections: 1,
        ..test_config()
    });
    target.gate.open();
    target.enable_handshake().await;
    let addr = start_listening(&target.node).await;

    let first = Node::new(test_config());
    first.connect(addr).await.unwrap();
    wait_for_connections(&target.node, 1).await;

    let surplus = Node::new(test_config());
    surplus.connect(addr).await.unwrap();
    wait_until(SEC, || {
        target.node.heuristics().inbound_connections_rejected() == 1
    })
    .await;
    assert_eq!(target.node.num_connected(), 1);
    assert_eq!(target.node.heuristics().accept_errors(), 0);
    assert_eq!(
        target.started(),
        1,
        "a protocol ran for the rejected connection"
    );
    shut_down_all([&target.node, &first, &surplus]).await;
}

// LIM-03: 50 simultaneous inbound connects never push a limit-3 node past 3 (connected plus
// connecting, sampled throughout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lim_03_no_over_admission() {
    let target = Node::new(Config {
        max_connections: 3,
        ..test_config()
    });
    let addr = start_listening(&target).await;
    let barrier = Arc::new(Barrier::new(50));
    let mut clients = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = Node::new(Config {
            listener_addr: None,
            ..test_config()
        });
        clients.push(client.clone());
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let _ = client.connect(addr).await;
        }));
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(500) {
        let n = target.num_connected() + target.num_connecting();
        assert!(n <= 3, "{n} connections admitted or pending");
        sleep(Duration::from_millis(1)).await;
    }
    for t in tasks {
        timeout(SEC, t).await.unwrap().unwrap();
    }
    assert!(target.num_connected() <= 3);
    wait_until(SEC, || target.num_connected() == 3).await;
    shut_down_all(clients.iter().chain([&target])).await;
}

// LIM-04: per-IP filtering: a second connection from 127.0.0.1 is dropped, one from 127.0.0.2
// is accepted.
#[tokio::test]
async fn lim_04_per_ip_limit() {
    let server = Node::new(Config {
        max_connections: 10,
        max_connections_per_ip: 1,
        ..test_config()
    });
    let addr = start_listening(&server).await;
    let a1 = Node::new(test_config());
    let a2 = Node::new(test_config());
    let b = Node::new(test_config());

    a1.connect(addr).await.unwrap();
    wait_for_connections(&server, 1).await;
    a2.connect(addr).await.unwrap();
    wait_until(SEC, || {
        server.heuristics().inbound_connections_rejected() == 1
    })
    .await;
    b.connect_using_socket(addr, raw::socket_bound_to(loopback_ip(2)))
        .await
        .unwrap();
    wait_for_connections(&server, 2).await;

    sleep(Duration::from_millis(200)).await;
    let mut ips: Vec<IpAddr> = server.connected_addrs().iter().map(|a| a.ip()).collect();
    ips.sort();
    assert_eq!(ips, vec![loopback_ip(1), loopback_ip(2)]);
    shut_down_all([&server, &a1, &a2, &b]).await;
}

// LIM-05: an IPv4-mapped IPv6 peer (::ffff:127.0.0.1, as seen by a dual-stack listener) shares
// the per-IP bucket of 127.0.0.1; the bucket is released when it empties.
#[tokio::test]
async fn lim_05_ipv4_mapped_shares_bucket() {
    let server = Node::new(Config {
        listener_addr: Some((Ipv6Addr::UNSPECIFIED, 0).into()),
        max_connections_per_ip: 1,
        ..test_config()
    });
    let listening = match server.toggle_listener().await {
        Ok(Some(addr)) => addr,
        other => {
            // no IPv6 on this host: the mapped form can't occur here
            eprintln!("skipping: can't listen on [::]: {other:?}");
            server.shut_down().await;
            return;
        }
    };
    let v4_listening = SocketAddr::from((Ipv4Addr::LOCALHOST, listening.port()));

    // an inbound IPv4 connection shows up in its mapped form
    let mut probe = raw_connect(v4_listening).await;
    wait_for_connections(&server, 1).await;
    let seen = server.connected_addrs()[0];
    let IpAddr::V6(v6) = seen.ip() else {
        panic!("expected a mapped address, got {seen}");
    };
    assert_eq!(v6.to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST));
    assert!(server.disconnect(seen).await);
    assert_closed_within(&mut probe, SEC).await;

    // an outbound connection to native 127.0.0.1 takes the bucket...
    let peer = Node::new(test_config());
    let peer_addr = start_listening(&peer).await;
    server.connect(peer_addr).await.unwrap();
    // ...so the same host arriving as ::ffff:127.0.0.1 is rejected
    let _rejected = raw_connect(v4_listening).await;
    wait_until(SEC, || {
        server.heuristics().inbound_connections_rejected() == 1
    })
    .await;
    assert_eq!(server.num_connected(), 1);

    // once the bucket empties, the host is admitted again
    assert!(server.disconnect(peer_addr).await);
    let _admitted = raw_connect(v4_listening).await;
    wait_for_connections(&server, 1).await;
    assert_eq!(server.heuristics().inbound_connections_rejected(), 1);
    shut_down_all([&server, &peer]).await;
}

// LIM-05: pending connections count toward the per-IP limit.
#[tokio::test]
async fn lim_05_pending_connections_count_per_ip() {
    let server = GatedNode::new(Config {
        max_connections_per_ip: 1,
        ..test_config()
    });
    server.enable_handshake().await;
    let addr = start_listening(&server.node).await;
    let _pending = raw_connect(addr).await;
    wait_until(SEC, || server.node.num_connecting() == 1).await;

    let _second = raw_connect(addr).await;
    wait_until(SEC, || {
        server.node.heuristics().inbound_connections_rejected() == 1
    })
    .await;
    assert_eq!(server.started(), 1);

    server.gate.open();
    wait_for_connections(&server.node, 1).await;
    server.node.shut_down().await;
}

// LIM-06: with max_connecting 3 and three stalled handshakes, a 4th connect fails at once.
#[tokio::test]
async fn lim_06_max_connecting() {
    let node = GatedNode::new(Config {
        max_connections: 10,
        max_connecting: 3,
        ..test_config()
    });
    node.enable_handshake().await;
    let (ts, addrs) = targets(4).await;
    let mut pending = Vec::new();
    for addr in &addrs[..3] {
        let (n, addr) = (node.node.clone(), *addr);
        pending.push(tokio::spawn(async move { n.connect(addr).await }));
    }
    wait_until(SEC, || node.node.num_connecting() == 3).await;

    let err = timeout(SEC, node.node.connect(addrs[3]))
        .await
        .expect("the 4th connect didn't fail at once")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(node.node.num_connecting(), 3);
    assert_eq!(node.node.heuristics().connect_budget_rejections(), 1);

    node.gate.open();
    for p in pending {
        timeout(SEC, p).await.unwrap().unwrap().unwrap();
    }
    assert_eq!(node.node.num_connected(), 3);
    assert_eq!(node.node.num_connecting(), 0);
    shut_down_all(ts.iter().chain([&node.node])).await;
}

// LIM-07: inbound setups and outbound connects share one budget: an inbound connection stuck in
// its handshake makes an outbound connect fail with QuotaExceeded and count a budget rejection.
#[tokio::test]
async fn lim_07_shared_budget() {
    let node = GatedNode::gated_on(
        Config {
            max_connecting: 1,
            ..test_config()
        },
        ConnectionSide::Responder,
    );
    node.enable_handshake().await;
    let addr = start_listening(&node.node).await;
    let (ts, addrs) = targets(1).await;

    let _inbound = raw_connect(addr).await;
    wait_until(SEC, || node.node.num_connecting() == 1).await;
    let err = node.node.connect(addrs[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(node.node.heuristics().connect_budget_rejections(), 1);

    // once the inbound setup finishes, the budget is free again
    node.gate.open();
    wait_for_connections(&node.node, 1).await;
    node.node.connect(addrs[0]).await.unwrap();
    assert_eq!(node.node.heuristics().connect_budget_rejections(), 1);
    shut_down_all(ts.iter().chain([&node.node])).await;
}

// LIM-08: an idle listener holds no budget slot.
#[tokio::test]
async fn lim_08_idle_listener_holds_no_budget() {
    let node = Node::new(Config {
        max_connecting: 1,
        ..test_config()
    });
    start_listening(&node).await;
    // give the accept loop time to park in accept (it must not hold a permit there)
    sleep(Duration::from_millis(50)).await;
    let (ts, addrs) = targets(1).await;
    node.connect(addrs[0]).await.unwrap();
    assert_eq!(node.heuristics().connect_budget_rejections(), 0);
    shut_down_all(ts.iter().chain([&node])).await;
}

// LIM-09: the inbound surplus over max_connecting waits (backpressure), it is never rejected.
#[tokio::test]
async fn lim_09_inbound_surplus_is_backpressured() {
    let node = GatedNode::new(Config {
        max_connections: 10,
        max_connecting: 2,
        ..test_config()
    });
    node.enable_handshake().await;
    let addr = start_listening(&node.node).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(raw_connect(addr).await);
    }
    wait_until(SEC, || node.node.num_connecting() == 2).await;
    sleep(Duration::from_millis(300)).await;
    assert_eq!(
        node.node.num_connecting(),
        2,
        "more setups than max_connecting"
    );
    assert_eq!(node.started(), 2);
    assert_eq!(node.node.heuristics().inbound_connections_rejected(), 0);

    node.gate.open();
    wait_for_connections(&node.node, 5).await;
    assert_eq!(node.node.heuristics().inbound_connections_rejected(), 0);
    node.node.shut_down().await;
}

// LIM-10: the connecting slot is released when a connect succeeds.
#[tokio::test]
async fn lim_10_slot_released_on_success() {
    let node = Node::new(Config {
        max_connecting: 1,
        ..test_config()
    });
    let (ts, addrs) = targets(3).await;
    for addr in &addrs {
        node.connect(*addr).await.unwrap();
        assert_eq!(node.num_connecting(), 0);
    }
    assert_eq!(node.num_connected(), 3);
    shut_down_all(ts.iter().chain([&node])).await;
}

/// A node whose handshake always fails.
#[derive(Clone)]
struct Failing(Node);

impl Pea2Pea for Failing {
    fn node(&self) -> &Node {
        &self.0
    }
}

impl Handshake for Failing {
    async fn perform_handshake(&self, _: Connection) -> io::Result<Connection> {
        Err(io::Error::other("nope"))
    }
}

// LIM-10: the connecting slot is released when a handshake fails.
#[tokio::test]
async fn lim_10_slot_released_on_handshake_failure() {
    let node = Failing(Node::new(Config {
        max_connecting: 1,
        max_connections_per_ip: 1,
        ..test_config()
    }));
    node.enable_handshake().await;
    let (ts, addrs) = targets(1).await;
    for _ in 0..3 {
        let err = node.0.connect(addrs[0]).await.unwrap_err();
        assert_ne!(err.kind(), ErrorKind::QuotaExceeded);
        assert_eq!(node.0.num_connecting(), 0);
        assert_eq!(node.0.num_connected(), 0);
    }
    assert_eq!(node.0.heuristics().connect_budget_rejections(), 0);
    shut_down_all(ts.iter().chain([&node.0])).await;
}

/// A reading node whose on_disconnect hook is slow while `slow` is set.
#[derive(Clone)]
struct SlowHook {
    node: Node,
    slow: Arc<AtomicBool>,
}

impl Pea2Pea for SlowHook {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Reading for SlowHook {
    type Message = Bytes;
    type Codec = TestCodec;
    fn codec(&self, _: SocketAddr, _: ConnectionSide) -> TestCodec {
        TestCodec
    }
    async fn process_message(&self, _: SocketAddr, _: Bytes) {}
}

impl OnDisconnect for SlowHook {
    const TIMEOUT_MS: u64 = 1000;
    async fn on_disconnect(&self, _: SocketAddr, _: DisconnectOrigin) {
        if self.slow.load(SeqCst) {
            sleep(Duration::from_secs(10)).await;
        }
    }
}

// LIM-11: per-IP and global counts are released on every teardown path (user disconnect, peer
// EOF, a cancelled disconnect): a new connection from the same IP is admitted right after.
#[tokio::test]
async fn lim_11_counts_released_on_every_teardown_path() {
    let server = SlowHook {
        node: Node::new(Config {
            max_connections: 1,
            max_connections_per_ip: 1,
            ..test_config()
        }),
        slow: Default::default(),
    };
    server.enable_reading().await;
    server.enable_on_disconnect().await;
    let addr = start_listening(&server.node).await;

    // user disconnect
    let mut c = raw_connect(addr).await;
    wait_for_connections(&server.node, 1).await;
    assert!(
        server
            .node
            .disconnect(server.node.connected_addrs()[0])
            .await
    );
    assert_closed_within(&mut c, SEC).await;

    // peer EOF (Reading)
    let c = raw_connect(addr).await;
    wait_for_connections(&server.node, 1).await;
    drop(c);
    wait_for_connections(&server.node, 0).await;

    // cancelled disconnect
    let _c = raw_connect(addr).await;
    wait_for_connections(&server.node, 1).await;
    server.slow.store(true, SeqCst);
    let peer = server.node.connected_addrs()[0];
    assert!(
        timeout(Duration::from_millis(100), server.node.disconnect(peer))
            .await
            .is_err()
    );
    assert_eq!(server.node.num_connected(), 0);
    server.slow.store(false, SeqCst);

    let _last = raw_connect(addr).await;
    wait_for_connections(&server.node, 1).await;
    assert_eq!(server.node.heuristics().inbound_connections_rejected(), 0);
    server.node.shut_down().await;
}

// LIM-12 (initiator): a duplicate gives AlreadyExists even when the per-IP or global limit is
// also reached; otherwise those limits give QuotaExceeded.
#[tokio::test]
async fn lim_12_check_order_initiator() {
    let (ts, addrs) = targets(3).await;

    let per_ip = Node::new(Config {
        max_connections_per_ip: 1,
        ..test_config()
    });
    per_ip.connect(addrs[0]).await.unwrap();
    let err = per_ip.connect(addrs[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = per_ip.connect(addrs[1]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);

    let global = Node::new(Config {
        max_connections: 2,
        ..test_config()
    });
    global.connect(addrs[0]).await.unwrap();
    global.connect(addrs[1]).await.unwrap();
    let err = global.connect(addrs[1]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = global.connect(addrs[2]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExceeded);
    shut_down_all(ts.iter().chain([&per_ip, &global])).await;
}

// LIM-12 (initiator): a duplicate of a connection still being set up gives AlreadyExists even
// when the per-IP limit is reached by that very connection.
// published 0.57.4 differs: it checks "already connecting" after the limits, so this connect
// gets QuotaExceeded (per-IP) instead of AlreadyExists.
#[tokio::test]
async fn lim_12_duplicate_pending_is_already_exists() {
    let node = GatedNode::new(Config {
        max_connections_per_ip: 1,
        ..test_config()
    });
    node.enable_handshake().await;
    let (ts, addrs) = targets(1).await;
    let pending = {
        let (n, addr) = (node.node.clone(), addrs[0]);
        tokio::spawn(async move { n.connect(addr).await })
    };
    wait_until(SEC, || node.started() == 1).await;
    let err = node.node.connect(addrs[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    node.gate.open();
    timeout(SEC, pending).await.unwrap().unwrap().unwrap();
    shut_down_all(ts.iter().chain([&node.node])).await;
}

// LIM-12 (responder): per-IP and global rejections are counted as inbound rejections.
#[tokio::test]
async fn lim_12_responder_rejections_are_counted() {
    let server = Node::new(Config {
        max_connections: 2,
        max_connections_per_ip: 1,
        ..test_config()
    });
    let addr = start_listening(&server).await;
    let _a = raw_connect_from(loopback_ip(1), addr).await;
    wait_for_connections(&server, 1).await;
    // per-IP
    let _b = raw_connect_from(loopback_ip(1), addr).await;
    wait_until(SEC, || {
        server.heuristics().inbound_connections_rejected() == 1
    })
    .await;
    let _c = raw_connect_from(loopback_ip(2), addr).await;
    wait_for_connections(&server, 2).await;
    // global
    let _d = raw_connect_from(loopback_ip(3), addr).await;
    wait_until(SEC, || {
        server.heuristics().inbound_connections_rejected() == 2
    })
    .await;
    assert_eq!(server.num_connected(), 2);
    server.shut_down().await;
}

// LIM-12: an inbound connection refused only because the node is shutting down is not counted
// as an inbound rejection.
#[tokio::test]
async fn lim_12_shutdown_refusals_are_not_rejections() {
    let node = GatedNode::new(Config {
        max_connecting: 1,
        ..test_config()
    });
    node.enable_handshake().await;
    let addr = start_listening(&node.node).await;
    // one setup holds the only slot; the next waits to be set up
    let _first = raw_connect(addr).await;
    wait_until(SEC, || node.node.num_connecting() == 1).await;
    let _second = raw_connect(addr).await;
    sleep(Duration::from_millis(50)).await;

    let shutdown = {
        let n = node.node.clone();
        tokio::spawn(async move { n.shut_down().await })
    };
    sleep(Duration::from_millis(50)).await;
    node.gate.open();
    timeout(Duration::from_secs(5), shutdown)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(node.node.num_connected(), 0);
    assert_eq!(node.node.heuristics().inbound_connections_rejected(), 0);
}
