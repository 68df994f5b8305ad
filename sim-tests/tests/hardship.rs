// The test that README.md's "Testing your protocol under hardship" shows; `readme_shows_it`
// below keeps the two identical.
#![cfg(pea2pea_sim)]

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};

#[derive(Message, Debug)]
enum Chat {
    Say(u32),
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    heard: Arc<Mutex<Vec<u32>>>,
}

protocol! {
    Peer speaks Chat {
        handshake = fingerprint,
        idle_timeout = 2 s, // a link that stays silent this long is dropped
        on Chat::Say(n) => self.heard.lock().unwrap().push(n),
    }
}

const PORT: u16 = 9000;

fn peer(listen: bool, heard: Arc<Mutex<Vec<u32>>>) -> Peer {
    // each host has an address of its own: listen on all of them
    let listener_addr = listen.then(|| (Ipv4Addr::UNSPECIFIED, PORT).into());
    let config = Config {
        listener_addr,
        ..Default::default()
    };
    Peer {
        node: Node::new(config),
        heard,
    }
}

#[test]
fn messages_flow_again_after_a_partition() -> turmoil::Result {
    let seed = 1;
    println!("seed {seed}"); // a failing run is replayed by its seed
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_millis(20))
        .max_message_latency(Duration::from_millis(100))
        .build();

    // a host runs its software from the start each time it (re)starts
    let heard = Arc::new(Mutex::new(Vec::new()));
    let heard_by_server = heard.clone();
    sim.host("server", move || {
        let server = peer(true, heard_by_server.clone());
        async move {
            server.start().await?;
            std::future::pending().await
        }
    });

    // the test is a host too: its nodes are created and used inside it
    sim.client("client", async move {
        let client = peer(false, Default::default());
        client.enable_protocols().await;
        let server = SocketAddr::new(turmoil::lookup("server"), PORT);
        client.node().connect(server).await?;
        client.send(server, Chat::Say(1)).await?; // written to the socket: still on the way
        while heard.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        turmoil::partition("client", "server");
        client.send(server, Chat::Say(2)).await?; // written to the socket, lost on the way
        tokio::time::sleep(Duration::from_secs(3)).await; // virtual time: no real wait
        assert!(
            !client.node().is_connected(server),
            "the silent link is dropped"
        );
        turmoil::repair("client", "server");

        client.node().connect(server).await?;
        client.send(server, Chat::Say(3)).await?;
        while heard.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*heard.lock().unwrap(), [1, 3]);
        client.node().shut_down().await;
        Ok(())
    });
    sim.run()
}

#[test]
fn readme_shows_it() {
    let readme = include_str!("../../README.md");
    let this = include_str!("hardship.rs");
    let shown = this.split("\n#[test]\nfn readme_shows_it").next().unwrap();
    let shown = shown.split_once("#![cfg(pea2pea_sim)]\n").unwrap().1;
    assert!(
        readme.contains(shown),
        "README.md's simulation test differs from sim-tests/tests/hardship.rs"
    );
}
