//! The same seed replays the same run, event for event, in this process and in another one;
//! another seed gives another run.
#![cfg(pea2pea_sim)]

use std::process::Command;

use pea2pea_sim_tests::{seed, swarm::partition_and_heal};

/// Set in the copy of this test that runs in a child process.
const CHILD: &str = "PEA2PEA_SIM_DETERMINISM_CHILD";
const DIGEST: &str = "trace digest ";

/// The trace of a partition scenario of 12 nodes: its digest and its events.
fn run(seed: u64) -> (u64, String) {
    let (swarm, _) = partition_and_heal(seed, 12, 5);
    let digest = swarm.trace.digest();
    println!(
        "seed {seed}: {} events, {DIGEST}{digest:016x}",
        swarm.trace.len()
    );
    (digest, swarm.trace.tail(usize::MAX))
}

#[test]
fn a_seed_replays_its_run_and_another_seed_does_not() {
    let seed = seed(12);
    let (first, first_trace) = run(seed);
    if std::env::var_os(CHILD).is_some() {
        return;
    }

    let (again, again_trace) = run(seed);
    if first != again {
        let (a, b) = (first_trace.lines(), again_trace.lines());
        let (at, (a, b)) = a
            .zip(b)
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .unwrap_or_default();
        panic!("seed {seed} gave two traces; they part at event {at}:\n  {a}\n  {b}");
    }
    // another process: nothing may depend on per-process randomness (hash seeds and the like)
    assert_eq!(
        first,
        digest_in_a_child(seed),
        "another process ran seed {seed} differently"
    );
    let (other, _) = run(seed + 1);
    assert_ne!(
        first,
        other,
        "seeds {seed} and {} gave the same trace",
        seed + 1
    );
}

/// Runs this test again in a child process (running only the first scenario) and reads the
/// digest it prints.
fn digest_in_a_child(seed: u64) -> u64 {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_seed_replays_its_run_and_another_seed_does_not",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("PEA2PEA_SIM_SEED", seed.to_string())
        .output()
        .expect("running the test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child run failed:\n{stdout}");
    let line = stdout.lines().find_map(|l| l.split_once(DIGEST));
    let (_, hex) = line.unwrap_or_else(|| panic!("no digest in the child's output:\n{stdout}"));
    u64::from_str_radix(hex.trim(), 16).unwrap()
}
