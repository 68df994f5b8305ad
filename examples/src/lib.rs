//! Helpers shared by the examples: logging, a tiny argument parser, bounded waits, and process
//! measurements.

use std::{
    collections::HashMap,
    io::IsTerminal,
    str::FromStr,
    time::{Duration, Instant},
};

use tracing_subscriber::filter::LevelFilter;

/// Logs to stderr at the level given by `RUST_LOG` (default: warnings only).
pub fn start_logger() {
    start_logger_at("warn");
}

/// Logs to stderr at the level given by `RUST_LOG` (`error`, `warn`, `info`, `debug`, `trace`
/// or `off`), or else at `default`. (A single level keeps the examples' build light:
/// per-module filters would bring in a regex engine.)
pub fn start_logger_at(default: &str) {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|level| level.parse::<LevelFilter>().ok())
        .or_else(|| default.parse().ok())
        .unwrap_or(LevelFilter::WARN);
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// `--key value` arguments, checked against the keys an example accepts.
pub struct Args(HashMap<String, String>);

impl Args {
    /// Parses the process's arguments; fails on an unknown key or a key without a value.
    pub fn parse(known: &[&str]) -> Result<Self, String> {
        let mut map = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let key = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            if !known.contains(&key) {
                return Err(format!("unknown option --{key}"));
            }
            let value = args
                .next()
                .ok_or_else(|| format!("--{key} needs a value"))?;
            map.insert(key.to_owned(), value);
        }
        Ok(Self(map))
    }

    /// The value of `--key`, or `default`; exits with a message if it does not parse.
    pub fn get<T: FromStr>(&self, key: &str, default: T) -> T {
        match self.0.get(key) {
            None => default,
            Some(value) => value.parse().unwrap_or_else(|_| {
                eprintln!("--{key} {value:?} is not a valid value");
                std::process::exit(2)
            }),
        }
    }

    /// Whether `--key` was given.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The raw value of `--key`, or `default`.
    pub fn get_str<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.0.get(key).map(String::as_str).unwrap_or(default)
    }
}

/// Polls `cond` every 5 ms until it holds (`true`) or `limit` passes (`false`).
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// The process's resident memory in bytes (Linux only).
pub fn resident_memory() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The soft limit on open files (Linux only).
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Raises the soft limit on open files towards `needed`, as far as the hard limit allows, and
/// returns the limit now in force (which may still be below `needed`).
pub fn raise_open_file_limit(needed: u64) -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(needed)
}

/// Compiles the code blocks of README.md as doc tests, so the README cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
