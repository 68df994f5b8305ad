//! What the testbed does with its hosts, in order: converge, partition and heal, a slow link,
//! per-IP limits (and hole punching across hosts, when that example is built). Each step
//! prints its line of the summary, or fails with what it waited for. Every wait is bounded.

use std::{
    net::SocketAddr,
    process::Stdio,
    time::{Duration, Instant},
};

use crate::{
    Setup,
    hosts::{Host, Seen},
    net::Net,
};

type Outcome<T = ()> = Result<T, String>;

/// The rate of the limited link in the slow-link step (as tc writes it, and in bits/s), and
/// the size of the rumour it carries: big enough to take a while at that rate, small enough
/// that the copies from every peer arrive within the members' 4 s idle timeout.
const SLOW_RATE: &str = "2mbit";
const SLOW_RATE_BITS: f64 = 2e6;
const BIG_RUMOUR: usize = 64 * 1024;

pub async fn run(net: &Net, setup: &Setup, members: &mut Vec<Host>) -> Outcome {
    let seed = SocketAddr::from((Net::addr(0), crate::hosts::PORT));
    for i in 0..net.hosts() {
        let joins = (i > 0).then_some(seed);
        let member = Host::spawn(net, i, &setup.swarm, joins, setup.max_per_ip)
            .map_err(|e| format!("could not start the member of host {i}: {e}"))?;
        members.push(member);
    }
    let mut rumours = 0..;
    converge(members, &mut rumours).await?;
    partition(net, members, &mut rumours).await?;
    slow_link(net, members, &mut rumours).await?;
    per_ip_limit(net, setup, members).await?;
    match &setup.hole_punching {
        Some(program) => hole_punching(net, program).await?,
        None => println!("  hole punch    skipped (the hole_punching example is not built)"),
    }
    Ok(())
}

/// Polls what the members said every 20 ms until `done` holds; fails after `limit`, or at once
/// if a member has exited.
async fn wait_for(
    members: &[Host],
    what: &str,
    limit: Duration,
    mut done: impl FnMut(&[Seen]) -> bool,
) -> Outcome<Duration> {
    let started = Instant::now();
    loop {
        let seen: Vec<Seen> = members.iter().map(Host::seen).collect();
        if let Some(gone) = seen.iter().position(|s| s.exited) {
            return Err(format!(
                "the member of host {gone} exited while waiting for {what}"
            ));
        }
        if done(&seen) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            let connected: Vec<_> = seen.iter().map(|s| s.connected).collect();
            return Err(format!(
                "no {what} within {limit:?} (members connected per host: {connected:?})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a rumour at host `from`; returns its id and when it started.
async fn start_rumour(
    members: &mut [Host],
    from: usize,
    size: usize,
    ids: &mut std::ops::RangeFrom<u32>,
) -> Outcome<(u32, Instant)> {
    let id = ids.next().expect("endless");
    let started = Instant::now();
    members[from]
        .tell(&format!("rumour {id} {size}"))
        .await
        .map_err(|e| format!("could not tell host {from} to start a rumour: {e}"))?;
    Ok((id, started))
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn converge(members: &mut [Host], ids: &mut std::ops::RangeFrom<u32>) -> Outcome {
    let n = members.len();
    let limit = Duration::from_secs(30 + n as u64);
    wait_for(members, "member listening everywhere", limit, |s| {
        s.iter().all(|s| s.listening)
    })
    .await?;
    let took = wait_for(members, "full mesh", limit, |s| {
        s.iter().all(|s| s.connected == n - 1)
    })
    .await?;
    println!(
        "  converged     {n} members joined through host 0 and formed a full mesh ({} connections) in {}",
        n * (n - 1) / 2,
        ms(took)
    );
    let (id, started) = start_rumour(members, 0, 64, ids).await?;
    wait_for(members, "rumour everywhere", limit, |s| {
        s.iter().all(|s| s.heard.contains_key(&id))
    })
    .await?;
    println!(
        "  rumour        from host 0 reached all {n} hosts in {}",
        ms(started.elapsed())
    );
    Ok(())
}

async fn partition(net: &Net, members: &mut [Host], ids: &mut std::ops::RangeFrom<u32>) -> Outcome {
    let n = members.len();
    let half = n / 2;
    for i in half..n {
        net.set_link(i, false)?;
    }
    let limit = Duration::from_secs(30);
    let took = wait_for(members, "partition seen by the members", limit, |s| {
        s[..half].iter().all(|s| s.connected == half - 1)
            && s[half..].iter().all(|s| s.connected == 0)
    })
    .await?;
    println!(
        "  partition     links of hosts {half}..{} down: after {} the {half} others kept a mesh of their own, the {} cut off had no peer",
        n - 1,
        ms(took),
        n - half
    );
    let (id, _) = start_rumour(members, 0, 64, ids).await?;
    wait_for(members, "rumour in the connected half", limit, |s| {
        s[..half].iter().all(|s| s.heard.contains_key(&id))
    })
    .await?;
    // the cut-off hosts have no link at all; a second shows that nothing reaches them
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reached = members
        .iter()
        .filter(|m| m.seen().heard.contains_key(&id))
        .count();
    if reached != half {
        return Err(format!(
            "a rumour crossed the partition ({reached} hosts heard it)"
        ));
    }
    println!("                a rumour started at host 0 meanwhile reached {reached}/{n} hosts");
    for i in half..n {
        net.set_link(i, true)?;
    }
    let took = wait_for(
        members,
        "healed mesh with the rumour everywhere",
        limit,
        |s| {
            s.iter()
                .all(|s| s.connected == n - 1 && s.heard.contains_key(&id))
        },
    )
    .await?;
    println!(
        "  healed        links up: the members redialled, full mesh again and that rumour at all {n} hosts in {}",
        ms(took)
    );
    Ok(())
}

/// When each host heard rumour `id`, relative to `started`.
fn delays(members: &[Host], id: u32, started: Instant) -> Vec<Duration> {
    let heard = |m: &Host| m.seen().heard.get(&id).map(|at| at.duration_since(started));
    members
        .iter()
        .map(|m| heard(m).unwrap_or_default())
        .collect()
}

async fn slow_link(net: &Net, members: &mut [Host], ids: &mut std::ops::RangeFrom<u32>) -> Outcome {
    let n = members.len();
    let slow = n - 1;
    let limit = Duration::from_secs(60);
    let everywhere = |id| move |s: &[Seen]| s.iter().all(|s| s.heard.contains_key(&id));
    // the same rumour size without a limit first, for comparison
    let (id, started) = start_rumour(members, 0, BIG_RUMOUR, ids).await?;
    wait_for(members, "big rumour everywhere", limit, everywhere(id)).await?;
    let free = delays(members, id, started)
        .into_iter()
        .max()
        .unwrap_or_default();

    net.limit(slow, Some(SLOW_RATE))?;
    let (id, started) = start_rumour(members, 0, BIG_RUMOUR, ids).await?;
    let result = wait_for(
        members,
        "big rumour over the slow link",
        limit,
        everywhere(id),
    )
    .await;
    net.limit(slow, None)?;
    result?;
    let mut took = delays(members, id, started);
    let slowed = took.remove(slow);
    let others = took.into_iter().max().unwrap_or_default();
    println!(
        "  slow link     tbf {SLOW_RATE} both ways on host {slow}: a {} KiB rumour reached it in {} (at least {} at that rate), the {} others within {} (all within {} without the limit)",
        BIG_RUMOUR / 1024,
        ms(slowed),
        ms(Duration::from_secs_f64(
            BIG_RUMOUR as f64 * 8.0 / SLOW_RATE_BITS
        )),
        n - 1,
        ms(others),
        ms(free)
    );
    if others >= slowed {
        return Err("the hosts with free links waited for the limited one".into());
    }
    Ok(())
}

/// What a probe process reported.
struct Probe {
    accepted: usize,
    refused: usize,
}

/// Opens `connections` plain connections from host `from` to `target` and says how many the
/// member there admitted.
async fn probe(
    net: &Net,
    setup: &Setup,
    from: usize,
    target: SocketAddr,
    connections: usize,
) -> Outcome<Probe> {
    let output = net
        .command(from, &setup.swarm)
        .args([
            "--probe",
            &target.to_string(),
            "--connections",
            &connections.to_string(),
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .map_err(|_| format!("the probe from host {from} did not finish in 60 s"))?
        .map_err(|e| format!("could not run the probe from host {from}: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    match (field("accepted"), field("refused"), field("unknown")) {
        (Some(accepted), Some(refused), Some(0)) => Ok(Probe { accepted, refused }),
        _ => Err(format!("the probe from host {from} said {:?}", text.trim())),
    }
}

async fn per_ip_limit(net: &Net, setup: &Setup, members: &mut [Host]) -> Outcome {
    let n = members.len();
    let (target, flooder, other) = (0, 1, 2);
    let target_addr = members[target].addr;
    let max = usize::from(setup.max_per_ip);
    let before = members[target].seen().rejected;
    // the flooder's member already holds one connection with the target
    let opened = max + 2;
    let (flood, single) = tokio::join!(
        probe(net, setup, flooder, target_addr, opened),
        probe(net, setup, other, target_addr, 1)
    );
    let (flood, single) = (flood?, single?);
    let counted =
        |s: &[Seen]| s[target].rejected - before == (flood.refused + single.refused) as u64;
    let limit = Duration::from_secs(10);
    wait_for(members, "rejections counted", limit, counted).await?;
    wait_for(members, "mesh intact", limit, |s| {
        s.iter().all(|s| s.connected == n - 1)
    })
    .await?;
    println!(
        "  per-IP limit  {} opened {opened} connections to {target_addr} (limit {max} per IP, one in use by its member): {} admitted, {} refused, {} rejections counted there; {} was admitted meanwhile and the mesh kept every link",
        Net::addr(flooder),
        flood.accepted,
        flood.refused,
        members[target].seen().rejected - before,
        Net::addr(other),
    );
    if flood.accepted != max - 1 || flood.refused != opened - (max - 1) || single.accepted != 1 {
        return Err(format!(
            "expected {} admitted and {} refused from {}, and {} admitted",
            max - 1,
            opened - (max - 1),
            Net::addr(flooder),
            Net::addr(other)
        ));
    }
    Ok(())
}

/// The hole_punching example across hosts: a rendezvous on host 0, peers on hosts 1 and 2.
async fn hole_punching(net: &Net, program: &std::path::Path) -> Outcome {
    let rendezvous = SocketAddr::from((Net::addr(0), 7100));
    let spawn = |host: usize, args: Vec<String>| {
        net.command(host, program)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
    };
    let server = spawn(
        0,
        vec![
            "--role".into(),
            "rendezvous".into(),
            "--listen".into(),
            rendezvous.to_string(),
            "--peers".into(),
            "2".into(),
        ],
    );
    let peer = |host: usize, name: &str| {
        spawn(
            host,
            vec![
                "--role".into(),
                "peer".into(),
                "--rendezvous".into(),
                rendezvous.to_string(),
                "--bind".into(),
                Net::addr(host).to_string(),
                "--name".into(),
                name.into(),
            ],
        )
    };
    let all = async { tokio::join!(server, peer(1, "ann"), peer(2, "bob")) };
    let (server, ann, bob) = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .map_err(|_| "hole punching did not finish in 60 s".to_string())?;
    let mut said = Vec::new();
    for (who, output) in [("rendezvous", server), ("ann", ann), ("bob", bob)] {
        let output = output.map_err(|e| format!("could not run hole_punching ({who}): {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(format!(
                "hole_punching ({who}) failed: {text}{}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        said.push(text);
    }
    let punched = said[1]
        .lines()
        .find(|l| l.contains("punched"))
        .unwrap_or("?");
    println!(
        "  hole punch    rendezvous on {}, peers on {} and {}; {punched}",
        Net::addr(0),
        Net::addr(1),
        Net::addr(2),
    );
    Ok(())
}
