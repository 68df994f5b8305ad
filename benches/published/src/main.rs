//! The engine benchmarks' workloads, run on the published pea2pea 0.57 and on raw tokio.
//! The workload and report files are shared with `benches/benches/engine.rs`, so both engines
//! run exactly the same code.

#[path = "../../src/workloads.rs"]
mod workloads;

#[path = "../../src/report.rs"]
mod report;

#[tokio::main]
async fn main() {
    report::run("pea2pea 0.57.4 (published)").await;
}
