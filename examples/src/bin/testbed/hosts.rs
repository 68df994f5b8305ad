//! The swarm members, one process per host namespace, and what their status lines say.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin},
};

use pea2pea_examples::lock;

use crate::net::Net;

/// The port every member listens on, on its host's address.
pub const PORT: u16 = 7000;

/// The last `status` line of a member, and when it heard each rumour.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    pub listening: bool,
    pub connected: usize,
    pub rejected: u64,
    pub errors: u64,
    pub heard: HashMap<u32, Instant>,
    pub exited: bool,
}

/// A member running in host `index`'s namespace.
pub struct Host {
    pub addr: SocketAddr,
    child: Child,
    stdin: Option<ChildStdin>,
    seen: Arc<Mutex<Seen>>,
}

impl Host {
    /// Starts the member of host `i`, joining through `seed` (none for the seed itself).
    pub fn spawn(
        net: &Net,
        i: usize,
        swarm: &Path,
        seed: Option<SocketAddr>,
        max_per_ip: u16,
    ) -> std::io::Result<Self> {
        let addr = SocketAddr::from((Net::addr(i), PORT));
        let mut command = net.command(i, swarm);
        command
            .args(["--listen", &addr.to_string()])
            .args(["--max-per-ip", &max_per_ip.to_string()]);
        if let Some(seed) = seed {
            command.args(["--join", &seed.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        tokio::spawn(follow(lines, seen.clone()));
        Ok(Self {
            addr,
            stdin: child.stdin.take(),
            child,
            seen,
        })
    }

    /// What the member has said so far.
    pub fn seen(&self) -> Seen {
        lock(&self.seen).clone()
    }

    /// Sends the member a command line.
    pub async fn tell(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await
    }

    /// Asks the member to quit; kills it if it has not within 5 s.
    pub async fn stop(&mut self) {
        let _ = self.tell("quit").await;
        drop(self.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Reads a member's lines until it exits, keeping what they say in `seen`.
async fn follow(
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: Arc<Mutex<Seen>>,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.split_whitespace();
        let mut seen = lock(&seen);
        match words.next() {
            Some("listening") => seen.listening = true,
            Some("heard") => {
                if let Some(Ok(id)) = words.next().map(str::parse) {
                    seen.heard.entry(id).or_insert_with(Instant::now);
                }
            }
            Some("status") => {
                for word in words {
                    match word.split_once('=') {
                        Some(("connected", v)) => seen.connected = v.parse().unwrap_or(0),
                        Some(("rejected", v)) => seen.rejected = v.parse().unwrap_or(0),
                        Some(("errors", v)) => seen.errors = v.parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    lock(&seen).exited = true;
}
