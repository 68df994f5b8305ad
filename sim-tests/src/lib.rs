//! What the simulation tests share: the seed, a trace of events in virtual time, a driver that
//! steps a simulation until a condition holds, and the gossip swarm that most scenarios run.
//!
//! Built only with `RUSTFLAGS="--cfg pea2pea_sim"` (see the README's "Testing your protocol
//! under hardship"); a normal build compiles an empty crate.

#![cfg(pea2pea_sim)]
#![forbid(unsafe_code)]

pub mod echo;
pub mod swarm;

use std::{
    fmt::Display,
    hash::{DefaultHasher, Hash, Hasher},
    sync::{Arc, Mutex},
    time::Duration,
};

use turmoil::Sim;

/// The seed of a run: `PEA2PEA_SIM_SEED` if set, else `default`. Printed, so that a failing
/// run can be replayed exactly.
pub fn seed(default: u64) -> u64 {
    let seed = std::env::var("PEA2PEA_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    println!("seed {seed} (PEA2PEA_SIM_SEED={seed} replays this run)");
    seed
}

/// A simulation with `seed`, ticking 1 ms of virtual time per step, whose client (if it has
/// one) must finish within two minutes of virtual time.
pub fn builder(seed: u64) -> turmoil::Builder {
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(120));
    builder
}

/// The events of a run, each stamped with the virtual time it happened at.
#[derive(Clone, Default)]
pub struct Trace(Arc<Mutex<Vec<String>>>);

impl Trace {
    /// Records `event` at the current virtual time; from a host's software.
    pub fn record(&self, event: impl Display) {
        self.record_at(turmoil::sim_elapsed().unwrap_or_default(), event);
    }

    /// Records `event` at `at` (from the test, which steps the simulation from outside).
    pub fn record_at(&self, at: Duration, event: impl Display) {
        let line = format!("{:>9.3}s {event}", at.as_secs_f64());
        self.0.lock().unwrap().push(line);
    }

    /// How many events so far.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Whether nothing has happened yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A hash of every event in order: equal for equal traces (within one build).
    pub fn digest(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.0.lock().unwrap().hash(&mut hasher);
        hasher.finish()
    }

    /// The last `n` events, to show what happened before a failure.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.0.lock().unwrap();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Steps `sim` until `done()` holds, for at most `limit` of virtual time; returns the virtual
/// time it took. Panics with `what` if it does not happen in time.
pub fn step_until(
    sim: &mut Sim<'_>,
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Duration {
    let start = sim.elapsed();
    while !done() {
        let waited = sim.elapsed() - start;
        assert!(
            waited <= limit,
            "{what}: not within {limit:?} of virtual time"
        );
        sim.step().expect("a host failed");
    }
    sim.elapsed() - start
}

/// Steps `sim` through `span` of virtual time.
pub fn step_for(sim: &mut Sim<'_>, span: Duration) {
    let end = sim.elapsed() + span;
    while sim.elapsed() < end {
        sim.step().expect("a host failed");
    }
}
