//! The network: one namespace per host, each with a veth pair to a bridge that lives in a
//! namespace of its own. Nothing is created in the namespace the testbed is started from, so
//! the host machine's links, addresses and routes are never touched, and deleting the
//! namespaces removes everything (a veth pair goes with either of its ends).

use std::{net::Ipv4Addr, process::Command};

/// The private range the hosts use; refused if the machine already uses it.
pub const SUBNET: &str = "10.77.0";

/// The namespaces of one run, removed (with every process still inside) when dropped.
pub struct Net {
    prefix: String,
    hosts: usize,
    /// Namespaces created so far, in order.
    created: Vec<String>,
}

impl Net {
    /// Creates the bridge and `hosts` hosts, or removes what it made and says why it could not.
    pub fn create(prefix: &str, hosts: usize) -> Result<Self, String> {
        range_is_free()?;
        let existing = run("ip", &["netns", "list"])?;
        if existing.lines().any(|line| line.starts_with(prefix)) {
            return Err(format!("namespaces named {prefix}* exist already"));
        }
        let mut net = Self {
            prefix: prefix.to_owned(),
            hosts,
            created: Vec::new(),
        };
        let bridge = net.bridge_ns();
        net.add_namespace(&bridge)?;
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
        for i in 0..hosts {
            let host = net.host_ns(i);
            net.add_namespace(&host)?;
            let port = format!("v{i}");
            // the pair is made inside the bridge's namespace, its other end moved at once
            ip(&[
                "-n", &bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &host,
            ])?;
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0", "up"])?;
            let addr = format!("{}/24", Self::addr(i));
            ip(&["-n", &host, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &host, "link", "set", "eth0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    pub fn hosts(&self) -> usize {
        self.hosts
    }

    /// The address of host `i` (10.77.0.1 for host 0).
    pub fn addr(i: usize) -> Ipv4Addr {
        format!("{SUBNET}.{}", i + 1)
            .parse()
            .expect("at most 250 hosts")
    }

    pub fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    pub fn host_ns(&self, i: usize) -> String {
        format!("{}-h{i}", self.prefix)
    }

    /// A command that runs `program` inside host `i`'s namespace.
    pub fn command(&self, i: usize, program: &std::path::Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("ip");
        command
            .args(["netns", "exec", &self.host_ns(i)])
            .arg(program);
        command
    }

    /// Takes host `i`'s link to the bridge down or up (its side in the bridge's namespace).
    pub fn set_link(&self, i: usize, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        ip(&[
            "-n",
            &self.bridge_ns(),
            "link",
            "set",
            &format!("v{i}"),
            state,
        ])
    }

    /// Limits host `i`'s link to `rate` (a tc rate, `2mbit`) both ways with a `tbf` qdisc on
    /// each end, or removes the limit (`None`).
    pub fn limit(&self, i: usize, rate: Option<&str>) -> Result<(), String> {
        let ends = [
            (self.bridge_ns(), format!("v{i}")),
            (self.host_ns(i), "eth0".into()),
        ];
        for (ns, dev) in &ends {
            match rate {
                Some(rate) => tc(&[
                    "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst",
                    "4kb", "latency", "200ms",
                ])?,
                None => tc(&["-n", ns, "qdisc", "del", "dev", dev, "root"])?,
            }
        }
        Ok(())
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_owned());
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            // any process still inside first: a namespace outlives `ip netns del` while one
            // of its processes runs, and so do its links
            if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("testbed: could not remove namespace {ns}: {e}");
            }
        }
    }
}

/// Refuses a range the machine already has an address or a route in.
fn range_is_free() -> Result<(), String> {
    let taken = |out: String| out.contains(&format!(" {SUBNET}."));
    if taken(run("ip", &["-4", "-o", "addr", "show"])?)
        || taken(format!(
            " {}",
            run("ip", &["-4", "route", "show", "table", "all"])?
        ))
    {
        return Err(format!(
            "{SUBNET}.0/24 is in use on this machine (an address or a route); the testbed uses \
             that range only inside its own namespaces and will not share it"
        ));
    }
    Ok(())
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args).map(drop)
}

fn tc(args: &[&str]) -> Result<(), String> {
    run("tc", args).map(drop)
}

/// Runs a command to completion; its stdout, or an error with its stderr.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
