#![cfg(pea2pea_sim)]

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};

#[derive(Message, Debug)]
enum Msg {
    Hi(u32),
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    got: Arc<AtomicUsize>,
}

protocol! {
    Peer speaks Msg {
        handshake = fingerprint,
        on Msg::Hi(n) => { let _ = n; self.got.fetch_add(1, Ordering::Relaxed); },
    }
}

#[test]
fn smoke() -> turmoil::Result {
    let mut sim = turmoil::Builder::new()
        .rng_seed(1)
        .simulation_duration(Duration::from_secs(30))
        .build();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    sim.host("server", move || {
        let got = g.clone();
        async move {
            let node = Peer {
                node: Node::new(Config {
                    listener_addr: Some("0.0.0.0:9000".parse().unwrap()),
                    ..Default::default()
                }),
                got,
            };
            node.start().await?;
            std::future::pending::<()>().await;
            Ok(())
        }
    });
    let g2 = got.clone();
    sim.client("client", async move {
        let node = Peer {
            node: Node::new(Config {
                listener_addr: None,
                ..Default::default()
            }),
            got: Default::default(),
        };
        node.enable_protocols().await;
        let server = SocketAddr::new(turmoil::lookup("server"), 9000);
        let t0 = tokio::time::Instant::now();
        node.node().connect(server).await?;
        println!("connected after {:?}", t0.elapsed());
        for i in 0..10 {
            node.send(server, Msg::Hi(i)).await?;
        }
        while g2.load(Ordering::Relaxed) < 10 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("all received at {:?}", t0.elapsed());
        node.node().shut_down().await;
        Ok(())
    });
    sim.run()
}
