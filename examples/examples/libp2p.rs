//! A pea2pea node in a libp2p network: it talks to a real rust-libp2p node (the `libp2p` crate,
//! 0.57.1) over TCP on loopback, both ways — it dials the libp2p node, then the libp2p node
//! dials it — pings and is pinged (`/ipfs/ping/1.0.0`), and identifies itself and learns who
//! the other is (`/ipfs/id/1.0.0`).
//!
//! ```text
//! cargo run --example libp2p [-- --pings N]
//! ```
//!
//! # The layers
//!
//! ```text
//!  /ipfs/ping/1.0.0, /ipfs/id/1.0.0   per stream, each agreed on with multistream-select   ┐ Reading::
//!  yamux: frames of 12-byte header + body; streams, flow-control windows, go-away         ┘ process_message
//!  multistream-select: /yamux/1.0.0                                                        ┐
//!  Noise XX (X25519, ChaChaPoly, SHA256), payload = identity key + signature of static key │ Handshake
//!  multistream-select: /noise                                                              ┘
//!  TCP                                                                                       the engine
//! ```
//!
//! The node is `pea2pea_examples::libp2p_peer::Libp2pPeer` (in `examples/src`, so that the
//! interop test drives this very code); one module per layer, each with its own doc.
//!
//! * **Handshake** (hand-written `Handshake`): multistream-select agrees on `/noise` over the
//!   raw TCP stream; the Noise XX handshake (`snow`) exchanges the static keys and the libp2p
//!   payload — the identity key (ed25519, `libp2p-identity`) and its signature over
//!   `"noise-libp2p-static-key:" + static key`, a protobuf (`prost`) — and the peer's PeerId is
//!   checked against the one dialled; then multistream-select agrees on `/yamux/1.0.0` inside
//!   the encrypted stream. The handshake takes the TCP stream and hands the engine back a
//!   `NoiseStream` (shared with the `noise` example), as TLS or Noise wrap a stream anywhere in
//!   pea2pea; everything after it is plaintext yamux to the engine.
//! * **yamux**: a codec of ours (`Reading` and `Writing` carry yamux frames) and a sans-I/O
//!   session per connection in `process_message`: stream ids by side, `SYN`/`ACK`/`FIN`/`RST`,
//!   256 KiB windows with updates, session pings answered, go-away on close. Why not the
//!   `yamux` crate: it owns the whole connection (a `futures` I/O object it reads and writes
//!   itself) and hands out streams as I/O objects, which would leave pea2pea's reading and
//!   writing with nothing to do — the node would be a shell around a yamux task. A frame is a
//!   12-byte header and a body: exactly what a pea2pea codec is for, and the engine then does
//!   the framing, the bounded queues, the write batching and the idle timeout.
//! * **Streams**: each stream runs multistream-select, then ping (echo 32 bytes; or send ours
//!   and time the echo) or identify (send our protobuf and close; or read theirs and check its
//!   key is the PeerId's).
//!
//! Why the trait API and not `protocol!`: the DSL is for a protocol whose messages are a Rust
//! enum with pea2pea's wire format, routed to one handler per variant. Here the wire format is
//! libp2p's, the only "message" is a yamux frame, and what a frame means depends on its
//! stream's state — `protocol!` would reduce to a single catch-all handler and require a
//! `Message` impl the frames never use. `#[pea2pea::node]` still writes the `Pea2Pea` impl.
//!
//! # What interop covers, and what it does not
//!
//! Covered: TCP, multistream-select 1.0 (lazy dialers included), Noise with ed25519 identities,
//! yamux, ping and identify, in both directions. Not covered: QUIC, WebSocket, WebRTC or any
//! other transport; TLS as the security protocol; mplex or any muxer but yamux; identities of
//! other key types (RSA, secp256k1, ECDSA); identify push, signed peer records, and every
//! other libp2p protocol (Kademlia, gossipsub, relay, ...).

#[cfg(not(pea2pea_sim))]
fn main() -> std::process::ExitCode {
    libp2p_interop::main()
}

#[cfg(pea2pea_sim)]
fn main() -> std::process::ExitCode {
    eprintln!(
        "this example talks to a real rust-libp2p node over real sockets: run it in a normal \
         build (without --cfg pea2pea_sim)"
    );
    std::process::ExitCode::from(2)
}

/// Everything but `main`; a simulation build has no libp2p (its sockets are real ones).
#[cfg(not(pea2pea_sim))]
pub mod libp2p_interop {
    use std::{io, net::SocketAddr, process::ExitCode, time::Duration};

    use pea2pea::{Config, Pea2Pea};
    use pea2pea_examples::{
        libp2p_peer::{Identify, Libp2pPeer, socket_addr_of},
        wait_until,
    };

    /// The libp2p side: a rust-libp2p node with ping and identify, run in a task of its own.
    pub mod rust_side {
        use std::{
            collections::HashMap,
            io,
            sync::{Arc, Mutex},
            time::Duration,
        };

        use libp2p::{
            Multiaddr, PeerId, SwarmBuilder,
            futures::StreamExt,
            identify, identity, noise, ping,
            swarm::{NetworkBehaviour, SwarmEvent, dial_opts::DialOpts},
            tcp, yamux,
        };
        use tokio::{sync::mpsc, task::JoinHandle};

        /// What the libp2p node says it is.
        pub const AGENT: &str = "rust-libp2p/0.57.1 (pea2pea interop peer)";
        /// How often it pings a connected peer.
        pub const PING_INTERVAL: Duration = Duration::from_millis(100);

        #[derive(NetworkBehaviour)]
        struct Behaviour {
            ping: ping::Behaviour,
            identify: identify::Behaviour,
        }

        /// What the libp2p node saw of one peer.
        #[derive(Clone, Debug, Default)]
        pub struct Observed {
            /// Connections established with the peer.
            pub connections: usize,
            /// Whether the last one was dialled by the libp2p node.
            pub dialed: bool,
            /// Pings the peer answered, and their round trips.
            pub pings: Vec<Duration>,
            /// Pings that failed.
            pub ping_failures: Vec<String>,
            /// The peer's identify messages, one per connection if all goes well.
            pub identify: Vec<identify::Info>,
            /// Closed connections, with the cause libp2p gave (`None`: closed by the libp2p side).
            pub closed: Vec<Option<String>>,
        }

        enum Command {
            Dial(PeerId, Multiaddr),
            Disconnect(PeerId),
        }

        /// A running rust-libp2p node.
        pub struct RustPeer {
            /// Its PeerId.
            pub peer_id: PeerId,
            /// Where it listens.
            pub listen_addr: Multiaddr,
            observed: Arc<Mutex<HashMap<PeerId, Observed>>>,
            errors: Arc<Mutex<Vec<String>>>,
            commands: mpsc::UnboundedSender<Command>,
            task: JoinHandle<()>,
        }

        impl RustPeer {
            /// Starts a node listening on loopback.
            pub async fn start() -> io::Result<Self> {
                let keypair = identity::Keypair::generate_ed25519();
                let mut swarm = SwarmBuilder::with_existing_identity(keypair)
                    .with_tokio()
                    .with_tcp(
                        tcp::Config::default(),
                        noise::Config::new,
                        yamux::Config::default,
                    )
                    .map_err(io::Error::other)?
                    .with_behaviour(|key| Behaviour {
                        ping: ping::Behaviour::new(
                            ping::Config::new().with_interval(PING_INTERVAL),
                        ),
                        identify: identify::Behaviour::new(
                            identify::Config::new("ipfs/0.1.0".into(), key.public())
                                .with_agent_version(AGENT.into()),
                        ),
                    })
                    .map_err(io::Error::other)?
                    .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                    .build();
                swarm
                    .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("a valid multiaddr"))
                    .map_err(io::Error::other)?;
                let listen_addr = loop {
                    if let SwarmEvent::NewListenAddr { address, .. } =
                        swarm.select_next_some().await
                    {
                        break address;
                    }
                };
                let peer_id = *swarm.local_peer_id();
                let (commands, mut inbox) = mpsc::unbounded_channel();
                let observed = Arc::new(Mutex::new(HashMap::new()));
                let errors = Arc::new(Mutex::new(Vec::new()));
                let (seen, errs) = (observed.clone(), errors.clone());
                let task = tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            command = inbox.recv() => match command {
                                Some(Command::Dial(peer, addr)) => {
                                    // a new port: binding the dial to the listening port (libp2p's
                                    // default, for NAT traversal) can meet the previous
                                    // connection's TIME_WAIT on loopback and fail
                                    let dial = DialOpts::peer_id(peer)
                                        .addresses(vec![addr])
                                        .allocate_new_port()
                                        .build();
                                    if let Err(e) = swarm.dial(dial) {
                                        errs.lock().unwrap().push(format!("dial: {e}"));
                                    }
                                }
                                Some(Command::Disconnect(peer)) => {
                                    let _ = swarm.disconnect_peer_id(peer);
                                }
                                None => break,
                            },
                            event = swarm.select_next_some() => record(event, &seen, &errs),
                        }
                    }
                });
                Ok(Self {
                    peer_id,
                    listen_addr,
                    observed,
                    errors,
                    commands,
                    task,
                })
            }

            /// Dials `peer` at `addr`.
            pub fn dial(&self, peer: PeerId, addr: Multiaddr) {
                let _ = self.commands.send(Command::Dial(peer, addr));
            }

            /// Closes every connection to `peer`.
            pub fn disconnect(&self, peer: PeerId) {
                let _ = self.commands.send(Command::Disconnect(peer));
            }

            /// What it saw of `peer` so far.
            pub fn observed(&self, peer: &PeerId) -> Observed {
                let observed = self.observed.lock().unwrap();
                observed.get(peer).cloned().unwrap_or_default()
            }

            /// Connection errors it saw (failed dials, failed incoming connections).
            pub fn errors(&self) -> Vec<String> {
                self.errors.lock().unwrap().clone()
            }

            /// Stops the node (its connections are dropped with it).
            pub async fn stop(self) -> io::Result<()> {
                drop(self.commands);
                self.task.await.map_err(io::Error::other)
            }
        }

        fn record(
            event: SwarmEvent<BehaviourEvent>,
            observed: &Mutex<HashMap<PeerId, Observed>>,
            errors: &Mutex<Vec<String>>,
        ) {
            let mut observed = observed.lock().unwrap();
            match event {
                SwarmEvent::ConnectionEstablished {
                    peer_id, endpoint, ..
                } => {
                    let peer = observed.entry(peer_id).or_default();
                    peer.connections += 1;
                    peer.dialed = endpoint.is_dialer();
                }
                SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                    let cause = cause.map(|c| c.to_string());
                    observed.entry(peer_id).or_default().closed.push(cause);
                }
                SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                    peer, result, ..
                })) => {
                    let peer = observed.entry(peer).or_default();
                    match result {
                        Ok(rtt) => peer.pings.push(rtt),
                        Err(e) => peer.ping_failures.push(e.to_string()),
                    }
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                    peer_id,
                    info,
                    ..
                })) => observed.entry(peer_id).or_default().identify.push(info),
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Error {
                    peer_id,
                    error,
                    ..
                })) => errors
                    .lock()
                    .unwrap()
                    .push(format!("identify with {peer_id}: {error}")),
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    errors.lock().unwrap().push(format!("outgoing: {error}"));
                }
                SwarmEvent::IncomingConnectionError { error, .. } => {
                    errors.lock().unwrap().push(format!("incoming: {error}"));
                }
                _ => {}
            }
        }
    }

    use rust_side::{Observed, RustPeer};

    /// Who dials whom.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Direction {
        /// The pea2pea node dials the libp2p node.
        WeDial,
        /// The libp2p node dials the pea2pea node.
        TheyDial,
    }

    /// What one connection showed, from both sides.
    #[derive(Debug)]
    pub struct Report {
        /// Who dialled.
        pub direction: Direction,
        /// The PeerId the pea2pea node authenticated (the libp2p node's, if all is well).
        pub peer_seen_by_us: libp2p::PeerId,
        /// Whether the libp2p node reports a connection with our PeerId.
        pub libp2p_saw_us: bool,
        /// Whether the libp2p node says it dialled that connection.
        pub libp2p_dialed: bool,
        /// The round trips of our pings.
        pub our_round_trips: Vec<Duration>,
        /// The libp2p node's pings we answered, as the libp2p node counts them.
        pub their_pings_answered: usize,
        /// The same, as we count them.
        pub pings_we_answered: u64,
        /// The libp2p node's pings that failed.
        pub their_ping_failures: Vec<String>,
        /// The libp2p node's identify message.
        pub their_identify: Option<Identify>,
        /// What the libp2p node learnt from ours: agent version, protocols, listen addresses.
        pub what_they_learnt: Option<(String, Vec<String>, Vec<libp2p::Multiaddr>)>,
        /// Whether our node has no connection left once the session was closed.
        pub closed_here: bool,
        /// How the libp2p node saw the connection end (`Some(None)`: closed by itself).
        pub closed_there: Option<Option<String>>,
    }

    /// A pea2pea node that speaks libp2p, listening on loopback.
    pub async fn our_node(name: &str) -> io::Result<Libp2pPeer> {
        let config = Config {
            name: Some(name.into()),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            // the libp2p node and the test's raw sockets all come from 127.0.0.1
            max_connections_per_ip: 16,
            ..Default::default()
        };
        let keypair = libp2p_identity::Keypair::generate_ed25519();
        let node = Libp2pPeer::new(
            config,
            keypair,
            concat!("pea2pea-examples/", env!("CARGO_PKG_VERSION")),
        )?;
        node.start().await?;
        Ok(node)
    }

    const DEADLINE: Duration = Duration::from_secs(20);

    fn timed_out(what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out waiting for {what}"),
        )
    }

    /// Connects `ours` and `theirs` (who dials: `direction`), pings `pings` times each way,
    /// waits for both identify messages, then closes the connection from the dialling side.
    pub async fn run_direction(
        ours: &Libp2pPeer,
        theirs: &RustPeer,
        direction: Direction,
        pings: usize,
    ) -> io::Result<Report> {
        let our_id = ours.peer_id();
        // the libp2p node's observations add up over connections: count from here
        let before = theirs.observed(&our_id);
        let since = |seen: Observed| Observed {
            pings: seen.pings[before.pings.len()..].to_vec(),
            ping_failures: seen.ping_failures[before.ping_failures.len()..].to_vec(),
            identify: seen.identify[before.identify.len()..].to_vec(),
            closed: seen.closed[before.closed.len()..].to_vec(),
            ..seen
        };
        let this_connection = || since(theirs.observed(&our_id));

        let addr = connect(ours, theirs, direction).await?;
        let peer_seen_by_us = ours
            .peer(addr)
            .ok_or_else(|| timed_out("the session"))?
            .peer_id;
        let our_round_trips = ours.ping(addr, pings).await?;
        let exchanged = wait_until(DEADLINE, || {
            let (ours, theirs) = (ours.peer(addr), this_connection());
            ours.is_some_and(|i| i.identify.is_some() && i.pings_answered >= pings as u64)
                && !theirs.identify.is_empty()
                && theirs.pings.len() >= pings
        })
        .await;
        if !exchanged {
            return Err(timed_out("the pings and identify messages"));
        }
        let info = ours.peer(addr).ok_or_else(|| timed_out("the session"))?;
        let seen = this_connection();

        match direction {
            Direction::WeDial => drop(ours.close(addr).await),
            Direction::TheyDial => theirs.disconnect(our_id),
        }
        let closed_here = wait_until(DEADLINE, || ours.node().num_connected() == 0).await;
        wait_until(DEADLINE, || !this_connection().closed.is_empty()).await;
        Ok(Report {
            direction,
            peer_seen_by_us,
            libp2p_saw_us: seen.connections > before.connections,
            libp2p_dialed: seen.dialed,
            our_round_trips,
            their_pings_answered: seen.pings.len(),
            pings_we_answered: info.pings_answered,
            their_ping_failures: seen.ping_failures,
            their_identify: info.identify,
            what_they_learnt: seen.identify.into_iter().next().map(|i| {
                let protocols = i.protocols.iter().map(|p| p.to_string()).collect();
                (i.agent_version, protocols, i.listen_addrs)
            }),
            closed_here,
            closed_there: this_connection().closed.into_iter().next(),
        })
    }

    /// Sets up the connection; returns the libp2p node's address as our node knows it.
    async fn connect(
        ours: &Libp2pPeer,
        theirs: &RustPeer,
        direction: Direction,
    ) -> io::Result<SocketAddr> {
        match direction {
            Direction::WeDial => {
                let addr = socket_addr_of(&theirs.listen_addr)
                    .ok_or_else(|| io::Error::other("the libp2p node listens on no TCP address"))?;
                ours.dial(addr, Some(theirs.peer_id)).await?;
                Ok(addr)
            }
            Direction::TheyDial => {
                let ours_addr = ours
                    .listen_multiaddr()
                    .ok_or_else(|| io::Error::other("our node does not listen"))?;
                theirs.dial(ours.peer_id(), ours_addr);
                let mut addr = None;
                wait_until(DEADLINE, || {
                    addr = ours.addr_of(&theirs.peer_id);
                    addr.is_some()
                })
                .await;
                addr.ok_or_else(|| {
                    let errors = theirs.errors().join("; ");
                    timed_out(&format!(
                        "the libp2p node's connection (its errors: {errors})"
                    ))
                })
            }
        }
    }

    /// Both directions, one after the other, with the same two nodes.
    pub async fn interop(
        ours: &Libp2pPeer,
        theirs: &RustPeer,
        pings: usize,
    ) -> io::Result<Vec<Report>> {
        let mut reports = Vec::new();
        for direction in [Direction::WeDial, Direction::TheyDial] {
            reports.push(run_direction(ours, theirs, direction, pings).await?);
        }
        Ok(reports)
    }

    fn print_report(report: &Report, their_id: &libp2p::PeerId) {
        let title = match report.direction {
            Direction::WeDial => "pea2pea dials libp2p",
            Direction::TheyDial => "libp2p dials pea2pea",
        };
        println!("\n== {title}");
        let verdict = if report.peer_seen_by_us == *their_id {
            "the libp2p node's"
        } else {
            "NOT the libp2p node's"
        };
        println!("authenticated  {} ({verdict})", report.peer_seen_by_us);
        let trips: Vec<String> = report
            .our_round_trips
            .iter()
            .map(|t| format!("{t:.1?}"))
            .collect();
        println!(
            "our pings      {} answered: {}",
            trips.len(),
            trips.join(" ")
        );
        println!(
            "their pings    {} answered (libp2p counted {})",
            report.pings_we_answered, report.their_pings_answered
        );
        if let Some(id) = &report.their_identify {
            println!("their identify agent {:?}", id.agent_version);
            println!("               protocols {}", id.protocols.join(" "));
            let addrs: Vec<String> = id.listen_addrs.iter().map(|a| a.to_string()).collect();
            println!("               listen addrs {}", addrs.join(" "));
        }
        if let Some((agent, protocols, addrs)) = &report.what_they_learnt {
            println!(
                "libp2p learnt  agent {agent:?}, protocols {}",
                protocols.join(" ")
            );
            let addrs: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            println!("               listen addrs {}", addrs.join(" "));
        }
        let there = match &report.closed_there {
            Some(None) => "closed by libp2p".to_string(),
            Some(Some(cause)) => format!("closed by pea2pea (libp2p says: {cause})"),
            None => "still open".to_string(),
        };
        println!(
            "closed         here: {}, there: {there}",
            report.closed_here
        );
    }

    /// Whether a report shows what the example promises.
    pub fn all_good(report: &Report, their_id: &libp2p::PeerId, pings: usize) -> bool {
        report.peer_seen_by_us == *their_id
            && report.libp2p_saw_us
            && report.libp2p_dialed == (report.direction == Direction::TheyDial)
            && report.their_ping_failures.is_empty()
            && report.our_round_trips.len() == pings
            && report.their_pings_answered >= pings
            && report.pings_we_answered >= pings as u64
            && report
                .their_identify
                .as_ref()
                .is_some_and(|i| i.agent_version == rust_side::AGENT)
            && report
                .what_they_learnt
                .as_ref()
                .is_some_and(|(agent, ..)| agent.starts_with("pea2pea"))
            && report.closed_here
            && report.closed_there.is_some()
    }

    /// The example: both directions, then a verdict.
    #[tokio::main]
    pub async fn main() -> ExitCode {
        pea2pea_examples::start_logger();
        let args = pea2pea_examples::Args::parse_or_exit(&["pings"], "libp2p [--pings N]");
        match run(args.get("pings", 5usize)).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("libp2p example failed: {e}");
                ExitCode::FAILURE
            }
        }
    }

    async fn run(pings: usize) -> io::Result<bool> {
        let ours = our_node("pea2pea").await?;
        let theirs = RustPeer::start().await?;
        let listening = ours.listen_multiaddr().expect("started");
        println!("pea2pea node   {listening}");
        println!(
            "libp2p node    {}/p2p/{}",
            theirs.listen_addr, theirs.peer_id
        );
        let reports = interop(&ours, &theirs, pings).await;
        let counts = ours.counts();
        ours.shut_down().await;
        let (their_id, errors) = (theirs.peer_id, theirs.errors());
        theirs.stop().await?;
        let mut ok = true;
        for report in reports? {
            print_report(&report, &their_id);
            ok &= all_good(&report, &their_id, pings);
        }
        println!("\nour counters   {counts:?}");
        println!("libp2p errors  {errors:?}");
        let rejected =
            counts.multistream_rejections + counts.noise_rejections + counts.yamux_rejections;
        ok &= errors.is_empty() && rejected == 0;
        let verdict = if ok {
            "ok: both directions, pings and identify each way"
        } else {
            "FAILED"
        };
        println!("interop {verdict}");
        Ok(ok)
    }
}
