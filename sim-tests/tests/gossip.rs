//! 30 nodes gossip while a partition splits them in two, then heal.
#![cfg(pea2pea_sim)]

use std::sync::atomic::Ordering::Relaxed;

use pea2pea_sim_tests::{seed, swarm::partition_and_heal};

#[test]
fn thirty_nodes_converge_across_a_healed_partition() {
    let seed = seed(30);
    let (swarm, phases) = partition_and_heal(seed, 30, 10);
    println!("{phases:#?}");
    println!(
        "{} rumour messages, {} failed dials, {} events",
        swarm.rumours_sent.load(Relaxed),
        swarm.failed_dials.load(Relaxed),
        swarm.trace.len()
    );
    // the links across the partition broke, and dialling them failed until the repair
    let lost: usize = (0..swarm.len())
        .map(|i| swarm.seen(i).disconnects.len())
        .sum();
    assert!(lost > 0, "no link was lost to the partition");
    assert!(
        swarm.failed_dials.load(Relaxed) > 0,
        "no dial failed across the partition"
    );
}
