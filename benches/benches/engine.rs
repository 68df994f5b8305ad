//! The engine's network benchmarks against a raw-tokio baseline and the physical limit, all
//! in the same run. The limits are plain blocking sockets on two threads with nothing on top
//! (no runtime, no framing): a blast of 1 MiB writes (the throughput rows), the same blast of
//! 68-byte records framed in advance in 256 KiB writes (the small-message rows) and a ping-pong
//! (the latency rows).
//!
//! ```text
//! cargo bench -p pea2pea-benches --bench engine
//! cargo bench -p pea2pea-benches --bench engine -- small pingpong   # only these workloads
//! PEA2PEA_BENCH_SIDE=engine cargo bench -p pea2pea-benches --bench engine -- small  # one side
//! ```

#[path = "../src/report.rs"]
mod report;

use pea2pea_benches::workloads;

#[tokio::main]
async fn main() {
    // cargo passes --bench; the harness takes no other options
    report::run("pea2pea (this repo)").await;
}
