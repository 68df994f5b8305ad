//! Bulk uploads into one collector: several uploaders each stream a large body in 64 KiB
//! chunks to one node, as fast as their queues take them. The collector checks that each
//! uploader's chunks arrive whole and in order, and that the totals match what each uploader
//! says it sent. The run prints the rate, how often a full queue made an uploader wait, and the
//! process's memory: its peak resident size grows by about two batches per uploader (a batch
//! holds 8 × the write buffer, 512 KiB by default), not by a queue's depth of encoded chunks.
//!
//! ```text
//! cargo run --release --example bulk_upload -- [--uploaders N] [--mib M]
//! ```
//!
//! The sending loop is the one a program that must not lose data writes: `send_fast` while the
//! queue has room (it never waits), and `send(..).await` when it is full (it waits for room,
//! then for the write), so the uploader runs at the collector's pace.

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
use pea2pea_examples::{Args, lock, resident_memory, wait_until};

// ---- the protocol ----

#[derive(Message, Debug, Clone)]
enum Upload {
    /// Part `seq` of an uploader's body.
    Chunk { seq: u64, data: Bytes },
    /// The uploader's last message: what it sent.
    Done { chunks: u64, bytes: u64 },
}

const CHUNK: usize = 64 * 1024;

// ---- the collector ----

/// What the collector saw of one uploader.
#[derive(Default, Debug, Clone)]
struct Received {
    chunks: u64,
    bytes: u64,
    /// Chunks whose sequence number was not the next one.
    out_of_order: u64,
    /// Chunks whose size or content was not what was sent.
    damaged: u64,
    /// What the uploader said it sent, once it said so.
    done: Option<(u64, u64)>,
}

#[pea2pea::node]
#[derive(Clone)]
struct Collector {
    node: Node,
    uploads: Arc<Mutex<HashMap<SocketAddr, Received>>>,
}

protocol! {
    Collector reads Upload over length_delimited(max_frame = 128 KiB) {
        on Upload::Chunk { seq, data } from addr => self.chunk(addr, seq, &data),
        on Upload::Done { chunks, bytes } from addr => {
            lock(&self.uploads).entry(addr).or_default().done = Some((chunks, bytes));
        }
    }
}

impl Collector {
    fn chunk(&self, from: SocketAddr, seq: u64, data: &[u8]) {
        let mut uploads = lock(&self.uploads);
        let upload = uploads.entry(from).or_default();
        if seq != upload.chunks {
            upload.out_of_order += 1;
        }
        if data.len() != CHUNK || data.iter().any(|&b| b != pattern(seq)) {
            upload.damaged += 1;
        }
        upload.chunks += 1;
        upload.bytes += data.len() as u64;
    }
}

/// The byte that fills chunk `seq`: a chunk in the wrong place or with foreign bytes shows.
fn pattern(seq: u64) -> u8 {
    (seq % PATTERNS) as u8
}

const PATTERNS: u64 = 13;

// ---- an uploader: it only sends ----

#[pea2pea::node]
#[derive(Clone)]
struct Uploader {
    node: Node,
}

protocol! {
    Uploader writes Upload over length_delimited(max_frame = 128 KiB) {}
}

impl Uploader {
    /// Sends `chunks` chunks and then `Done`; returns how many times a full queue made it
    /// wait.
    /// `bodies` holds one chunk per pattern byte, shared by every chunk that uses it (a
    /// `Bytes` clone), so that the program's own data does not hide the library's memory.
    async fn upload(&self, to: SocketAddr, chunks: u64, bodies: &[Bytes]) -> io::Result<u64> {
        let mut waits = 0;
        for seq in 0..chunks {
            let data = bodies[pattern(seq) as usize].clone();
            let chunk = Upload::Chunk { seq, data };
            match self.send_fast(to, chunk.clone()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::QuotaExceeded => {
                    waits += 1;
                    self.send(to, chunk).await?;
                }
                Err(e) => return Err(e),
            }
        }
        let bytes = chunks * CHUNK as u64;
        self.send(to, Upload::Done { chunks, bytes }).await?;
        Ok(waits)
    }
}

fn config(name: &str) -> Config {
    Config {
        name: Some(name.into()),
        ..Config::loopback()
    }
}

/// The process's peak resident size so far, in bytes (Linux only).
fn peak_resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let usage = "bulk_upload [--uploaders N] [--mib M]";
    let args = Args::parse_or_exit(&["uploaders", "mib"], usage);
    let uploaders: usize = args.get("uploaders", 8).max(1);
    let mib_each: u64 = args.get("mib", 256).max(1);
    match run(uploaders, mib_each).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bulk_upload failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(uploaders: usize, mib_each: u64) -> io::Result<bool> {
    let chunks = mib_each * 1024 * 1024 / CHUNK as u64;
    println!(
        "bulk_upload: {uploaders} uploaders x {mib_each} MiB in 64 KiB chunks to one collector"
    );
    let collector = Collector {
        node: Node::new(config("collector")),
        uploads: Default::default(),
    };
    let addr = collector.start().await?;
    let mut nodes = Vec::new();
    for i in 0..uploaders {
        let uploader = Uploader {
            node: Node::new(config(&format!("uploader-{i}"))),
        };
        uploader.enable_protocols().await;
        uploader.node().connect(addr).await?;
        nodes.push(uploader);
    }
    let bodies: Arc<[Bytes]> = (0..PATTERNS)
        .map(|b| Bytes::from(vec![b as u8; CHUNK]))
        .collect();
    let resident_before = resident_memory().unwrap_or(0);

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for uploader in nodes.clone() {
        let bodies = bodies.clone();
        tasks.spawn(async move { uploader.upload(addr, chunks, &bodies).await });
    }
    let mut waits = 0;
    while let Some(done) = tasks.join_next().await {
        waits += done.map_err(io::Error::other)??;
    }
    let all_in = wait_until(Duration::from_secs(60), || {
        let uploads = lock(&collector.uploads);
        uploads.len() == uploaders && uploads.values().all(|u| u.done.is_some())
    })
    .await;
    let elapsed = started.elapsed();
    let peak = peak_resident_memory().unwrap_or(0);

    let uploads = lock(&collector.uploads).clone();
    let total: u64 = uploads.values().map(|u| u.bytes).sum();
    println!(
        "{:.0} MiB in {elapsed:.2?}: {:.2} GiB/s; a full queue made an uploader wait {waits} times",
        mib(total),
        mib(total) / 1024.0 / elapsed.as_secs_f64(),
    );
    println!(
        "memory: resident {:.1} MiB before the uploads, peak {:.1} MiB ({:.1} MiB more, {:.2} MiB per uploader)",
        mib(resident_before),
        mib(peak),
        mib(peak.saturating_sub(resident_before)),
        mib(peak.saturating_sub(resident_before)) / uploaders as f64,
    );
    let mut whole = all_in;
    for (from, upload) in &uploads {
        let complete = upload.done == Some((upload.chunks, upload.bytes))
            && upload.chunks == chunks
            && upload.out_of_order == 0
            && upload.damaged == 0;
        whole &= complete;
        if !complete {
            println!("  from {from}: {upload:?} (expected {chunks} chunks)");
        }
    }
    for node in nodes.iter().map(|u| u.node()).chain([collector.node()]) {
        node.shut_down().await;
    }
    if whole {
        println!("every upload arrived whole and in order");
    } else {
        println!("some uploads were incomplete or damaged");
    }
    Ok(whole)
}
