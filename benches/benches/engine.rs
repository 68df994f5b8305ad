//! The engine's network benchmarks against a raw-tokio baseline in the same run.
//!
//! ```text
//! cargo bench -p pea2pea-benches --bench engine
//! ```

#[path = "../src/report.rs"]
mod report;

use pea2pea_benches::workloads;

#[tokio::main]
async fn main() {
    // cargo passes --bench; the harness takes no other options
    report::run("pea2pea (this repo)").await;
}
