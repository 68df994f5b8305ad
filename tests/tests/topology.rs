//! Topology helpers (connect_nodes / num_expected_connections): TOPO-01 .. TOPO-06.

use std::{
    io::{self, ErrorKind},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use pea2pea::{
    Connection, Node, Pea2Pea, Topology, connect_nodes,
    protocols::{Handshake, OnConnect},
};
use pea2pea_tests::*;
use tokio::{sync::Barrier, time::timeout};

const SEC: Duration = Duration::from_secs(1);

/// Connects `n` fresh listening nodes in `topology` and waits until every node `i` has
/// `degree(i)` connections (the responders register theirs asynchronously).
async fn check_degrees(n: usize, topology: Topology, degree: impl Fn(usize) -> usize) {
    let nodes = listening_nodes(n, test_config()).await;
    connect_nodes(&nodes, topology).await.unwrap();
    for (i, node) in nodes.iter().enumerate() {
        let what = format!("{topology:?}: node {i} to have {} connections", degree(i));
        wait_until_desc(SEC, &what, || node.node.num_connected() == degree(i)).await;
    }
    let total: usize = nodes.iter().map(|n| n.node.num_connected()).sum();
    assert_eq!(total, topology.num_expected_connections(n));
    shut_down_all(nodes.iter().map(|n| &n.node)).await;
}

// TOPO-01: Line, Ring, Mesh and Star degrees (N = 10).
#[tokio::test]
async fn topo_01_line() {
    check_degrees(10, Topology::Line, |i| if i == 0 || i == 9 { 1 } else { 2 }).await;
}

#[tokio::test]
async fn topo_01_ring() {
    check_degrees(10, Topology::Ring, |_| 2).await;
}

#[tokio::test]
async fn topo_01_mesh() {
    check_degrees(10, Topology::Mesh, |_| 9).await;
}

#[tokio::test]
async fn topo_01_star() {
    check_degrees(10, Topology::Star, |i| if i == 0 { 9 } else { 1 }).await;
}

// TOPO-02: Grid{5x2}: each node is connected to its up/down/left/right neighbours.
#[tokio::test]
async fn topo_02_grid() {
    let (w, h) = (5, 2);
    check_degrees(
        w * h,
        Topology::Grid {
            width: w,
            height: h,
        },
        |i| {
            let (row, col) = (i / w, i % w);
            [col > 0, col + 1 < w, row > 0, row + 1 < h]
                .iter()
                .filter(|b| **b)
                .count()
        },
    )
    .await;
}

// TOPO-02: Tree: binary-heap indices; a node's degree is its parent plus its children.
#[tokio::test]
async fn topo_02_tree() {
    let n = 10;
    check_degrees(n, Topology::Tree, |i| {
        usize::from(i > 0) + usize::from(2 * i + 1 < n) + usize::from(2 * i + 2 < n)
    })
    .await;
}

// TOPO-03: Random{degree 2}: every node dials 2 distinct others, so each has at least 2 and
// the total is N * degree * 2; the same seed gives the same graph.
#[tokio::test]
async fn topo_03_random() {
    let topology = Topology::Random {
        degree: 2,
        seed: 1234,
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let nodes = listening_nodes(10, test_config()).await;
        connect_nodes(&nodes, topology).await.unwrap();
        wait_until_desc(SEC, "the random graph to settle", || {
            nodes.iter().map(|n| n.node.num_connected()).sum::<usize>() == 40
        })
        .await;
        let degrees: Vec<usize> = nodes.iter().map(|n| n.node.num_connected()).collect();
        assert!(degrees.iter().all(|d| *d >= 2), "{degrees:?}");
        // each node dialled exactly `degree` peers (its outbound connections)
        for n in &nodes {
            let outbound = n
                .node
                .connection_infos()
                .values()
                .filter(|i| i.side() == pea2pea::ConnectionSide::Responder)
                .count();
            assert_eq!(outbound, 2);
        }
        runs.push(degrees);
        shut_down_all(nodes.iter().map(|n| &n.node)).await;
    }
    assert_eq!(runs[0], runs[1], "the same seed built different graphs");
}

// TOPO-04: invalid inputs are InvalidInput.
#[tokio::test]
async fn topo_04_invalid_input() {
    let none: Vec<FullNoopNode> = Vec::new();
    let err = connect_nodes(&none, Topology::Line).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let nodes = listening_nodes(10, test_config()).await;
    let err = connect_nodes(&nodes[..1], Topology::Mesh)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let grid = Topology::Grid {
        width: 3,
        height: 3,
    };
    let err = connect_nodes(&nodes, grid).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    for degree in [10, 11] {
        let random = Topology::Random { degree, seed: 0 };
        let err = connect_nodes(&nodes, random).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    // none of these connected anything
    assert!(nodes.iter().all(|n| n.node.num_connected() == 0));
    shut_down_all(nodes.iter().map(|n| &n.node)).await;
}

/// A node whose outbound handshakes fail when `fail_outbound` is set.
#[derive(Clone)]
struct Picky {
    node: Node,
    fail_outbound: bool,
}

impl Pea2Pea for Picky {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl Handshake for Picky {
    async fn perform_handshake(&self, conn: Connection) -> io::Result<Connection> {
        let outbound = !conn.side() == pea2pea::ConnectionSide::Initiator;
        if outbound && self.fail_outbound {
            return Err(io::Error::new(ErrorKind::PermissionDenied, "picky"));
        }
        Ok(conn)
    }
}

// TOPO-04: connect_nodes runs in order and stops at the first failed connect.
#[tokio::test]
async fn topo_04_stops_at_first_failure() {
    let mut nodes = Vec::new();
    for i in 0..4 {
        let node = Picky {
            node: Node::new(test_config()),
            fail_outbound: i == 1,
        };
        node.enable_handshake().await;
        start_listening(&node.node).await;
        nodes.push(node);
    }
    let err = connect_nodes(&nodes, Topology::Line).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    // 0 -> 1 happened; 1 -> 2 failed; 2 -> 3 was never attempted
    assert_eq!(nodes[0].node.num_connected(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(nodes[3].node.num_connected(), 0);
    assert!(
        !nodes[2]
            .node
            .is_connected(nodes[3].node.listening_addr().await.unwrap())
    );
    shut_down_all(nodes.iter().map(|n| &n.node)).await;
}

// TOPO-05: num_expected_connections for every topology, and 0 for 0 nodes.
#[test]
fn topo_05_num_expected_connections() {
    let grid = |width, height| Topology::Grid { width, height };
    let random = |degree| Topology::Random { degree, seed: 7 };
    for n in [1usize, 2, 5, 10] {
        assert_eq!(Topology::Line.num_expected_connections(n), 2 * (n - 1));
        assert_eq!(Topology::Star.num_expected_connections(n), 2 * (n - 1));
        assert_eq!(Topology::Tree.num_expected_connections(n), 2 * (n - 1));
        assert_eq!(Topology::Ring.num_expected_connections(n), 2 * n);
        assert_eq!(Topology::Mesh.num_expected_connections(n), n * (n - 1));
        assert_eq!(random(3).num_expected_connections(n), 2 * n * 3);
    }
    for (w, h) in [(5usize, 2usize), (3, 3), (1, 4), (1, 1)] {
        let expected = 2 * (2 * w * h - w - h);
        assert_eq!(grid(w, h).num_expected_connections(w * h), expected);
    }
    for t in [
        Topology::Line,
        Topology::Ring,
        Topology::Mesh,
        Topology::Star,
        Topology::Tree,
        grid(5, 2),
        grid(0, 0),
        random(2),
    ] {
        assert_eq!(t.num_expected_connections(0), 0, "{t:?}");
    }
}

/// A node whose on_connect waits on a barrier shared by the whole topology and the test.
#[derive(Clone)]
struct BarrierNode {
    node: Node,
    barrier: Arc<Barrier>,
}

impl Pea2Pea for BarrierNode {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl OnConnect for BarrierNode {
    async fn on_connect(&self, _: SocketAddr) {
        self.barrier.wait().await;
    }
}

// TOPO-06: every edge fires on_connect on both ends, so a barrier of
// num_expected_connections + 1 releases the test exactly when the topology has settled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topo_06_barrier_pattern() {
    let n = 5;
    let topology = Topology::Mesh;
    let barrier = Arc::new(Barrier::new(topology.num_expected_connections(n) + 1));
    let mut nodes = Vec::new();
    for _ in 0..n {
        let node = BarrierNode {
            node: Node::new(test_config()),
            barrier: barrier.clone(),
        };
        node.enable_on_connect().await;
        start_listening(&node.node).await;
        nodes.push(node);
    }
    connect_nodes(&nodes, topology).await.unwrap();
    timeout(Duration::from_secs(5), barrier.wait())
        .await
        .expect("the barrier never filled up");
    for node in &nodes {
        assert_eq!(node.node.num_connected(), n - 1);
    }
    shut_down_all(nodes.iter().map(|n| &n.node)).await;
}
