//! Helpers shared by the examples: logging, a tiny argument parser, bounded waits, process
//! measurements, the Noise-encrypted stream of `noise` and `libp2p`, and the libp2p-speaking
//! node of `libp2p` (which its test drives too).

use std::{
    collections::HashMap,
    io::IsTerminal,
    str::FromStr,
    time::{Duration, Instant},
};

use tracing_subscriber::filter::LevelFilter;

pub mod libp2p_peer;
pub mod noise_stream;

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

    /// Parses the process's arguments, or prints what is wrong and `usage: {usage}` and exits
    /// with status 2.
    pub fn parse_or_exit(known: &[&str], usage: &str) -> Self {
        Self::parse(known).unwrap_or_else(|e| {
            eprintln!("{e}\nusage: {usage}");
            std::process::exit(2)
        })
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

/// Locks a mutex, taking the value even if a panicking thread poisoned it (the examples'
/// state stays usable: each update is a single step).
pub fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// What [`ensure_open_files`] did to the open-file limit (`RLIMIT_NOFILE`).
#[derive(Debug, Clone, Copy)]
pub struct FileLimit {
    /// Soft and hard limits before.
    pub before: (u64, u64),
    /// Soft and hard limits now.
    pub after: (u64, u64),
    /// How many files were asked for.
    pub needed: u64,
}

impl FileLimit {
    /// Whether the soft limit now covers what was asked for.
    pub fn enough(&self) -> bool {
        self.after.0 >= self.needed
    }
}

impl std::fmt::Display for FileLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((soft0, hard0), (soft1, hard1)) = (self.before, self.after);
        write!(f, "open files: {} needed; soft limit ", self.needed)?;
        match soft1 > soft0 {
            true => write!(f, "raised from {soft0} to {soft1}")?,
            false => write!(f, "{soft0}")?,
        }
        match hard1 > hard0 {
            true => write!(
                f,
                ", hard limit raised from {hard0} to {hard1} (privileged)"
            )?,
            false => write!(f, ", hard limit {hard0}")?,
        }
        if !self.enough() {
            write!(
                f,
                " — NOT enough: raising the hard limit needs CAP_SYS_RESOURCE, which this \
                 process lacks (containers often drop it, even for root); raise it outside \
                 (`ulimit -Hn {}` where permitted, or `nofile` in /etc/security/limits.conf)",
                self.needed
            )?;
        }
        Ok(())
    }
}

/// Raises this process's open-file limit to `needed` if it can: the soft limit up to the hard
/// one, and the hard limit as well when the process is allowed to (root, or
/// `CAP_SYS_RESOURCE`, up to the system's `fs.nr_open`). Never lowers a limit. Says what it
/// did; check [`FileLimit::enough`].
pub fn ensure_open_files(needed: u64) -> std::io::Result<FileLimit> {
    use rlimit::{Resource, getrlimit, setrlimit};
    let before = getrlimit(Resource::NOFILE)?;
    if before.0 < needed && before.1 < needed {
        // an unprivileged process gets EPERM here, and keeps its limits
        let _ = setrlimit(Resource::NOFILE, needed, needed);
    }
    let _ = rlimit::increase_nofile_limit(needed);
    Ok(FileLimit {
        before,
        after: getrlimit(Resource::NOFILE)?,
        needed,
    })
}

/// Reads a kernel setting under /proc/sys (such as `net/core/somaxconn`), trimmed.
pub fn sysctl(path: &str) -> Option<String> {
    let value = std::fs::read_to_string(format!("/proc/sys/{path}")).ok()?;
    Some(value.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Compiles the code blocks of README.md as doc tests, so the README cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
