//! Runs every network workload on this engine and on raw tokio, alternating so that both see
//! the same machine, and prints one table. Included by `benches/engine.rs` and by the
//! published-crate comparison, which name the engine they run in `ENGINE`.

use std::{
    pin::Pin,
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
    /// The physical limit of the workload (`limits` rows), or NaN where there is none.
    limit: f64,
    higher_is_better: bool,
}

fn rate(amount: f64, time: Duration) -> f64 {
    amount / time.as_secs_f64()
}

/// One side of a comparison: a workload run that returns its figure.
type Side<'a> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = f64> + 'a>> + 'a>;

fn side<'a, F, A>(mut f: F) -> Side<'a>
where
    F: FnMut() -> A + 'a,
    A: Future<Output = f64> + 'a,
{
    Box::new(move || Box::pin(f()))
}

/// Runs the engine, raw tokio and the physical limit `ROUNDS` times each, alternating, and
/// keeps each side's median (NaN for a side not run).
async fn alternate(mut ours: Side<'_>, mut raw: Side<'_>, mut limit: Side<'_>) -> (f64, f64, f64) {
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        if runs("engine") {
            a.push(ours().await);
        }
        if runs("raw") {
            b.push(raw().await);
        }
        if runs("limit") {
            c.push(limit().await);
        }
    }

    let mid = |v: &mut Vec<f64>| {
        v.sort_by(|x, y| x.total_cmp(y));
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    (mid(&mut a), mid(&mut b), mid(&mut c))
}

/// Whether to run `side` (`engine`, `raw` or `limit`): `PEA2PEA_BENCH_SIDE` names one side
/// to run alone (for profiling); unset, all run.
fn runs(side: &str) -> bool {
    let only = std::env::var("PEA2PEA_BENCH_SIDE").unwrap_or_default();
    only.is_empty() || only == side
}

/// No physical limit is measured for this workload.
fn no_limit<'a>() -> Side<'a> {
    side(|| async { f64::NAN })
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
    // `cargo bench --bench engine -- small pingpong` runs only the workloads named (`small`
    // is both small-message rows, `small-default` the first only; `throughput` is
    // `throughput-1to1` and `throughput-10to1`)
    let only: Vec<&String> = args
        .iter()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let started = Instant::now();
    let mut rows = Vec::new();

    const BIG: usize = 32 * 1024;
    const MIB: usize = 1024 * 1024;
    let gib = (1u64 << 30) as f64;
    if wanted("throughput-1to1") {
        let total = 20_000 * BIG;
        let (ours, raw, limit) = alternate(
            side(|| async { rate(total as f64, pea2pea_stream::<64>(1, 20_000, BIG).await) }),
            side(|| async { rate(total as f64, raw_stream(1, 20_000, BIG).await) }),
            side(|| async { rate(total as f64, limit_blast(total, MIB).await) }),
        )
        .await;
        rows.push(Row {
            workload: "limit: plain-socket blast, 1 MiB writes, no framing",
            unit: "GiB/s",
            ours: f64::NAN,
            raw: f64::NAN,
            limit: limit / gib,
            higher_is_better: true,
        });
        rows.push(Row {
            workload: "throughput 1->1, 32 KiB",
            unit: "GiB/s",
            ours: ours / gib,
            raw: raw / gib,
            limit: limit / gib,
            higher_is_better: true,
        });
    }
    if wanted("throughput-10to1") {
        let total = 10 * 2_000 * BIG;
        let (ours, raw, limit) = alternate(
            side(|| async { rate(total as f64, pea2pea_stream::<64>(10, 2_000, BIG).await) }),
            side(|| async { rate(total as f64, raw_stream(10, 2_000, BIG).await) }),
            side(|| async { rate(total as f64, limit_blast(total, MIB).await) }),
        )
        .await;
        rows.push(Row {
            workload: "throughput 10->1, 32 KiB",
            unit: "GiB/s",
            ours: ours / gib,
            raw: raw / gib,
            limit: limit / gib,
            higher_is_better: true,
        });
    }
    const COUNT: usize = 500_000;
    let n = COUNT as f64;
    if wanted("small-default") {
        let (ours, raw, limit) = alternate(
            side(|| async { rate(n, pea2pea_stream::<64>(1, COUNT, 64).await) }),
            side(|| async { rate(n, raw_stream(1, COUNT, 64).await) }),
            side(|| async { rate(n, limit_record_blast(COUNT, 64, 256 * 1024).await) }),
        )
        .await;
        rows.push(Row {
            workload: "limit: 68-byte records framed in advance, 256 KiB writes",
            unit: "Mmsg/s",
            ours: f64::NAN,
            raw: f64::NAN,
            limit: limit / 1e6,
            higher_is_better: true,
        });
        rows.push(Row {
            workload: "small 1->1, 64 B (queue 64, default)",
            unit: "Mmsg/s",
            ours: ours / 1e6,
            raw: raw / 1e6,
            limit: limit / 1e6,
            higher_is_better: true,
        });
    }
    if wanted("small-queue128") {
        // a queue of 128 lets one write carry ~8 KiB, the size at which FramedWrite flushes
        let (ours, raw, limit) = alternate(
            side(|| async { rate(n, pea2pea_stream::<128>(1, COUNT, 64).await) }),
            side(|| async { rate(n, raw_stream(1, COUNT, 64).await) }),
            side(|| async { rate(n, limit_record_blast(COUNT, 64, 256 * 1024).await) }),
        )
        .await;
        rows.push(Row {
            workload: "small 1->1, 64 B (queue 128)",
            unit: "Mmsg/s",
            ours: ours / 1e6,
            raw: raw / 1e6,
            limit: limit / 1e6,
            higher_is_better: true,
        });
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    // a side that was not run (PEA2PEA_BENCH_SIDE) has no times: NaN, printed as "—"
    let us_at = |times: &mut Vec<Duration>, p: f64| {
        if times.is_empty() {
            f64::NAN
        } else {
            us(percentile(times, p))
        }
    };
    if wanted("pingpong") {
        let (mut ours_rtt, mut raw_rtt, mut limit_rtt) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            // the client loops run in spawned tasks, as an application's do: on the
            // `block_on` thread, each round trip would pay a cross-thread wake-up of that thread
            if runs("engine") {
                ours_rtt.extend(spawned(pea2pea_pingpong(2_000, 64)).await);
            }
            if runs("raw") {
                raw_rtt.extend(spawned(raw_pingpong(2_000, 64)).await);
            }
            if runs("limit") {
                limit_rtt.extend(limit_pingpong(2_000, 68).await);
            }
        }
        rows.push(Row {
            workload: "limit: pingpong 68 B, one blocking thread, both ends, median",
            unit: "µs",
            ours: f64::NAN,
            raw: f64::NAN,
            limit: us_at(&mut limit_rtt, 50.0),
            higher_is_better: false,
        });
        rows.push(Row {
            workload: "pingpong 64 B, median",
            unit: "µs",
            ours: us_at(&mut ours_rtt, 50.0),
            raw: us_at(&mut raw_rtt, 50.0),
            limit: us_at(&mut limit_rtt, 50.0),
            higher_is_better: false,
        });
        rows.push(Row {
            workload: "pingpong 64 B, p99",
            unit: "µs",
            ours: us_at(&mut ours_rtt, 99.0),
            raw: us_at(&mut raw_rtt, 99.0),
            limit: us_at(&mut limit_rtt, 99.0),
            higher_is_better: false,
        });
    }
    if wanted("connect") {
        let (ours, raw, _) = alternate(
            side(|| async { rate(1000.0, pea2pea_connect_burst(1000).await) }),
            side(|| async { rate(1000.0, raw_connect_burst(1000).await) }),
            no_limit(),
        )
        .await;
        rows.push(Row {
            workload: "connect, 1000 concurrent",
            unit: "conn/s",
            ours,
            raw,
            limit: f64::NAN,
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
            limit: f64::NAN,
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
            limit: f64::NAN,
            higher_is_better: false,
        });
        rows.push(Row {
            workload: "shutdown",
            unit: "µs",
            ours: us(median(&mut down)),
            raw: f64::NAN,
            limit: f64::NAN,
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
            limit: f64::NAN,
            higher_is_better: false,
        });
        rows.push(Row {
            workload: "memory per idle connection (1000)",
            unit: "KiB",
            ours: kib(memory_in_child("engine-connections")),
            raw: kib(memory_in_child("raw-connections")),
            limit: f64::NAN,
            higher_is_better: false,
        });
    }

    println!(
        "\n{engine} vs raw tokio and the physical limit (medians of {ROUNDS} alternating runs; \
         2-core machine)\n"
    );
    println!("| workload | unit | {engine} | raw tokio | ratio | limit | % of limit |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: |");
    let cell = |x: f64| {
        if x.is_finite() {
            format!("{x:.2}")
        } else {
            "—".into()
        }
    };
    for row in rows {
        // how close the engine comes to the limit: 100% is the limit itself
        let of_limit = if row.higher_is_better {
            row.ours / row.limit
        } else {
            row.limit / row.ours
        } * 100.0;
        let of_limit = if of_limit.is_finite() {
            format!("{of_limit:.0}%")
        } else {
            "—".into()
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {of_limit} |",
            row.workload,
            row.unit,
            cell(row.ours),
            cell(row.raw),
            cell(row.ours / row.raw),
            cell(row.limit),
        );
    }
    println!("\n(total {:.1?})", started.elapsed());
}

/// Runs `work` in a task of the runtime's workers, and waits for it.
async fn spawned<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    tokio::spawn(work).await.expect("a bench workload panicked")
}
