//! Calls across a failing link: during a partition (or a hold) they fail with the call
//! timeout, measured in virtual time; after the repair they succeed again.
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
use tokio::time::Instant;

const PORT: u16 = 7000;
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

// the idle timeout is longer than the partitions below, so that a call meets the call timeout
// and not a connection that the idle timeout already closed
echo_node!(Kv { call_timeout = 1 s, idle_timeout = 5 s, });

fn kv(listener: Option<SocketAddr>) -> Kv {
    Kv::new(Config {
        listener_addr: listener,
        ..Default::default()
    })
}

/// The server: answers every call.
fn serve(sim: &mut turmoil::Sim<'_>) {
    sim.host("server", || async {
        kv(Some((Ipv4Addr::UNSPECIFIED, PORT).into()))
            .start()
            .await?;
        std::future::pending().await
    });
}

/// A client connected to the server, whose first call was answered.
async fn connected_client() -> io::Result<(Kv, SocketAddr)> {
    let client = kv(None);
    client.enable_protocols().await;
    let server = SocketAddr::new(turmoil::lookup("server"), PORT);
    client.node().connect(server).await?;
    assert_eq!(client.call(server, Echo(1)).await?, Echoed(1));
    Ok((client, server))
}

/// Calls; a call that fails ends the connection, which is dialled again (for at most
/// `attempts` calls). Returns the answer and how many calls it took.
async fn call_redialling(client: &Kv, server: SocketAddr, n: u32, attempts: u32) -> (Echoed, u32) {
    for attempt in 1..=attempts {
        match client.call(server, Echo(n)).await {
            Ok(answer) => return (answer, attempt),
            Err(e) => println!("  call {attempt}: {e}"),
        }
        client.node().disconnect(server).await;
        if let Err(e) = client.node().connect(server).await {
            println!("  redial: {e}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    panic!("{attempts} calls failed");
}

/// A call that must fail with the call timeout, at the call timeout in virtual time.
async fn times_out(client: &Kv, server: SocketAddr, n: u32) {
    let started = Instant::now();
    let e = client
        .call(server, Echo(n))
        .await
        .expect_err("a call crossed the partition");
    let waited = started.elapsed();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(
        waited >= CALL_TIMEOUT && waited < CALL_TIMEOUT + Duration::from_millis(10),
        "a call with a {CALL_TIMEOUT:?} timeout failed after {waited:?}"
    );
}

#[test]
fn calls_time_out_in_a_partition_and_succeed_after_the_repair() -> turmoil::Result {
    let mut sim = builder(seed(7)).build();
    serve(&mut sim);
    sim.client("client", async {
        let (client, server) = connected_client().await?;

        turmoil::partition("client", "server");
        for n in 2..5 {
            times_out(&client, server, n).await;
        }
        turmoil::repair("client", "server");
        // what the partition dropped is lost for good (the simulated TCP does not retransmit),
        // so the old connection stays stalled: the client gives up on it and dials again
        let (answer, calls) = call_redialling(&client, server, 5, 20).await;
        assert_eq!(answer, Echoed(5));
        println!("after the repair, the call succeeded at attempt {calls}");
        assert_eq!(client.call(server, Echo(6)).await?, Echoed(6));
        client.node().shut_down().await;
        Ok(())
    });
    sim.run()
}

#[test]
fn calls_time_out_while_a_link_is_held_and_the_connection_survives_it() -> turmoil::Result {
    let mut sim = builder(seed(8)).build();
    serve(&mut sim);
    sim.client("client", async {
        let (client, server) = connected_client().await?;

        // a hold delays what is in flight instead of dropping it, as TCP's retransmissions
        // would over a short outage
        turmoil::hold("client", "server");
        for n in 2..4 {
            times_out(&client, server, n).await;
        }
        turmoil::release("client", "server");
        // the late answers are dropped (their calls are over); the same connection serves on
        assert_eq!(client.call(server, Echo(4)).await?, Echoed(4));
        assert!(client.node().is_connected(server));
        assert_eq!(client.node().num_connected(), 1);
        client.node().shut_down().await;
        Ok(())
    });
    sim.run()
}
