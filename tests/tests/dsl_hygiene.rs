//! Every DSL feature in one file that denies clippy's default lints and every warning; the
//! expansions under a renamed dependency (`crate = ::p2p`), in a `#![no_implicit_prelude]`
//! module, beside user items named like the ones the expansion uses.

#![deny(clippy::all, warnings)]

extern crate pea2pea as p2p;

use std::time::Duration;

#[derive(p2p::Message, Debug, Clone, PartialEq)]
#[message(crate = "::p2p")]
pub enum Chat {
    Hello { name: String },
    Say(String),
    Bye,
}

#[derive(p2p::Message, Debug, Clone, PartialEq)]
#[message(crate = "::p2p")]
pub struct Ping(pub u32);

#[derive(p2p::Message, Debug, Clone, PartialEq)]
#[message(crate = "::p2p")]
pub struct Pong(pub u32);

#[no_implicit_prelude]
mod renamed {
    use super::{Chat, Ping, Pong};

    // user names that a careless expansion would pick up instead of its own
    #[allow(dead_code, non_camel_case_types)]
    pub struct u64;
    #[allow(dead_code)]
    pub struct Result;
    #[allow(dead_code)]
    pub struct Option;
    #[allow(dead_code)]
    pub struct Reading;
    #[allow(dead_code)]
    pub struct Writing;
    #[allow(dead_code)]
    pub struct SocketAddr;
    #[allow(dead_code)]
    pub mod io {}
    #[allow(dead_code)]
    pub fn respond() {}

    #[::p2p::node(crate = ::p2p)]
    #[derive(::core::clone::Clone)]
    pub struct Peer {
        pub node: ::p2p::Node,
        pub seen: ::std::sync::Arc<::std::sync::atomic::AtomicUsize>,
    }

    ::p2p::protocol! {
        Peer speaks Chat over length_delimited(max_frame = 16 KiB, length_width = 2, little_endian) {
            crate = ::p2p,
            name = "hygiene",
            handshake = fingerprint,
            handshake_timeout = 2 s,
            version = 2,
            accepts = 1..=3,
            read_queue = 32,
            backpressure = true,
            idle_timeout = 1 min,
            read_buffer = 4 KiB,
            write_queue = 32,
            write_timeout = 2 s,
            write_buffer = 4 KiB,
            disconnect_timeout = 1 s,
            call_timeout = 5 s,
            max_calls = 64,
            on Chat::Hello { name } from addr => {
                let _ = (name, addr);
                self.bump();
            }
            on Chat::Say(_text) => self.bump(),
            on _ => self.bump(),
            rpc Ping(n) from _peer -> Pong => Pong(n + 1),
            on_connect(_addr) => self.bump(),
            on_disconnect(_addr, _origin) => self.bump(),
        }
    }

    impl Peer {
        fn bump(&self) {
            self.seen
                .fetch_add(1, ::std::sync::atomic::Ordering::Relaxed);
        }
    }
}

use p2p::Pea2Pea;
use renamed::Peer;

fn peer(name: &str) -> Peer {
    Peer {
        node: p2p::Node::new(p2p::Config {
            name: Some(name.into()),
            ..Default::default()
        }),
        seen: Default::default(),
    }
}

#[tokio::test]
async fn every_feature_works_under_a_renamed_crate_without_a_prelude() {
    let (a, b) = (peer("a"), peer("b"));
    a.start().await.unwrap();
    let b_addr = b.start().await.unwrap();
    a.node().connect(b_addr).await.unwrap();

    a.send(b_addr, Chat::Hello { name: "ann".into() })
        .await
        .unwrap();
    a.send_fast(b_addr, Chat::Say("hi".into())).unwrap();
    assert!(a.send_to_many([b_addr], &Chat::Bye).await.all_queued());
    assert_eq!(a.call(b_addr, Ping(1)).await.unwrap(), Pong(2));

    // on_connect + three messages
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.seen.load(std::sync::atomic::Ordering::Relaxed) < 4 {
        assert!(tokio::time::Instant::now() < deadline, "b saw too little");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.node().shut_down().await;
    b.node().shut_down().await;
}
