//! A gossip swarm survives a partition and a crash in a deterministic simulated network
//! (turmoil), in virtual time, replayable from its seed.
//!
//! ```text
//! RUSTFLAGS="--cfg pea2pea_sim" CARGO_TARGET_DIR=target/sim \
//!     cargo run --example simulation -- [--nodes N] [--rumours R] [--seed S]
//! ```
//!
//! Built with `--cfg pea2pea_sim`, pea2pea runs on turmoil's network: each node is a host with
//! an address of its own, time is virtual and moves in 1 ms steps, every message takes 5 to
//! 80 ms, and the program can partition the network and crash and restart hosts between
//! steps. Everything random comes from the seed, so a seed replays its run exactly: the
//! summary's trace digest is the same every time. (The separate target directory keeps the
//! simulation build from replacing the normal one.)
//!
//! The nodes speak `swarm`'s flood (each rumour passed on once to every other peer) with what
//! it takes to survive faults: a ping every 250 ms, so that a dead link falls silent and its
//! idle timeout (2 s) drops it; each node redials the peers it is meant to dial; and each new
//! link starts with both sides sending every rumour they know. The phases:
//!
//! 1. links: every node dials its neighbours two ways round a ring;
//! 2. spread: R rumours, started at different nodes, reach every node;
//! 3. partition: the network is cut in two halves; the links across fall silent and are
//!    dropped, and each half spreads R rumours that the other cannot hear;
//! 4. heal: the cut is repaired, the redials get through, and the new links carry each
//!    half's rumours across;
//! 5. crash: a node crashes (its sockets go silent, as when a machine loses power) and its
//!    peers drop it; the rest spread R rumours; the node restarts with nothing and catches up
//!    from its peers.

#[cfg(pea2pea_sim)]
fn main() -> std::process::ExitCode {
    sim::main()
}

#[cfg(not(pea2pea_sim))]
fn main() -> std::process::ExitCode {
    eprintln!(
        "this example runs only in a simulation build of pea2pea:\n  \
         RUSTFLAGS=\"--cfg pea2pea_sim\" CARGO_TARGET_DIR=target/sim cargo run --example simulation"
    );
    std::process::ExitCode::from(2)
}

#[cfg(pea2pea_sim)]
mod sim {
    use std::{
        collections::BTreeSet,
        hash::{DefaultHasher, Hash, Hasher},
        net::{Ipv4Addr, SocketAddr},
        ops::Range,
        process::ExitCode,
        sync::{
            Arc, Mutex, MutexGuard,
            atomic::{AtomicU64, Ordering::Relaxed},
        },
        time::{Duration, Instant},
    };

    use pea2pea::{Config, Message, Node, Pea2Pea, dsl::WhenFull, protocol};
    use pea2pea_examples::Args;
    use turmoil::Sim;

    const PORT: u16 = 4000;
    /// How often a node pings its peers, redials, and starts the rumours it was given.
    const ROUND: Duration = Duration::from_millis(250);
    /// The most virtual time a phase may take.
    const PHASE_LIMIT: Duration = Duration::from_secs(60);

    #[derive(Message, Debug)]
    enum Gossip {
        Rumour { id: u32 },
        Ping,
    }

    #[pea2pea::node]
    #[derive(Clone)]
    struct Peer {
        node: Node,
        me: usize,
        net: Arc<Net>,
    }

    protocol! {
        Peer speaks Gossip over length_delimited(max_frame = 1 KiB) {
            handshake = fingerprint,
            idle_timeout = 2 s,
            write_timeout = 2 s,
            // a new link sends every known rumour at once
            write_queue = 4096,
            on Gossip::Rumour { id } from peer => self.hear(id, Some(peer)).await,
            on Gossip::Ping => {},
            on_connect(peer) => self.catch_up(peer),
            on_disconnect(peer) => self.net.event(format_args!("n{} lost {peer}", self.me)),
        }
    }

    /// What a node knows in its current life; a restart begins a new one.
    #[derive(Default)]
    struct Life {
        node: Option<Node>,
        rumours: BTreeSet<u32>,
        to_start: Vec<u32>,
    }

    /// What the hosts share with `main`, which directs the simulation from outside.
    struct Net {
        addrs: Vec<SocketAddr>,
        /// The peers each node dials (each link is dialled from one end).
        dials: Vec<Vec<usize>>,
        lives: Vec<Mutex<Life>>,
        messages: AtomicU64,
        failed_dials: AtomicU64,
        /// Every event, in order, stamped with its virtual time.
        trace: Mutex<(DefaultHasher, u64)>,
    }

    impl Net {
        fn life(&self, i: usize) -> MutexGuard<'_, Life> {
            self.lives[i].lock().unwrap()
        }

        fn event(&self, what: impl std::fmt::Display) {
            let at = turmoil::sim_elapsed().unwrap_or_default();
            let mut trace = self.trace.lock().unwrap();
            format!("{at:?} {what}").hash(&mut trace.0);
            trace.1 += 1;
        }

        fn index_of(&self, addr: SocketAddr) -> usize {
            let ip = addr.ip();
            self.addrs.iter().position(|a| a.ip() == ip).unwrap()
        }

        fn heard_all(&self, nodes: impl IntoIterator<Item = usize>, ids: &BTreeSet<u32>) -> bool {
            nodes
                .into_iter()
                .all(|i| self.life(i).rumours.is_superset(ids))
        }

        fn connected(&self, i: usize) -> Vec<SocketAddr> {
            let life = self.life(i);
            life.node
                .as_ref()
                .map(Node::connected_addrs)
                .unwrap_or_default()
        }

        fn links_up(&self) -> bool {
            (0..self.addrs.len()).all(|i| {
                let wanted =
                    self.dials[i].len() + self.dials.iter().filter(|d| d.contains(&i)).count();
                self.connected(i).len() == wanted
            })
        }

        /// The links between `nodes` and the rest.
        fn links_out_of(&self, nodes: &Range<usize>) -> usize {
            let outside = |peer: &SocketAddr| !nodes.contains(&self.index_of(*peer));
            nodes
                .clone()
                .map(|i| self.connected(i).iter().filter(|p| outside(p)).count())
                .sum()
        }
    }

    impl Peer {
        /// One round: start the rumours given, ping every peer, redial the missing links.
        async fn round(&self) {
            let to_start = std::mem::take(&mut self.net.life(self.me).to_start);
            for id in to_start {
                self.hear(id, None).await;
            }
            let peers = self.node().connected_addrs();
            // a peer with no room for a ping gets the next one
            let _ = self
                .send_to_many_with(peers, &Gossip::Ping, WhenFull::Drop)
                .await;
            for &peer in &self.net.dials[self.me] {
                let addr = self.net.addrs[peer];
                if self.node().is_connected(addr) || self.node().is_connecting(addr) {
                    continue;
                }
                let this = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = this.node().connect(addr).await {
                        this.net.failed_dials.fetch_add(1, Relaxed);
                        this.net.event(format_args!(
                            "n{} could not dial n{peer}: {}",
                            this.me,
                            e.kind()
                        ));
                    }
                });
            }
        }

        /// The first time a rumour is heard, it goes on to every peer but its source (not to a
        /// peer whose queue is full: a handler that waited would stop reading meanwhile).
        async fn hear(&self, id: u32, from: Option<SocketAddr>) {
            if !self.net.life(self.me).rumours.insert(id) {
                return;
            }
            self.net
                .event(format_args!("n{} heard r{id} from {from:?}", self.me));
            let peers: Vec<_> = self
                .node()
                .connected_addrs()
                .into_iter()
                .filter(|&p| Some(p) != from)
                .collect();
            let rumour = Gossip::Rumour { id };
            let sent = self.send_to_many_with(peers, &rumour, WhenFull::Drop).await;
            self.net.messages.fetch_add(sent.queued() as u64, Relaxed);
        }

        /// A new link: send the peer every rumour this node knows.
        fn catch_up(&self, peer: SocketAddr) {
            let known: Vec<u32> = self.net.life(self.me).rumours.iter().copied().collect();
            self.net
                .event(format_args!("n{} linked to {peer}", self.me));
            for id in known {
                if self.send_fast(peer, Gossip::Rumour { id }).is_ok() {
                    self.net.messages.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// A node's host: a fresh node each time the host starts.
    async fn host(net: Arc<Net>, me: usize) -> turmoil::Result {
        let config = Config {
            name: Some(format!("n{me}")),
            listener_addr: Some((Ipv4Addr::UNSPECIFIED, PORT).into()),
            ..Default::default()
        };
        let peer = Peer {
            node: Node::new(config),
            me,
            net: net.clone(),
        };
        *net.life(me) = Life {
            node: Some(peer.node().clone()),
            ..Default::default()
        };
        peer.start().await?;
        net.event(format_args!("n{me} up"));
        let mut rounds = tokio::time::interval(ROUND);
        loop {
            rounds.tick().await;
            peer.round().await;
        }
    }

    /// Steps the simulation through the phases, printing a line for each.
    struct Director<'a> {
        sim: Sim<'a>,
        net: Arc<Net>,
        counted: (u64, u64),
    }

    impl Director<'_> {
        /// Steps until `done(net, virtual time since the phase began)`.
        fn phase(
            &mut self,
            name: &str,
            mut done: impl FnMut(&Net, Duration) -> bool,
        ) -> Result<(), String> {
            let start = self.sim.elapsed();
            while !done(&self.net, self.sim.elapsed() - start) {
                if self.sim.elapsed() - start > PHASE_LIMIT {
                    return Err(format!(
                        "{name}: not done after {PHASE_LIMIT:?} of virtual time"
                    ));
                }
                self.sim.step().map_err(|e| e.to_string())?;
            }
            let took = self.sim.elapsed() - start;
            let now = (
                self.net.messages.load(Relaxed),
                self.net.failed_dials.load(Relaxed),
            );
            let (messages, failed) = (now.0 - self.counted.0, now.1 - self.counted.1);
            self.counted = now;
            println!(
                "  {name:<28} {:>9.3} s {messages:>10} {failed:>13}",
                took.as_secs_f64()
            );
            Ok(())
        }

        /// Lets `span` of virtual time pass, as a phase of its own.
        fn wait(&mut self, name: &str, span: Duration) -> Result<(), String> {
            self.phase(name, |_, since| since >= span)
        }

        fn each_pair(
            &mut self,
            a: Range<usize>,
            b: Range<usize>,
            act: fn(&Sim<'_>, String, String),
        ) {
            for i in a {
                for j in b.clone() {
                    act(&self.sim, format!("n{i}"), format!("n{j}"));
                }
            }
        }
    }

    pub fn main() -> ExitCode {
        pea2pea_examples::start_logger();
        let args = Args::parse_or_exit(
            &["nodes", "rumours", "seed"],
            "simulation [--nodes N] [--rumours R] [--seed S]",
        );
        let n: usize = args.get("nodes", 20);
        let per_phase: u32 = args.get("rumours", 20);
        let seed: u64 = args.get("seed", 42);
        if n < 8 || per_phase == 0 || per_phase > 1000 {
            eprintln!("--nodes must be at least 8, --rumours between 1 and 1000");
            return ExitCode::FAILURE;
        }
        match run(n, per_phase, seed) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("failed: {e}");
                ExitCode::FAILURE
            }
        }
    }

    fn run(n: usize, per_phase: u32, seed: u64) -> Result<(), String> {
        let real = Instant::now();
        let mut sim = turmoil::Builder::new()
            .rng_seed(seed)
            .min_message_latency(Duration::from_millis(5))
            .max_message_latency(Duration::from_millis(80))
            .build();
        let net = Arc::new(Net {
            addrs: (0..n)
                .map(|i| SocketAddr::new(sim.lookup(format!("n{i}")), PORT))
                .collect(),
            dials: (0..n).map(|i| vec![(i + 1) % n, (i + 3) % n]).collect(),
            lives: (0..n).map(|_| Default::default()).collect(),
            messages: AtomicU64::new(0),
            failed_dials: AtomicU64::new(0),
            trace: Default::default(),
        });
        for i in 0..n {
            let net = net.clone();
            sim.host(format!("n{i}"), move || host(net.clone(), i));
        }
        let mut run = Director {
            sim,
            net: net.clone(),
            counted: (0, 0),
        };
        let batch = |k: u32| (k * per_phase..(k + 1) * per_phase).collect::<BTreeSet<_>>();
        // hands out the rumours `ids` to `nodes`, to start at their next round
        let start = |nodes: &[usize], ids: &BTreeSet<u32>| {
            for (k, &id) in ids.iter().enumerate() {
                net.life(nodes[k * 7 % nodes.len()]).to_start.push(id);
            }
        };
        let (left, right) = (0..n / 2, n / 2..n);
        let everyone: Vec<usize> = (0..n).collect();
        let victim = 1;
        let others: Vec<usize> = (0..n).filter(|&i| i != victim).collect();

        println!(
            "simulation: {n} nodes, {per_phase} rumours a phase, seed {seed}, latency 5-80 ms"
        );
        println!(
            "  {:<28} {:>11} {:>10} {:>13}",
            "phase", "virtual", "messages", "failed dials"
        );
        run.phase("links", |net, _| net.links_up())?;

        start(&everyone, &batch(0));
        run.phase("spread", |net, _| net.heard_all(0..n, &batch(0)))?;

        run.each_pair(left.clone(), right.clone(), |sim, a, b| sim.partition(a, b));
        run.phase("partition: links across drop", |net, _| {
            net.links_out_of(&left) == 0
        })?;
        start(&everyone[left.clone()], &batch(1));
        start(&everyone[right.clone()], &batch(2));
        run.phase("partition: each half spreads", |net, _| {
            net.heard_all(left.clone(), &batch(1)) && net.heard_all(right.clone(), &batch(2))
        })?;
        let crossed = left
            .clone()
            .any(|i| !net.life(i).rumours.is_disjoint(&batch(2)));
        if crossed {
            return Err("a rumour crossed the partition".into());
        }

        run.wait("partition: lasts 3 s more", Duration::from_secs(3))?;
        run.each_pair(left.clone(), right.clone(), |sim, a, b| sim.repair(a, b));
        let all: BTreeSet<u32> = (0..3 * per_phase).collect();
        run.phase("heal", |net, _| net.links_up() && net.heard_all(0..n, &all))?;

        run.sim.crash(format!("n{victim}"));
        // (the crashed node's own view stays as it was when it stopped: ask the others)
        let victim_addr = net.addrs[victim];
        run.phase("crash: its peers drop it", |net, _| {
            others
                .iter()
                .all(|&i| !net.connected(i).contains(&victim_addr))
        })?;
        start(&others, &batch(3));
        run.phase("crash: the rest spread", |net, _| {
            net.heard_all(others.iter().copied(), &batch(3))
        })?;
        run.wait("crash: down 3 s more", Duration::from_secs(3))?;
        run.sim.bounce(format!("n{victim}"));
        let all: BTreeSet<u32> = (0..4 * per_phase).collect();
        run.phase("restart: it catches up", |net, _| {
            net.links_up() && net.heard_all(0..n, &all)
        })?;

        let (digest, events) = {
            let trace = net.trace.lock().unwrap();
            (trace.0.finish(), trace.1)
        };
        println!("summary");
        println!(
            "  converged      yes, every node has all {} rumours",
            4 * per_phase
        );
        println!(
            "  time           {:.3} s virtual, in {:.2?} of real time",
            run.sim.elapsed().as_secs_f64(),
            real.elapsed()
        );
        println!(
            "  messages       {} rumour messages, resyncs included",
            net.messages.load(Relaxed)
        );
        println!(
            "  failed dials   {} (each retried {ROUND:?} later)",
            net.failed_dials.load(Relaxed)
        );
        println!(
            "  trace          {events} events, digest {digest:016x} (the same for every run of seed {seed})"
        );
        Ok(())
    }
}
