//! Hostile peers against a node with the default limits (and a loopback listener): lying
//! headers, truncated and garbage frames, unknown variants, a slow drip, a thousand silent
//! sockets, floods past the connection and per-IP limits, a peer that never reads, reconnect
//! storms and a peer that closes mid-frame.
//!
//! Every attack must end with the attacker's connection closed, the node alive, a counter (or
//! the `on_disconnect` origin, where the engine has no counter) saying why, and a well-behaved
//! peer exchanging messages during or after it. A counting global allocator checks that lying
//! lengths cost nothing; the tests of this binary run one at a time so that its figures are
//! theirs alone.

use std::{
    alloc::System,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use pea2pea::{Config, DisconnectOrigin, Message, Node, protocols::Writing};
use pea2pea_tests::{
    Rng, bounded,
    chat::{Chat, Framing, LDC_MAX_FRAME, Peer, frame},
    closed_within, live_bytes, loopback_ip, raw_connect_from, socket_bound_to, wait_until_desc,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::{io::AsyncWriteExt, net::TcpStream, task::JoinSet};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The tests of this binary run one at a time: the allocation counter is process-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Hostile inputs tried by the tests that ran (printed at the end of each test).
static INPUTS: AtomicUsize = AtomicUsize::new(0);

const MIB: usize = 1024 * 1024;
const SEC: Duration = Duration::from_secs(1);

fn tried(n: usize) {
    INPUTS.fetch_add(n, Relaxed);
}

/// A well-behaved peer speaking `framing` (with the handshake if `handshake`); it only dials.
async fn good_peer(framing: Framing, handshake: bool) -> Peer {
    let config = Config {
        listener_addr: None,
        ..Default::default()
    };
    Peer::new(config, framing, handshake).await
}

async fn shut_down_all(nodes: &[&Node]) {
    for node in nodes {
        bounded(Duration::from_secs(5), "shut_down", node.shut_down()).await;
        assert_eq!(node.num_connected(), 0);
        assert_eq!(node.num_connecting(), 0);
    }
    eprintln!("hostile inputs tried so far: {}", INPUTS.load(Relaxed));
}

/// Waits until `target` has no connections left (its `on_disconnect`s have run by then).
async fn settled<const I: u64>(target: &Peer<I>, connected: usize) {
    wait_until_desc(2 * SEC, "the target's connections to settle", || {
        target.node.num_connected() == connected && target.node.num_connecting() == 0
    })
    .await;
}

/// Opens a raw connection from 127.0.0.1 and waits until the target has registered it.
async fn raw_registered<const I: u64>(target: &Peer<I>, addr: SocketAddr) -> TcpStream {
    let before = target.node.num_connected();
    let stream = raw_connect_from(loopback_ip(1), addr).await;
    wait_until_desc(2 * SEC, "the raw connection to be registered", || {
        target.node.num_connected() == before + 1
    })
    .await;
    stream
}

/// Sends `header` (and some bytes after it) on a fresh connection: the node must close the
/// connection (origin Reading) without allocating anything like the declared size.
async fn lying_header_is_cheap(framing: Framing, headers: &[&[u8]]) {
    let _serial = SERIAL.lock().await;
    let (target, addr) = Peer::<60_000>::listening(Config::loopback(), framing, false).await;
    let good = good_peer(framing, false).await;
    good.round_trip(addr, 3).await;

    for header in headers {
        settled(&target, 0).await;
        let reading = target.log.disconnects(DisconnectOrigin::Reading);
        let mut stream = raw_registered(&target, addr).await;

        let region = Region::new(GLOBAL);
        let mut attack = header.to_vec();
        attack.extend_from_slice(&[0xAA; 64]);
        stream.write_all(&attack).await.unwrap();
        assert!(
            closed_within(&mut stream, 2 * SEC).await,
            "{framing:?}: the node kept a connection whose header is {header:02x?}"
        );
        settled(&target, 0).await;
        let allocated = region.change().bytes_allocated;
        tried(1);
        eprintln!("{framing:?} header {header:02x?}: {allocated} bytes allocated");
        assert!(
            allocated < MIB,
            "{framing:?}: header {header:02x?} made the node allocate {allocated} bytes"
        );
        assert_eq!(
            target.log.disconnects(DisconnectOrigin::Reading),
            reading + 1
        );
    }
    assert_eq!(
        target.node.stats().received().0,
        3,
        "only the good messages"
    );
    good.round_trip(addr, 3).await;
    shut_down_all(&[&target.node, &good.node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_gib_header_message_codec() {
    lying_header_is_cheap(
        Framing::Message,
        &[
            &[0xFF, 0xFF, 0xFF, 0xFF], // 4 GiB - 1, the largest a 4-byte header says
            &[0x00, 0x10, 0x00, 0x01], // one byte over the 1 MiB maximum
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_gib_header_message_codec_wide_header() {
    lying_header_is_cheap(
        Framing::WideMessage,
        &[
            &(1u64 << 32).to_be_bytes(), // exactly 4 GiB
            &u64::MAX.to_be_bytes(),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_gib_header_length_delimited_codec() {
    lying_header_is_cheap(
        Framing::LengthDelimited,
        &[
            &[0xFF, 0xFF, 0xFF, 0xFF],
            &(LDC_MAX_FRAME as u32 + 1).to_be_bytes(),
        ],
    )
    .await;
}

/// A frame declared at the maximum size that never completes costs one frame's buffer, no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_at_the_limit_reserves_at_most_one_frame() {
    let _serial = SERIAL.lock().await;
    let (target, addr) =
        Peer::<60_000>::listening(Config::loopback(), Framing::Message, false).await;
    let mut stream = raw_registered(&target, addr).await;

    let region = Region::new(GLOBAL);
    let mut attack = (MIB as u32).to_be_bytes().to_vec();
    attack.extend_from_slice(&[1; 4096]);
    stream.write_all(&attack).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let allocated = region.change().bytes_allocated;
    tried(1);
    eprintln!("a pending 1 MiB frame: {allocated} bytes allocated");
    assert!(
        allocated < MIB + 256 * 1024,
        "a pending 1 MiB frame made the node allocate {allocated} bytes"
    );
    assert!(target.node.is_connected(target.node.connected_addrs()[0]));

    drop(stream); // closes mid-frame
    settled(&target, 0).await;
    assert_eq!(target.log.disconnects(DisconnectOrigin::Reading), 1);
    assert_eq!(target.node.stats().received(), (0, 0));
    good_peer(Framing::Message, false)
        .await
        .round_trip(addr, 2)
        .await;
    shut_down_all(&[&target.node]).await;
}

/// Complete frames whose bodies are a valid message cut short (or with a byte too many).
async fn truncated_frames(framing: Framing) {
    let _serial = SERIAL.lock().await;
    let (target, addr) = Peer::<60_000>::listening(Config::loopback(), framing, false).await;
    let good = good_peer(framing, false).await;

    let body = Chat::Hello {
        name: "mallory".into(),
        tags: vec!["a".into(), "bb".into()],
    }
    .to_bytes();
    let mut bodies: Vec<Vec<u8>> = (0..body.len()).map(|cut| body[..cut].to_vec()).collect();
    let mut longer = body.to_vec();
    longer.push(0);
    bodies.push(longer);
    // a `max_len` of 16 tags, exceeded by the count alone
    bodies.push(vec![0, 1, b'x', 17]);

    for (i, bad) in bodies.iter().enumerate() {
        let mut stream = raw_registered(&target, addr).await;
        stream.write_all(&frame(bad)).await.unwrap();
        assert!(
            closed_within(&mut stream, 2 * SEC).await,
            "{framing:?}: the node kept a connection after bad frame #{i} {bad:02x?}"
        );
        settled(&target, 0).await;
        if i % 4 == 0 {
            good.round_trip(addr, 1).await; // serves meanwhile
            settled(&target, 0).await;
        }
    }
    tried(bodies.len());
    let good_rounds = bodies.len().div_ceil(4);
    assert_eq!(
        target.log.disconnects(DisconnectOrigin::Reading),
        bodies.len() + good_rounds
    );
    assert_eq!(
        target.node.stats().received().0 as usize,
        good_rounds,
        "no bad frame is counted as a message"
    );
    good.round_trip(addr, 3).await;
    shut_down_all(&[&target.node, &good.node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frames_message_codec() {
    truncated_frames(Framing::Message).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frames_length_delimited_codec() {
    truncated_frames(Framing::LengthDelimited).await;
}

/// Random bytes (raw, or framed so that they reach the message decoder) on 200 connections;
/// bytes that happen to decode are fine, and the idle timeout ends what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_into_a_derived_message_codec() {
    let _serial = SERIAL.lock().await;
    const IDLE: u64 = 300;
    const CONNECTIONS: usize = 200;
    let (target, addr) = Peer::<IDLE>::listening(Config::loopback(), Framing::Message, false).await;
    let good = good_peer(Framing::Message, false).await;
    let mut rng = Rng::new(0x6a7b_a6e5);

    let region = Region::new(GLOBAL);
    let mut attacks = JoinSet::new();
    for i in 0..CONNECTIONS {
        let mut bytes = vec![0u8; rng.between(1, 512) as usize];
        rng.fill(&mut bytes);
        if i % 2 == 1 {
            bytes.truncate(rng.between(0, 48) as usize);
            bytes = frame(&bytes);
        }
        attacks.spawn(async move {
            let mut stream = raw_connect_from(loopback_ip(1), addr).await;
            let _ = stream.write_all(&bytes).await;
            closed_within(&mut stream, 5 * SEC).await
        });
        if attacks.len() >= 25 {
            assert!(
                attacks.join_next().await.unwrap().unwrap(),
                "a garbage connection was kept"
            );
        }
    }
    good.round_trip(addr, 3).await; // served during the attack
    while let Some(closed) = attacks.join_next().await {
        assert!(closed.unwrap(), "a garbage connection was kept");
    }
    settled(&target, 0).await;
    let allocated = region.change().bytes_allocated;
    tried(CONNECTIONS);
    eprintln!(
        "garbage: {} messages decoded by chance, {} idle timeouts, {allocated} bytes allocated",
        target.log.messages.load(Relaxed) - 3,
        target.node.heuristics().idle_timeouts()
    );
    assert_eq!(
        target.log.disconnects(DisconnectOrigin::Reading),
        CONNECTIONS + 1,
        "every garbage connection (and the good one) ended on the reading side"
    );
    // each of the 201 connections costs about one 64 KiB read buffer (plus both ends' small
    // change): nothing near what a lying header asks for
    let budget = (CONNECTIONS + 1) * 128 * 1024;
    assert!(
        allocated < budget,
        "garbage cost {allocated} bytes (budget {budget})"
    );
    good.round_trip(addr, 3).await;
    shut_down_all(&[&target.node, &good.node]).await;
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_variant_tags() {
    let _serial = SERIAL.lock().await;
    let (target, addr) =
        Peer::<60_000>::listening(Config::loopback(), Framing::Message, false).await;
    let good = good_peer(Framing::Message, false).await;

    let mut bodies: Vec<Vec<u8>> = [5, 6, 100, 127, 128, 300, 16_384, u32::MAX as u64]
        .into_iter()
        .map(|tag| {
            let mut body = varint(tag);
            body.extend_from_slice(&[1, b'x']);
            body
        })
        .collect();
    bodies.push(vec![0x85, 0x00]); // tag 5, overlong
    bodies.push(vec![0xFF, 0xFF, 0xFF, 0xFF, 0x7F]); // more than 32 bits
    bodies.push(vec![0xFF; 11]); // a varint that never ends

    for bad in &bodies {
        let mut stream = raw_registered(&target, addr).await;
        // a valid message first: it is delivered, then the bad one ends the connection
        let mut bytes = frame(&Chat::Bye.to_bytes());
        bytes.extend(frame(bad));
        stream.write_all(&bytes).await.unwrap();
        assert!(
            closed_within(&mut stream, 2 * SEC).await,
            "the node kept a connection after the tag {bad:02x?}"
        );
        settled(&target, 0).await;
    }
    tried(bodies.len());
    assert_eq!(target.log.messages.load(Relaxed), bodies.len(), "the Byes");
    assert_eq!(
        target.log.disconnects(DisconnectOrigin::Reading),
        bodies.len()
    );
    good.round_trip(addr, 3).await;
    shut_down_all(&[&target.node, &good.node]).await;
}

/// What a slow drip does to a connection: writes one byte every 100ms of a frame that would
/// take 100s to complete, and says after how long the node closed the connection (None: not
/// within `limit`).
async fn drip(addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let stream = raw_connect_from(loopback_ip(1), addr).await;
    let (mut rx, mut tx) = stream.into_split();
    let start = Instant::now();
    let closed = Arc::new(AtomicBool::new(false));
    let watcher = {
        let closed = closed.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut sink = [0u8; 64];
            while let Ok(n) = rx.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
            closed.store(true, Relaxed);
            start.elapsed()
        })
    };
    let mut bytes = frame(&[0u8; 1000]).into_iter();
    while start.elapsed() < limit && !closed.load(Relaxed) {
        if tx.write_all(&[bytes.next().unwrap()]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let outcome = match tokio::time::timeout(SEC, watcher).await {
        Ok(Ok(after)) => Some(after),
        _ => None,
    };
    drop(tx);
    outcome
}

/// A peer that goes silent part-way through a frame is dropped by the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partial_frame_is_dropped_by_the_idle_timeout() {
    let _serial = SERIAL.lock().await;
    const IDLE: u64 = 300;
    let (target, addr) = Peer::<IDLE>::listening(Config::loopback(), Framing::Message, false).await;
    let mut stream = raw_registered(&target, addr).await;
    let start = Instant::now();
    stream.write_all(&frame(&[0u8; 1000])[..10]).await.unwrap();
    assert!(closed_within(&mut stream, 3 * SEC).await);
    let after = start.elapsed();
    tried(1);
    assert!(
        after >= Duration::from_millis(250),
        "dropped too early: {after:?}"
    );
    settled(&target, 0).await;
    assert_eq!(target.node.heuristics().idle_timeouts(), 1);
    assert_eq!(target.node.heuristics().handshake_timeouts(), 0);
    assert_eq!(target.node.heuristics().write_timeouts(), 0);
    assert_eq!(target.log.disconnects(DisconnectOrigin::Reading), 1);
    // the good peer talks fast enough for the short idle timeout
    good_peer(Framing::Message, false)
        .await
        .round_trip(addr, 3)
        .await;
    shut_down_all(&[&target.node]).await;
}

/// A slow drip (one byte every 100ms) never completes a frame, so it must not hold the
/// connection (and its partial frame) past the idle timeout: the timeout is about frames
/// (RD-07: "the timer restarts with every received frame"), not bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_drip_is_dropped_by_the_idle_timeout() {
    let _serial = SERIAL.lock().await;
    const IDLE: u64 = 300;
    let (target, addr) = Peer::<IDLE>::listening(Config::loopback(), Framing::Message, false).await;
    let closed_after = drip(addr, 4 * SEC).await;
    tried(1);
    let still_connected = target.node.num_connected();
    let idle_timeouts = target.node.heuristics().idle_timeouts();
    good_peer(Framing::Message, false)
        .await
        .round_trip(addr, 3)
        .await;
    shut_down_all(&[&target.node]).await;

    let after = closed_after.expect("the drip was never dropped");
    assert!(
        after < Duration::from_secs(2),
        "the drip held its connection for {after:?} with a {IDLE}ms idle timeout"
    );
    assert_eq!(still_connected, 0);
    assert_eq!(idle_timeouts, 1);
}

/// The largest number of sockets the fd limit leaves room for (two fds per connection, as
/// both ends live in this process), at most `wanted`.
fn sockets_within_fd_limit(wanted: usize) -> usize {
    let limit = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(3)
                        .and_then(|n| n.parse::<usize>().ok())
                })
        })
        .unwrap_or(1024);
    wanted.min(limit.saturating_sub(256) / 2)
}

/// Spawns a sampler that records the target's worst connected and connecting counts.
fn sample_limits(node: Node, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let (mut connected, mut connecting) = (0, 0);
        while !stop.load(Relaxed) {
            connected = connected.max(node.num_connected());
            connecting = connecting.max(node.num_connecting());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (connected, connecting)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_silent_sockets_hit_the_handshake_timeout() {
    let _serial = SERIAL.lock().await;
    let count = sockets_within_fd_limit(1000);
    let (target, addr) =
        Peer::<60_000>::listening(Config::loopback(), Framing::Message, true).await;
    let good = good_peer(Framing::Message, true).await;
    good.node.connect(addr).await.unwrap();
    good.say_and_hear(addr, 3).await;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_limits(target.node.clone(), stop.clone());

    let start = Instant::now();
    let heuristics = target.node.heuristics();
    let accounted = || {
        (heuristics.handshake_timeouts() + heuristics.inbound_connections_rejected()) as usize
            + target.node.num_connecting()
    };
    let mut silent = JoinSet::new();
    // In waves of 99, which fill the node's setups (the good peer holds the 100th place) and
    // fit the listen backlog (128): past the backlog, the kernel (with SYN cookies) can drop a
    // client's final ACK and leave it "connected" to a socket no one will ever accept, which
    // says nothing about the node.
    for wave in (0..count).collect::<Vec<_>>().chunks(99) {
        let mut opened = Vec::new();
        for &i in wave {
            // 40 source IPs, 25 sockets each: the per-IP limit stays out of the way
            let ip = loopback_ip(2 + (i % 40) as u8);
            opened.push(tokio::spawn(async move {
                let socket = socket_bound_to(ip);
                tokio::time::timeout(Duration::from_secs(10), socket.connect(addr))
                    .await
                    .expect("a silent socket's connect timed out")
                    .expect("a silent socket connects")
            }));
        }
        for stream in opened {
            let mut stream = stream.await.unwrap();
            silent.spawn(async move { closed_within(&mut stream, Duration::from_secs(30)).await });
        }
        let upto = wave[wave.len() - 1] + 1;
        wait_until_desc(
            10 * SEC,
            "the node to time out a wave of silent sockets",
            || accounted() >= upto && target.node.num_connecting() == 0,
        )
        .await;
    }
    // while the flood is on, the established good peer is served
    good.say_and_hear(addr, 3).await;
    while let Some(closed) = silent.join_next().await {
        assert!(closed.unwrap(), "a silent socket was kept open");
    }
    let elapsed = start.elapsed();
    wait_until_desc(5 * SEC, "every silent socket to be accounted for", || {
        heuristics.handshake_timeouts() + heuristics.inbound_connections_rejected() == count as u64
    })
    .await;
    stop.store(true, Relaxed);
    let (max_connected, max_connecting) = sampler.await.unwrap();
    tried(count);
    eprintln!(
        "{count} silent sockets closed in {elapsed:?}: {} handshake timeouts, {} rejected (limit), \
         peak connecting {max_connecting}, peak connected {max_connected}",
        heuristics.handshake_timeouts(),
        heuristics.inbound_connections_rejected()
    );
    assert!(max_connected <= 100 && max_connecting <= 100);
    assert_eq!(heuristics.handshake_timeouts(), count as u64);
    assert_eq!(heuristics.inbound_connections_rejected(), 0);
    assert_eq!(heuristics.accept_errors(), 0);
    settled(&target, 1).await;
    good.say_and_hear(addr, 3).await;
    let late = good_peer(Framing::Message, true).await;
    late.round_trip(addr, 3).await;
    shut_down_all(&[&target.node, &good.node, &late.node]).await;
}

/// Raw sockets from `ips` (round robin), `count` in all. Once `target` has dealt with every
/// one (admitted or refused: under load its accept loop may be seconds behind the dials), each
/// says whether the node closed it (a refused one); the open ones are handed back.
async fn flood(
    target: &Node,
    addr: SocketAddr,
    ips: &[u8],
    count: usize,
) -> (usize, Vec<TcpStream>) {
    let connected_before = target.num_connected();
    let refused_before = target.heuristics().inbound_connections_rejected();
    let mut dials = JoinSet::new();
    for i in 0..count {
        let ip = loopback_ip(ips[i % ips.len()]);
        dials.spawn(async move { raw_connect_from(ip, addr).await });
    }
    let streams = dials.join_all().await;
    wait_until_desc(10 * SEC, "the node to admit or refuse every socket", || {
        let admitted = target.num_connected().saturating_sub(connected_before);
        let refused = target.heuristics().inbound_connections_rejected() - refused_before;
        admitted + refused as usize >= count
    })
    .await;
    // a refused socket is closed already, so its end arrives at once
    let mut checks = JoinSet::new();
    for mut stream in streams {
        checks.spawn(async move { (closed_within(&mut stream, SEC).await, stream) });
    }
    let mut rejected = 0;
    let mut open = Vec::new();
    for (closed, stream) in checks.join_all().await {
        if closed {
            rejected += 1;
        } else {
            open.push(stream);
        }
    }
    (rejected, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_past_max_connections() {
    let _serial = SERIAL.lock().await;
    const FLOOD: usize = 150;
    let (target, addr) =
        Peer::<60_000>::listening(Config::loopback(), Framing::Message, false).await;
    let max = target.node.config().max_connections as usize;
    let good = good_peer(Framing::Message, false).await;
    good.node.connect(addr).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_limits(target.node.clone(), stop.clone());

    // six source IPs, 25 sockets each: under the per-IP limit, over the total
    let (rejected, open) = flood(&target.node, addr, &[2, 3, 4, 5, 6, 7], FLOOD).await;
    tried(FLOOD);
    assert_eq!(open.len(), max - 1, "the good peer holds one place");
    assert_eq!(rejected, FLOOD - (max - 1));
    wait_until_desc(2 * SEC, "the rejections to be counted", || {
        target.node.heuristics().inbound_connections_rejected() == rejected as u64
    })
    .await;
    assert_eq!(target.node.num_connected(), max);
    good.say_and_hear(addr, 3).await; // served at the limit

    drop(open);
    settled(&target, 1).await;
    stop.store(true, Relaxed);
    let (max_connected, max_connecting) = sampler.await.unwrap();
    assert!(max_connected <= max, "{max_connected} connected at once");
    assert!(max_connecting <= target.node.config().max_connecting as usize);
    assert_eq!(target.node.heuristics().accept_errors(), 0);
    let late = good_peer(Framing::Message, false).await;
    late.round_trip(addr, 3).await;
    shut_down_all(&[&target.node, &good.node, &late.node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_past_the_per_ip_limit() {
    let _serial = SERIAL.lock().await;
    const FLOOD: usize = 50;
    // the production default: one connection per IP
    let config = Config {
        max_connections_per_ip: 1,
        ..Config::loopback()
    };
    let (target, addr) = Peer::<60_000>::listening(config, Framing::Message, false).await;
    let good = good_peer(Framing::Message, false).await; // from 127.0.0.1
    good.node.connect(addr).await.unwrap();

    let (rejected, mut open) = flood(&target.node, addr, &[9], FLOOD).await;
    tried(FLOOD);
    assert_eq!(open.len(), 1, "one connection from 127.0.0.9");
    assert_eq!(rejected, FLOOD - 1);
    wait_until_desc(2 * SEC, "the rejections to be counted", || {
        target.node.heuristics().inbound_connections_rejected() == rejected as u64
    })
    .await;
    good.say_and_hear(addr, 3).await;

    // the per-IP count is released with the connection: 127.0.0.9 is admitted again
    open.clear();
    settled(&target, 1).await;
    let (rejected_again, open) = flood(&target.node, addr, &[9], 1).await;
    assert_eq!((rejected_again, open.len()), (0, 1));
    drop(open);
    settled(&target, 1).await;
    good.say_and_hear(addr, 3).await;
    shut_down_all(&[&target.node, &good.node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_that_never_reads() {
    let _serial = SERIAL.lock().await;
    let (target, addr) =
        Peer::<60_000>::listening(Config::loopback(), Framing::Message, false).await;
    let socket = socket_bound_to(loopback_ip(1));
    socket.set_recv_buffer_size(4096).unwrap();
    let _stalled = socket.connect(addr).await.unwrap();
    wait_until_desc(2 * SEC, "the stalled peer to be registered", || {
        target.node.num_connected() == 1
    })
    .await;
    let victim = target.node.connected_addrs()[0];

    let blob = Chat::Blob(Bytes::from(vec![7u8; 32 * 1024]));
    let mut confirmations = Vec::new();
    let mut quota_exceeded = 0;
    let mut other_error = None;
    let start = Instant::now();
    while target.node.heuristics().write_timeouts() == 0 {
        assert!(start.elapsed() < 10 * SEC, "no write timeout after 10s");
        match target.unicast(victim, blob.clone()) {
            Ok(confirmation) => confirmations.push(confirmation),
            Err(e) if e.kind() == std::io::ErrorKind::QuotaExceeded => {
                quota_exceeded += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => {
                other_error = Some(e.kind());
                break;
            }
        }
    }
    tried(confirmations.len());
    assert!(quota_exceeded > 0, "the full queue never refused a message");
    assert!(
        other_error.is_none_or(|k| matches!(
            k,
            std::io::ErrorKind::NotConnected | std::io::ErrorKind::BrokenPipe
        )),
        "unexpected send error {other_error:?}"
    );
    wait_until_desc(2 * SEC, "the stalled connection to go", || {
        !target.node.is_connected(victim)
    })
    .await;
    assert_eq!(target.node.heuristics().write_timeouts(), 1);
    assert_eq!(target.log.disconnects(DisconnectOrigin::Writing), 1);

    // WR-03: leading confirmations Ok, the first other one the batch's TimedOut
    let (mut ok, mut first_failure) = (0, None);
    for confirmation in confirmations {
        match bounded(2 * SEC, "a confirmation", confirmation).await {
            Ok(Ok(())) if first_failure.is_none() => ok += 1,
            Ok(Ok(())) => panic!("a message confirmed after a failed one"),
            other if first_failure.is_none() => {
                first_failure = Some(other.map(|r| r.map_err(|e| e.kind())))
            }
            _ => {}
        }
    }
    eprintln!(
        "never-reading peer: {ok} messages written, {quota_exceeded} refused with QuotaExceeded"
    );
    assert_eq!(
        first_failure,
        Some(Ok(Err(std::io::ErrorKind::TimedOut))),
        "the failing batch hears its timeout"
    );
    assert_eq!(
        target.unicast_fast(victim, Chat::Bye).unwrap_err().kind(),
        std::io::ErrorKind::NotConnected
    );
    let good = good_peer(Framing::Message, false).await;
    good.round_trip(addr, 3).await;
    shut_down_all(&[&target.node, &good.node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_storm_to_one_address() {
    let _serial = SERIAL.lock().await;
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 20;
    const NODE_CYCLES: usize = 100;
    let (target, addr) =
        Peer::<60_000>::listening(Config::loopback(), Framing::Message, false).await;
    let good = good_peer(Framing::Message, false).await;
    good.node.connect(addr).await.unwrap();

    // raw clients: connect, say something, close at once; over and over
    let mut storm = JoinSet::new();
    for _ in 0..CLIENTS {
        storm.spawn(async move {
            let mut admitted = 0;
            for _ in 0..ROUNDS {
                let mut stream = raw_connect_from(loopback_ip(1), addr).await;
                if stream
                    .write_all(&frame(&Chat::Say("hi".into()).to_bytes()))
                    .await
                    .is_ok()
                {
                    admitted += 1;
                }
            }
            admitted
        });
    }
    // a pea2pea client reconnecting to the same address as fast as it can; under the storm the
    // target's accept queue can overflow and drop a SYN, which the kernel resends after 1 s,
    // so its dials get the raw clients' 5 s rather than the default 1 s
    let churner_config = Config {
        listener_addr: None,
        connection_timeout_ms: 5_000,
        ..Default::default()
    };
    let churner = Peer::<60_000>::new(churner_config, Framing::Message, false).await;
    let cycles = {
        let churner = churner.clone();
        tokio::spawn(async move {
            for _ in 0..NODE_CYCLES {
                bounded(5 * SEC, "a storm connect", churner.node.connect(addr))
                    .await
                    .unwrap();
                assert!(
                    bounded(5 * SEC, "a storm disconnect", churner.node.disconnect(addr)).await
                );
            }
        })
    };
    good.say_and_hear(addr, 3).await; // served during the storm
    while let Some(joined) = storm.join_next().await {
        joined.unwrap();
    }
    cycles.await.unwrap();
    tried(CLIENTS * ROUNDS + NODE_CYCLES);
    // A storm connection can still sit in the kernel's accept queue when the clients are done
    // (counted nowhere yet), so wait for every one to be accounted for before comparing.
    let accounted = || {
        target.node.heuristics().inbound_connections_rejected() as usize
            + target.log.total_disconnects()
    };
    wait_until_desc(
        5 * SEC,
        "every storm connection to be served or rejected",
        || accounted() >= CLIENTS * ROUNDS + NODE_CYCLES,
    )
    .await;
    settled(&target, 1).await;
    let rejected = target.node.heuristics().inbound_connections_rejected() as usize;
    let ended = target.log.total_disconnects();
    eprintln!("reconnect storm: {ended} connections ended, {rejected} rejected");
    assert_eq!(
        ended + rejected,
        CLIENTS * ROUNDS + NODE_CYCLES,
        "every storm connection was either served and ended, or rejected and counted"
    );
    assert_eq!(
        ended,
        target.log.connects.load(Relaxed) - 1,
        "on_connect and on_disconnect pair up"
    );
    good.say_and_hear(addr, 3).await;
    shut_down_all(&[&target.node, &good.node, &churner.node]).await;
}

/// A peer that sends a header and part of a body, then closes: the node drops the partial
/// frame (origin Reading) and counts no message.
async fn closes_mid_frame(framing: Framing) {
    let _serial = SERIAL.lock().await;
    let (target, addr) = Peer::<60_000>::listening(Config::loopback(), framing, false).await;
    let good = good_peer(framing, false).await;
    let whole = frame(&Chat::Say("x".repeat(100)).to_bytes());
    for cut in [1, 3, 4, 5, 50, whole.len() - 1] {
        let mut stream = raw_registered(&target, addr).await;
        stream.write_all(&whole[..cut]).await.unwrap();
        stream.shutdown().await.unwrap();
        assert!(closed_within(&mut stream, 2 * SEC).await);
        settled(&target, 0).await;
        tried(1);
    }
    assert_eq!(target.node.stats().received(), (0, 0));
    assert_eq!(target.log.disconnects(DisconnectOrigin::Reading), 6);
    good.round_trip(addr, 3).await;
    shut_down_all(&[&target.node, &good.node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_closing_mid_frame_message_codec() {
    closes_mid_frame(Framing::Message).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_closing_mid_frame_length_delimited_codec() {
    closes_mid_frame(Framing::LengthDelimited).await;
}

/// ARCHITECTURE.md ("Lazy buffers"): a connection holds no read buffer until bytes arrive, so
/// a crowd of idle (or silent, hostile) connections costs little memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_hold_no_read_buffer() {
    let _serial = SERIAL.lock().await;
    const IDLE_PEERS: usize = 50;
    let (target, addr) =
        Peer::<60_000>::listening(Config::loopback(), Framing::Message, false).await;
    // one connection first, so that one-off allocations (maps, task slabs) are out of the way
    let _first = raw_registered(&target, addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;

    let before = live_bytes(GLOBAL.stats());
    let mut idle = Vec::new();
    for _ in 0..IDLE_PEERS {
        idle.push(raw_registered(&target, addr).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let per_connection = (live_bytes(GLOBAL.stats()) - before) / IDLE_PEERS as isize;
    tried(IDLE_PEERS);
    eprintln!("an idle registered connection holds {per_connection} bytes of heap");
    drop(idle);
    settled(&target, 1).await;
    shut_down_all(&[&target.node]).await;
    assert!(
        per_connection < 16 * 1024,
        "each idle connection holds {per_connection} bytes: its 64 KiB read buffer was allocated \
         before any byte arrived"
    );
}
