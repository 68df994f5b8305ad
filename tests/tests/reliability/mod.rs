//! Helpers shared by the reliability suites (chaos, hostile, leak_cycles, fuzz_props): bounded
//! waits, resource gauges (open file descriptors, live tokio tasks, live heap bytes), a seeded
//! RNG, and raw loopback sockets bound to chosen source IPs.
//!
//! Each suite includes this file with `mod reliability;`; not every suite uses every helper.

#![allow(dead_code)]

pub mod peer;
pub mod types;

use std::{
    future::Future,
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use pea2pea::Config;
use tokio::net::{TcpSocket, TcpStream};

/// Polls `cond` (every millisecond at first, then every 10ms) until it holds; panics with
/// `what` after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        let waited = start.elapsed();
        assert!(
            waited < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        let pause = if waited < Duration::from_millis(100) {
            1
        } else {
            10
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Polls `cond` every 10ms until it holds or `limit` passes; says whether it held.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Awaits `fut`, panicking with `what` if it takes longer than `limit` (a wedged operation).
pub async fn bounded<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!("wedged: {what} did not finish within {limit:?}"),
    }
}

/// The default configuration (the tests build the engine with its `test` profile) with a
/// loopback listener on a free port.
pub fn loopback_config() -> Config {
    Config {
        listener_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    }
}

/// `127.0.0.<last>`.
pub fn loopback_ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A TCP socket bound to `ip` on a free port, ready for `connect` or `connect_using_socket`.
pub fn socket_on(ip: IpAddr) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(ip, 0))?;
    Ok(socket)
}

/// Opens a raw TCP connection to `addr` from `ip`, bounded by 5s.
pub async fn raw_connect_from(ip: IpAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = socket_on(ip)?;
    match tokio::time::timeout(Duration::from_secs(5), socket.connect(addr)).await {
        Ok(stream) => stream,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "raw connect")),
    }
}

/// Reads until EOF or an error (a reset counts as closed) and says whether the peer closed the
/// connection within `limit`. Bytes the node may have sent are discarded.
pub async fn closed_by_peer(stream: &mut TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut sink = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_all).await.is_ok()
}

/// The number of this process's open file descriptors.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// The number of live tasks of the current tokio runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// SplitMix64: a tiny, fast, seedable generator, so that a failing run can be replayed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// A derived generator for a sub-task, so that tasks draw independent streams.
    pub fn fork(&mut self) -> Self {
        Self(self.next_u64())
    }
}

/// A seed from the environment variable `var` (decimal or 0x-hex), or one from the clock;
/// printed either way so that a failing run can be replayed.
pub fn seed_from_env(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            }
        })
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x5eed)
        });
    eprintln!("{var}={seed}");
    seed
}

/// Live heap bytes according to a `stats_alloc` counting allocator (its byte counts already
/// include what reallocations grew or shrank by).
pub fn live_bytes(stats: stats_alloc::Stats) -> isize {
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}
