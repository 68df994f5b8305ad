//! Links with 50 to 200 ms of latency, with jitter: handshakes, calls, dials and idle links
//! take the virtual time that the latency and the configured timeouts say.
#![cfg(pea2pea_sim)]

use std::{
    io,
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use pea2pea::{Config, Pea2Pea};
use pea2pea_sim_tests::{
    builder,
    echo::{Echo, Echoed},
    echo_node, seed,
};
use tokio::time::{Instant, sleep};

const PORT: u16 = 7000;
const MIN: Duration = Duration::from_millis(50);
const MAX: Duration = Duration::from_millis(200);
/// Room for the steps a host takes to act on what arrived (the simulation moves in 1 ms steps).
const SLACK: Duration = Duration::from_millis(10);

echo_node!(Patient { call_timeout = 1 s, });
// below the shortest round trip (2 x 50 ms): no call can be answered in time
echo_node!(Impatient { call_timeout = 80 ms, });
// below the one-way latency: the peer's half of the handshake cannot arrive in time
echo_node!(Hasty { handshake_timeout = 40 ms, });
echo_node!(Quiet { idle_timeout = 1 s, });

fn client_config() -> Config {
    Config {
        listener_addr: None,
        ..Default::default()
    }
}

#[test]
fn handshakes_and_timeouts_follow_the_latency_and_the_settings() -> turmoil::Result {
    let mut sim = builder(seed(50))
        .min_message_latency(MIN)
        .max_message_latency(MAX)
        .build();
    sim.host("server", || async {
        let config = Config {
            listener_addr: Some((Ipv4Addr::UNSPECIFIED, PORT).into()),
            max_connections_per_ip: 16, // the clients below share one host
            ..Default::default()
        };
        Patient::new(config).start().await?;
        std::future::pending().await
    });
    sim.client("client", async {
        let server = SocketAddr::new(turmoil::lookup("server"), PORT);
        handshakes_and_calls(server).await?;
        calls_time_out(server).await?;
        handshakes_time_out(server).await;
        dials_time_out(server).await;
        idle_links_close(server).await?;
        Ok(())
    });
    sim.run()
}

/// Within the timeouts, everything succeeds, each step taking between one and two latencies
/// each way.
async fn handshakes_and_calls(server: SocketAddr) -> io::Result<()> {
    let client = Patient::new(client_config());
    client.enable_protocols().await;
    let (mut handshakes, mut calls) = (Vec::new(), Vec::new());
    for round in 0..10 {
        // the dialler's handshake ends when the server's verdict arrives: after the SYN, the
        // server's hello (sent on accept) and, once the server has read the dialler's hello,
        // its verdict, one latency each
        let started = Instant::now();
        client.node().connect(server).await?;
        handshakes.push(started.elapsed());
        for n in 0..5 {
            let started = Instant::now();
            assert_eq!(
                client.call(server, Echo(round * 5 + n)).await?,
                Echoed(round * 5 + n)
            );
            calls.push(started.elapsed());
        }
        client.node().disconnect(server).await;
    }
    for (what, times, latencies) in [("handshake", &handshakes, 3), ("call", &calls, 2)] {
        let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        println!("{what}s: {min:?} to {max:?}");
        assert!(
            *min >= latencies * MIN,
            "a {what} took {min:?}, less than {latencies} latencies"
        );
        assert!(*max <= latencies * MAX + SLACK, "a {what} took {max:?}");
        assert!(max > min, "no jitter in {what}s: all took {min:?}");
    }
    client.node().shut_down().await;
    Ok(())
}

/// A call timeout shorter than a round trip fails every call, each at that timeout.
async fn calls_time_out(server: SocketAddr) -> io::Result<()> {
    let client = Impatient::new(client_config());
    client.enable_protocols().await;
    client.node().connect(server).await?;
    for n in 0..5 {
        let started = Instant::now();
        let e = client
            .call(server, Echo(n))
            .await
            .expect_err("answered within 80 ms");
        let waited = started.elapsed();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        let timeout = Duration::from_millis(80);
        assert!(
            waited >= timeout && waited <= timeout + SLACK,
            "timed out after {waited:?}"
        );
    }
    client.node().shut_down().await;
    Ok(())
}

/// A handshake timeout shorter than the latency fails every dial with `TimedOut`, counted.
async fn handshakes_time_out(server: SocketAddr) {
    let client = Hasty::new(client_config());
    client.enable_protocols().await;
    for attempt in 1..=3 {
        let e = client
            .node()
            .connect(server)
            .await
            .expect_err("a 40 ms handshake succeeded");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_eq!(client.node().heuristics().handshake_timeouts(), attempt);
    }
    client.node().shut_down().await;
}

/// A connection timeout shorter than the latency fails the dial itself.
async fn dials_time_out(server: SocketAddr) {
    let config = Config {
        connection_timeout_ms: 30,
        ..client_config()
    };
    let client = Patient::new(config);
    client.enable_protocols().await;
    let e = client
        .node()
        .connect(server)
        .await
        .expect_err("dialled within 30 ms");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    client.node().shut_down().await;
}

/// A silent link closes at the idle timeout, in virtual time, whatever the latency.
async fn idle_links_close(server: SocketAddr) -> io::Result<()> {
    let client = Quiet::new(client_config());
    client.enable_protocols().await;
    client.node().connect(server).await?;
    sleep(Duration::from_millis(950)).await;
    assert!(
        client.node().is_connected(server),
        "closed before its idle timeout"
    );
    sleep(Duration::from_millis(100)).await;
    assert!(
        !client.node().is_connected(server),
        "still open after its idle timeout"
    );
    assert_eq!(client.node().heuristics().idle_timeouts(), 1);
    client.node().shut_down().await;
    Ok(())
}
