//! DSL-30: with `rpc` lines, a message of exactly the declared `max_frame` still travels: the
//! envelope around every frame (at most 19 bytes) gets room of its own on top of the bound.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use pea2pea::{Config, Message, Node, Pea2Pea, protocol};
use pea2pea_tests::wait_until_10s;

#[derive(Message, Debug, Clone, PartialEq)]
struct Blob(Vec<u8>);

#[derive(Message, Debug, Clone, PartialEq)]
struct Echo(Vec<u8>);

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    received: Arc<Mutex<Vec<usize>>>,
}

protocol! {
    Peer speaks Blob over length_delimited(max_frame = 256 B) {
        on Blob(bytes) => self.received.lock().unwrap().push(bytes.len()),
        rpc Echo(bytes) -> Echo => Echo(bytes),
    }
}

/// A blob whose encoding is exactly `len` bytes (a one-byte length prefix, then the bytes).
fn blob_of_encoded_len(len: usize) -> Vec<u8> {
    let bytes = vec![7u8; len - 2];
    assert_eq!(Blob(bytes.clone()).encoded_len(), len);
    bytes
}

async fn peer(name: &str) -> (Peer, SocketAddr) {
    let peer = Peer {
        node: Node::new(Config {
            name: Some(name.into()),
            ..Config::loopback()
        }),
        received: Default::default(),
    };
    let addr = peer.start().await.unwrap();
    (peer, addr)
}

#[tokio::test]
async fn dsl_30_a_message_of_exactly_max_frame_travels_with_rpc_lines() -> io::Result<()> {
    let (a, _) = peer("a").await;
    let (b, b_addr) = peer("b").await;
    a.node().connect(b_addr).await?;
    wait_until_10s("b to see a", || b.node().num_connected() == 1).await;

    let exact = blob_of_encoded_len(256);
    a.send(b_addr, Blob(exact.clone())).await?;
    wait_until_10s("the message of exactly max_frame", || {
        b.received.lock().unwrap().as_slice() == [exact.len()]
    })
    .await;

    // a request and a response of exactly the bound, inside the envelope
    let Echo(back) = a.call(b_addr, Echo(exact.clone())).await?;
    assert_eq!(back, exact);

    // well past the bound (more than the envelope's room) is refused at the sender, and the
    // connection lives on
    let over = vec![7u8; exact.len() + 64];
    let err = a.send(b_addr, Blob(over)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    a.send(b_addr, Blob(vec![1])).await?;
    wait_until_10s("the next message", || b.received.lock().unwrap().len() == 2).await;

    a.node().shut_down().await;
    b.node().shut_down().await;
    Ok(())
}
