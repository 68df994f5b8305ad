//! Leak checks: a thousand connect / exchange / disconnect cycles against one long-lived node
//! (all five protocols on) must leave its heap, the process's open file descriptors and the
//! runtime's live tasks where they were after a warm-up.
//!
//! The cycles vary the way in and out: a temporary node dials in and disconnects; a temporary
//! node dials in and shuts down (the long-lived node sees EOF); the long-lived node dials a
//! temporary listener and disconnects. A counting global allocator measures live heap bytes.
//! The whole check is one test, so nothing else runs in this process meanwhile.

use std::{alloc::System, time::Duration};

use pea2pea::{Config, DisconnectOrigin};
use pea2pea_tests::{
    alive_tasks, bounded,
    chat::{Framing, Peer},
    live_bytes, open_fds, wait_until_desc,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CYCLES: usize = 1000;
const WARM_UP: usize = 100;
const SEC: Duration = Duration::from_secs(1);

fn live() -> isize {
    live_bytes(GLOBAL.stats())
}

async fn cycle(host: &Peer, host_addr: std::net::SocketAddr, i: usize) {
    match i % 3 {
        // a temporary node dials in, both sides talk, the temporary node disconnects
        0 => {
            let temp = dial_in(host_addr).await;
            temp.say_and_hear(host_addr, 2).await;
            let back = temp_addr_on(host).await;
            host.say_and_hear(back, 2).await;
            assert!(bounded(5 * SEC, "disconnect", temp.node.disconnect(host_addr)).await);
            bounded(5 * SEC, "shut_down", temp.node.shut_down()).await;
        }
        // a temporary node dials in, talks, and shuts down: the host sees EOF
        1 => {
            let temp = dial_in(host_addr).await;
            temp.say_and_hear(host_addr, 2).await;
            bounded(5 * SEC, "shut_down", temp.node.shut_down()).await;
        }
        // the host dials a temporary listener, talks, and disconnects
        _ => {
            let (temp, temp_addr) =
                Peer::<60_000>::listening(Config::loopback(), Framing::Message, true).await;
            bounded(5 * SEC, "connect", host.node.connect(temp_addr))
                .await
                .unwrap();
            host.say_and_hear(temp_addr, 2).await;
            assert!(bounded(5 * SEC, "disconnect", host.node.disconnect(temp_addr)).await);
            bounded(5 * SEC, "shut_down", temp.node.shut_down()).await;
        }
    }
    wait_until_desc(2 * SEC, "the host to drop the cycle's connection", || {
        host.node.num_connected() == 0 && host.node.num_connecting() == 0
    })
    .await;
}

/// A temporary node without a listener, connected to the host.
async fn dial_in(host_addr: std::net::SocketAddr) -> Peer {
    let temp: Peer = Peer::new(
        Config {
            listener_addr: None,
            ..Default::default()
        },
        Framing::Message,
        true,
    )
    .await;
    bounded(5 * SEC, "connect", temp.node.connect(host_addr))
        .await
        .unwrap();
    temp
}

/// The host's side of its only connection (the temporary node's ephemeral address).
async fn temp_addr_on(host: &Peer) -> std::net::SocketAddr {
    wait_until_desc(2 * SEC, "the host to see the temporary node", || {
        host.node.num_connected() == 1
    })
    .await;
    host.node.connected_addrs()[0]
}

/// Waits (up to 5s) for `gauge` to come back to at most `limit`; returns its last value.
async fn back_to(limit: isize, gauge: impl Fn() -> isize) -> isize {
    let deadline = tokio::time::Instant::now() + 5 * SEC;
    loop {
        let now = gauge();
        if now <= limit || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cycles_leak_nothing() {
    let (fds_at_start, tasks_at_start) = (open_fds(), alive_tasks());
    let (host, host_addr) =
        Peer::<60_000>::listening(Config::loopback(), Framing::Message, true).await;

    for i in 0..WARM_UP {
        cycle(&host, host_addr, i).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (heap_warm, fds_warm, tasks_warm) = (live(), open_fds(), alive_tasks());

    let start = std::time::Instant::now();
    for i in WARM_UP..CYCLES {
        cycle(&host, host_addr, i).await;
    }
    let elapsed = start.elapsed();

    let heap_end = back_to(heap_warm, live).await;
    let fds_end = back_to(fds_warm as isize, || open_fds() as isize).await;
    let tasks_end = back_to(tasks_warm as isize, || alive_tasks() as isize).await;
    eprintln!(
        "{} cycles in {elapsed:?}: heap {heap_warm} -> {heap_end} bytes, fds {fds_warm} -> {fds_end}, \
         tasks {tasks_warm} -> {tasks_end}",
        CYCLES - WARM_UP
    );
    let log = &host.log;
    assert_eq!(
        log.connects.load(std::sync::atomic::Ordering::Relaxed),
        CYCLES
    );
    assert_eq!(log.total_disconnects(), CYCLES);
    let host_dialled = (0..CYCLES).filter(|i| i % 3 == 2).count();
    assert_eq!(log.disconnects(DisconnectOrigin::User), host_dialled);
    assert_eq!(
        log.disconnects(DisconnectOrigin::Reading),
        CYCLES - host_dialled,
        "the temporary nodes' disconnects and shutdowns reach the host as EOF"
    );
    assert_eq!(
        host.node.stats().received().0 as usize,
        2 * CYCLES + 2 * CYCLES.div_ceil(3)
    );

    assert!(
        heap_end <= heap_warm,
        "the heap grew by {} bytes over {} cycles",
        heap_end - heap_warm,
        CYCLES - WARM_UP
    );
    assert!(
        fds_end <= fds_warm as isize,
        "open fds grew: {fds_warm} -> {fds_end}"
    );
    assert!(
        tasks_end <= tasks_warm as isize,
        "live tasks grew: {tasks_warm} -> {tasks_end}"
    );

    bounded(5 * SEC, "the host's shut_down", host.node.shut_down()).await;
    let fds_after = back_to(fds_at_start as isize, || open_fds() as isize).await;
    let tasks_after = back_to(tasks_at_start as isize, || alive_tasks() as isize).await;
    assert!(
        fds_after <= fds_at_start as isize,
        "fds: {fds_at_start} at start, {fds_after} after shutdown"
    );
    assert!(
        tasks_after <= tasks_at_start as isize,
        "tasks: {tasks_at_start} at start, {tasks_after} after shutdown"
    );
}
