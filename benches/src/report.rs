//! Runs every network workload on this engine and on raw tokio, alternating so that both see
//! the same machine, and prints one table. Included by `benches/engine.rs` and by the
//! published-crate comparison, which name the engine they run in `ENGINE`.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use crate::workloads::*;

const ROUNDS: usize = 5;

fn median(times: &mut [Duration]) -> Duration {
    percentile(times, 50.0)
}

/// The `p`-th percentile (nearest rank).
fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort_unstable();
    let rank = ((p / 100.0) * times.len() as f64).ceil() as usize;
    times[rank.clamp(1, times.len()) - 1]
}

struct Row {
    workload: &'static str,
    unit: &'static str,
    ours: f64,
    raw: f64,
    higher_is_better: bool,
}

fn rate(amount: f64, time: Duration) -> f64 {
    amount / time.as_secs_f64()
}

/// Runs `f` for both engines `ROUNDS` times, alternating, and keeps each side's median.
async fn alternate<F, G, A, B>(mut ours: F, mut raw: G) -> (f64, f64)
where
    F: FnMut() -> A,
    G: FnMut() -> B,
    A: Future<Output = f64>,
    B: Future<Output = f64>,
{
    // PEA2PEA_BENCH_SIDE=engine|raw runs one side only (for profiling)
    let side = std::env::var("PEA2PEA_BENCH_SIDE").unwrap_or_default();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        if side != "raw" {
            a.push(ours().await);
        }
        if side != "engine" {
            b.push(raw().await);
        }
    }

    let mid = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    (mid(&mut a), mid(&mut b))
}

/// A memory figure, measured in a fresh child process so that earlier runs don't skew it.
fn memory_in_child(what: &str) -> f64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--memory", what])
        .output()
        .expect("couldn't run the memory probe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN)
}

/// The child side of [`memory_in_child`]: prints bytes per item.
pub async fn memory_probe(what: &str) {
    let per_item = match what {
        "engine-nodes" => pea2pea_idle_nodes(1000).await.0,
        "raw-nodes" => raw_idle_nodes(1000).await.0,
        "engine-connections" => pea2pea_idle_connections(1000).await.0,
        "raw-connections" => raw_idle_connections(1000).await.0,
        _ => panic!("unknown memory probe {what}"),
    };
    println!("{per_item}");
}

pub async fn run(engine: &str) {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--memory") {
        return memory_probe(&args[i + 1]).await;
    }
    // `cargo bench --bench engine -- small pingpong` runs only the workloads named
    let only: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let started = Instant::now();
    let mut rows = Vec::new();

    const BIG: usize = 32 * 1024;
    let gib = (1u64 << 30) as f64;
    if wanted("throughput") {
        let (ours, raw) = alternate(
            || async {
                rate(
                    (20_000 * BIG) as f64,
                    pea2pea_stream::<64>(1, 20_000, BIG).await,
                )
            },
            || async { rate((20_000 * BIG) as f64, raw_stream(1, 20_000, BIG).await) },
        )
        .await;
        rows.push(Row {
            workload: "throughput 1->1, 32 KiB",
            unit: "GiB/s",
            ours: ours / gib,
            raw: raw / gib,
            higher_is_better: true,
        });
    }
    if wanted("throughput") {
        let (ours, raw) = alternate(
            || async {
                rate(
                    (10 * 2_000 * BIG) as f64,
                    pea2pea_stream::<64>(10, 2_000, BIG).await,
                )
            },
            || async { rate((10 * 2_000 * BIG) as f64, raw_stream(10, 2_000, BIG).await) },
        )
        .await;
        rows.push(Row {
            workload: "throughput 10->1, 32 KiB",
            unit: "GiB/s",
            ours: ours / gib,
            raw: raw / gib,
            higher_is_better: true,
        });
    }
    if wanted("small") {
        let (ours, raw) = alternate(
            || async { rate(500_000.0, pea2pea_stream::<64>(1, 500_000, 64).await) },
            || async { rate(500_000.0, raw_stream(1, 500_000, 64).await) },
        )
        .await;
        rows.push(Row {
            workload: "small 1->1, 64 B (queue 64, default)",
            unit: "Mmsg/s",
            ours: ours / 1e6,
            raw: raw / 1e6,
            higher_is_better: true,
        });
        // a queue of 128 lets one write carry ~8 KiB, the size at which FramedWrite flushes
        let (ours, raw) = alternate(
            || async { rate(500_000.0, pea2pea_stream::<128>(1, 500_000, 64).await) },
            || async { rate(500_000.0, raw_stream(1, 500_000, 64).await) },
        )
        .await;
        rows.push(Row {
            workload: "small 1->1, 64 B (queue 128)",
            unit: "Mmsg/s",
            ours: ours / 1e6,
            raw: raw / 1e6,
            higher_is_better: true,
        });
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if wanted("pingpong") {
        let (mut ours_rtt, mut raw_rtt) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours_rtt.extend(pea2pea_pingpong(2_000, 64).await);
            raw_rtt.extend(raw_pingpong(2_000, 64).await);
        }
        rows.push(Row {
            workload: "pingpong 64 B, median",
            unit: "µs",
            ours: us(median(&mut ours_rtt)),
            raw: us(median(&mut raw_rtt)),
            higher_is_better: false,
        });
        rows.push(Row {
            workload: "pingpong 64 B, p99",
            unit: "µs",
            ours: us(percentile(&mut ours_rtt, 99.0)),
            raw: us(percentile(&mut raw_rtt, 99.0)),
            higher_is_better: false,
        });
    }
    if wanted("connect") {
        let (ours, raw) = alternate(
            || async { rate(1000.0, pea2pea_connect_burst(1000).await) },
            || async { rate(1000.0, raw_connect_burst(1000).await) },
        )
        .await;
        rows.push(Row {
            workload: "connect, 1000 concurrent",
            unit: "conn/s",
            ours,
            raw,
            higher_is_better: true,
        });
    }
    if wanted("connect") {
        let mut seq = Vec::new();
        for _ in 0..ROUNDS {
            seq.push(rate(200.0, pea2pea_connect_sequential(200).await));
        }
        seq.sort_by(|a, b| a.total_cmp(b));
        rows.push(Row {
            workload: "connect+disconnect, sequential",
            unit: "cycles/s",
            ours: seq[ROUNDS / 2],
            raw: f64::NAN,
            higher_is_better: true,
        });
    }
    if wanted("startup") {
        let (mut up, mut down) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let (u, d) = pea2pea_startup_shutdown().await;
            up.push(u);
            down.push(d);
        }
        rows.push(Row {
            workload: "startup (new + 5 enables + listen)",
            unit: "µs",
            ours: us(median(&mut up)),
            raw: f64::NAN,
            higher_is_better: false,
        });
        rows.push(Row {
            workload: "shutdown",
            unit: "µs",
            ours: us(median(&mut down)),
            raw: f64::NAN,
            higher_is_better: false,
        });
    }
    if wanted("memory") {
        let kib = |b: f64| b / 1024.0;
        rows.push(Row {
            workload: "memory per idle node (1000)",
            unit: "KiB",
            ours: kib(memory_in_child("engine-nodes")),
            raw: kib(memory_in_child("raw-nodes")),
            higher_is_better: false,
        });
        rows.push(Row {
            workload: "memory per idle connection (1000)",
            unit: "KiB",
            ours: kib(memory_in_child("engine-connections")),
            raw: kib(memory_in_child("raw-connections")),
            higher_is_better: false,
        });
    }

    println!("\n{engine} vs raw tokio (medians of {ROUNDS} alternating runs; 2-core machine)\n");
    println!("| workload | unit | {engine} | raw tokio | ratio |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for row in rows {
        let ratio = row.ours / row.raw;
        let ratio = if ratio.is_finite() {
            format!("{ratio:.2}")
        } else {
            "—".into()
        };
        let raw = if row.raw.is_finite() {
            format!("{:.2}", row.raw)
        } else {
            "—".into()
        };
        let _ = row.higher_is_better;
        println!(
            "| {} | {} | {:.2} | {raw} | {ratio} |",
            row.workload, row.unit, row.ours
        );
    }
    println!("\n(total {:.1?})", started.elapsed());
}
