//! A quick end-to-end check of the engine's main path: the published crate's quickstart shape
//! (a reading node with LengthDelimitedCodec) receiving from a writing node.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use pea2pea::{
    Config, ConnectionSide, Node, Pea2Pea,
    protocols::{Reading, Writing},
};
use tokio_util::codec::LengthDelimitedCodec;

#[derive(Clone)]
struct MyNode {
    p2p: Node,
    seen: Arc<AtomicUsize>,
}

impl Pea2Pea for MyNode {
    fn node(&self) -> &Node {
        &self.p2p
    }
}

impl Reading for MyNode {
    type Message = BytesMut;
    type Codec = LengthDelimitedCodec;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
        Default::default()
    }

    async fn process_message(&self, source: SocketAddr, _message: Self::Message) {
        tracing::info!(parent: self.node().span(), "received a message from {source}");
        self.seen.fetch_add(1, Ordering::SeqCst);
    }
}

impl Writing for MyNode {
    type Message = Bytes;
    type Codec = LengthDelimitedCodec;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
        Default::default()
    }
}

fn node() -> MyNode {
    let config = Config {
        listener_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    };
    MyNode {
        p2p: Node::new(config),
        seen: Default::default(),
    }
}

async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn quickstart_shape_receives_messages() {
    let reader = node();
    reader.enable_reading().await;
    let addr = reader.p2p.toggle_listener().await.unwrap().unwrap();

    let writer = node();
    writer.enable_writing().await;
    writer.p2p.connect(addr).await.unwrap();
    for _ in 0..10 {
        writer
            .unicast(addr, Bytes::from_static(b"hello"))
            .unwrap()
            .await
            .unwrap()
            .unwrap();
    }
    wait_until(Duration::from_secs(1), || {
        reader.seen.load(Ordering::SeqCst) == 10
    })
    .await;
    assert_eq!(writer.p2p.stats().sent(), (10, 10 * (4 + 5)));
    wait_until(Duration::from_secs(1), || {
        reader.p2p.stats().received() == (10, 90)
    })
    .await;

    writer.p2p.shut_down().await;
    wait_until(Duration::from_secs(1), || reader.p2p.num_connected() == 0).await;
    reader.p2p.shut_down().await;
    assert!(reader.p2p.listening_addr().await.is_err());
}
