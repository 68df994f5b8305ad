//! A node crashes and restarts: each of its peers sees the loss once, then the links return.
#![cfg(pea2pea_sim)]

use std::time::Duration;

use pea2pea_sim_tests::{
    builder, seed, step_for, step_until,
    swarm::{Swarm, name},
};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn each_peer_loses_a_crashed_node_once_then_reconnects() {
    let seed = seed(5);
    let mut sim = builder(seed).build();
    // five nodes, every pair linked: n00's peers are n01..n04 (n00 dials n01 and n02; n03 and
    // n04 dial n00)
    let swarm = Swarm::launch(&mut sim, 5, &[1, 2]);
    let victim = 0;
    let peers = 1..5;
    let losses = |i: usize| {
        let seen = swarm.seen(i);
        seen.disconnects
            .iter()
            .filter(|(p, _)| *p == victim)
            .count()
    };
    step_until(&mut sim, LIMIT, "forming the links", || {
        swarm.all_links_up()
    });

    sim.crash(name(victim));
    swarm.trace.record_at(sim.elapsed(), "crash n00");
    let noticed = step_until(&mut sim, LIMIT, "the peers noticing", || {
        peers.clone().all(|i| losses(i) > 0)
    });
    // turmoil stops a crashed host's tasks without closing its sockets, as when a machine
    // loses power: the peers learn of it from their idle timeouts
    println!("the peers noticed the crash within {noticed:?}");
    // down for a while: the peers that dial n00 keep trying
    step_for(&mut sim, Duration::from_secs(5));
    sim.bounce(name(victim));
    swarm.trace.record_at(sim.elapsed(), "restart n00");
    let rejoined = step_until(&mut sim, LIMIT, "rejoining", || swarm.all_links_up());
    println!("n00 was linked to all its peers again {rejoined:?} after its restart");
    // long enough for a late, second disconnect to show
    step_for(&mut sim, Duration::from_secs(5));

    for i in peers {
        let disconnects = swarm.seen(i).disconnects.clone();
        let from_victim = disconnects.iter().filter(|(p, _)| *p == victim).count();
        let (who, trace) = (name(i), swarm.trace.tail(40));
        assert_eq!(from_victim, 1, "{who} saw {disconnects:?}\n{trace}");
        assert_eq!(
            disconnects.len(),
            1,
            "{who} lost another peer too: {disconnects:?}"
        );
    }
    assert!(swarm.all_links_up(), "a link fell again after the rejoin");
}
