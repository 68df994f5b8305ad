use std::io;

use crate::Pea2Pea;

/// A shape of network for [`connect_nodes`] to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Each node connects to the next one.
    Line,
    /// A line whose last node also connects to the first.
    Ring,
    /// Every node connects to every other node.
    Mesh,
    /// Every node but the first connects to the first (the hub).
    Star,
    /// Nodes laid out row by row in a `width` × `height` lattice; each connects to its right
    /// and lower neighbours. The number of nodes must be `width * height`.
    Grid {
        /// Nodes per row.
        width: usize,
        /// Number of rows.
        height: usize,
    },
    /// A binary tree in heap order: node `i` connects to nodes `2i + 1` and `2i + 2`.
    Tree,
    /// Each node connects to `degree` distinct other nodes, picked by a deterministic hash of
    /// `seed` and the node's index. Picks may be mutual, which makes two connections.
    Random {
        /// How many peers each node dials; must be less than the number of nodes.
        degree: usize,
        /// Makes the picks reproducible.
        seed: u64,
    },
}

impl Topology {
    /// How many connections the topology makes, counted at both ends (each edge counts twice,
    /// since each end registers it), which is the sum of every node's `num_connected`.
    ///
    /// ```
    /// use pea2pea::Topology;
    ///
    /// assert_eq!(Topology::Line.num_expected_connections(4), 6); // 3 links, 2 ends each
    /// assert_eq!(Topology::Mesh.num_expected_connections(4), 12);
    /// assert_eq!(Topology::Grid { width: 2, height: 3 }.num_expected_connections(6), 14);
    /// ```
    pub fn num_expected_connections(&self, num_nodes: usize) -> usize {
        let n = num_nodes;
        if n == 0 {
            return 0;
        }
        let edges = match *self {
            Self::Line | Self::Star | Self::Tree => n - 1,
            Self::Ring => n,
            Self::Mesh => n * (n - 1) / 2,
            // horizontal edges plus vertical ones, written so a zero side cannot underflow
            Self::Grid { width, height } => {
                width.saturating_sub(1) * height + width * height.saturating_sub(1)
            }
            Self::Random { degree, .. } => n * degree,
        };
        edges * 2
    }

    /// The directed edges `(from, to)`: node `from` dials node `to`.
    fn edges(&self, n: usize) -> io::Result<Vec<(usize, usize)>> {
        let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, msg);
        if n < 2 {
            return Err(invalid(format!(
                "a topology needs at least 2 nodes, not {n}"
            )));
        }
        Ok(match *self {
            Self::Line => (0..n - 1).map(|i| (i, i + 1)).collect(),
            Self::Ring => (0..n).map(|i| (i, (i + 1) % n)).collect(),
            Self::Mesh => (0..n)
                .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
                .collect(),
            Self::Star => (1..n).map(|i| (i, 0)).collect(),
            Self::Tree => (1..n).map(|child| ((child - 1) / 2, child)).collect(),
            Self::Grid { width, height } => {
                if width.checked_mul(height) != Some(n) {
                    return Err(invalid(format!(
                        "a {width}x{height} grid needs {} nodes, not {n}",
                        width * height
                    )));
                }
                let mut edges = Vec::new();
                for i in 0..n {
                    if (i % width) + 1 < width {
                        edges.push((i, i + 1));
                    }
                    if i + width < n {
                        edges.push((i, i + width));
                    }
                }
                edges
            }
            Self::Random { degree, seed } => {
                if degree >= n {
                    return Err(invalid(format!(
                        "a random degree of {degree} needs more than {n} nodes"
                    )));
                }
                random_edges(n, degree, seed)
            }
        })
    }
}

/// Each node picks `degree` distinct peers by walking a hash sequence of its seed and index.
fn random_edges(n: usize, degree: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut edges = Vec::with_capacity(n * degree);
    for i in 0..n {
        let mut state = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut picked = Vec::with_capacity(degree);
        while picked.len() < degree {
            let j = (splitmix64(&mut state) % n as u64) as usize;
            if j != i && !picked.contains(&j) {
                picked.push(j);
            }
        }
        edges.extend(picked.into_iter().map(|j| (i, j)));
    }
    edges
}

/// A small, well-mixed 64-bit generator (SplitMix64).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Connects `nodes` (which must be listening) into `topology`, one connection at a time,
/// stopping at the first failure. A test utility: the nodes usually share 127.0.0.1, so their
/// [`Config::max_connections_per_ip`](crate::Config::max_connections_per_ip) must admit the
/// topology's degree.
///
/// Fails with `InvalidInput` for fewer than 2 nodes, a grid whose size differs from the number
/// of nodes, or a random degree not below it.
///
/// ```
/// use pea2pea::{Config, Node, Pea2Pea, Topology, connect_nodes};
///
/// #[derive(Clone)]
/// struct Member { node: Node }
///
/// impl Pea2Pea for Member {
///     fn node(&self) -> &Node { &self.node }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let members: Vec<Member> =
///     (0..4).map(|_| Member { node: Node::new(Config::loopback()) }).collect();
/// for member in &members {
///     member.node().toggle_listener().await?;
/// }
/// connect_nodes(&members, Topology::Ring).await?;
/// // every node dialled its successor; the accepting ends register their side soon after
/// assert!(members.iter().all(|m| m.node().num_connected() >= 1));
/// assert_eq!(Topology::Ring.num_expected_connections(members.len()), 8);
/// # for m in &members { m.node().shut_down().await; }
/// # Ok(())
/// # }
/// ```
pub async fn connect_nodes<T: Pea2Pea>(nodes: &[T], topology: Topology) -> io::Result<()> {
    for (from, to) in topology.edges(nodes.len())? {
        let addr = nodes[to].node().listening_addr().await?;
        nodes[from].node().connect(addr).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn degrees(topology: Topology, n: usize) -> Vec<usize> {
        let mut degree = vec![0; n];
        for (a, b) in topology.edges(n).unwrap() {
            degree[a] += 1;
            degree[b] += 1;
        }
        degree
    }

    #[test]
    fn topo_01_degrees() {
        assert_eq!(degrees(Topology::Line, 4), [1, 2, 2, 1]);
        assert_eq!(degrees(Topology::Ring, 4), [2, 2, 2, 2]);
        assert_eq!(degrees(Topology::Mesh, 4), [3, 3, 3, 3]);
        assert_eq!(degrees(Topology::Star, 4), [3, 1, 1, 1]);
    }

    #[test]
    fn topo_02_grid_and_tree() {
        assert_eq!(
            degrees(
                Topology::Grid {
                    width: 3,
                    height: 2
                },
                6
            ),
            [2, 3, 2, 2, 3, 2]
        );
        assert_eq!(degrees(Topology::Tree, 5), [2, 3, 1, 1, 1]);
    }

    #[test]
    fn topo_05_expected_connections_match_edges() {
        let all = [
            Topology::Line,
            Topology::Ring,
            Topology::Mesh,
            Topology::Star,
            Topology::Tree,
            Topology::Grid {
                width: 5,
                height: 2,
            },
            Topology::Random { degree: 2, seed: 7 },
        ];
        for t in all {
            assert_eq!(
                t.num_expected_connections(10),
                2 * t.edges(10).unwrap().len(),
                "{t:?}"
            );
            assert_eq!(t.num_expected_connections(0), 0, "{t:?}");
        }
    }

    #[test]
    fn topo_04_invalid_inputs() {
        assert_eq!(
            Topology::Line.edges(1).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            Topology::Line.edges(0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let grid = Topology::Grid {
            width: 2,
            height: 2,
        };
        assert_eq!(
            grid.edges(5).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let random = Topology::Random { degree: 3, seed: 1 };
        assert_eq!(
            random.edges(3).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
