//! Typed request/response over loopback: correlation under load, a peer that goes away, a
//! call the peer does not serve, a client that only calls, and one with a hand-written
//! `OnDisconnect` (DSL-06).

use std::{io, net::SocketAddr, time::Duration};

use std::sync::{Arc, Mutex};

use pea2pea::{
    Config, DisconnectOrigin, Message, Node, Pea2Pea, dsl, protocol, protocols::OnDisconnect,
};
use pea2pea_tests::wait_until_10s;

#[derive(Message, Debug, Clone, PartialEq)]
enum Note {
    Text(String),
}

#[derive(Message, Debug, Clone, PartialEq)]
struct Square(u64);

#[derive(Message, Debug, Clone, PartialEq)]
struct Squared(u64);

#[derive(Message, Debug, Clone, PartialEq)]
struct Stall;

/// Answered with the square of its number after that many milliseconds.
#[derive(Message, Debug, Clone, PartialEq)]
struct Slow(u64);

#[derive(Message, Debug, Clone, PartialEq)]
struct Never;

#[derive(Message, Debug, Clone, PartialEq)]
struct Unserved(u8);

#[pea2pea::node]
#[derive(Clone)]
struct Server {
    node: Node,
}

protocol! {
    Server speaks Note {
        on Note::Text(_) => {},
        rpc Square(n) -> Squared => Squared(n * n),
        rpc Slow(ms) -> Squared => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Squared(ms * ms)
        }
        rpc Stall from addr -> Never => {
            // the server gives up on the caller instead of answering
            self.node().disconnect(addr).await;
            Never
        }
        rpc Unserved -> Never,
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct Client {
    node: Node,
}

protocol! {
    Client speaks Note {
        call_timeout = 5 s,
        max_calls = 2000,
        on Note::Text(_) => {},
        rpc Square -> Squared,
        rpc Slow -> Squared,
        rpc Stall -> Never,
        rpc Unserved -> Never,
    }
}

fn node(name: &str) -> Node {
    Node::new(Config {
        name: Some(name.into()),
        ..Default::default()
    })
}

async fn pair() -> (Server, Client, SocketAddr) {
    let server = Server {
        node: node("server"),
    };
    let client = Client {
        node: node("client"),
    };
    let server_addr = server.start().await.unwrap();
    client.enable_protocols().await;
    client.node().connect(server_addr).await.unwrap();
    wait_until_10s("the server to register the client", || {
        server.node().num_connected() == 1
    })
    .await;
    (server, client, server_addr)
}

#[tokio::test]
async fn a_thousand_concurrent_calls_each_get_their_own_answer() {
    let (server, client, server_addr) = pair().await;
    let calls: Vec<_> = (0..1000u64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { (i, client.call(server_addr, Square(i)).await) })
        })
        .collect();
    let mut answered = 0;
    for call in calls {
        let (i, answer) = call.await.unwrap();
        assert_eq!(answer.unwrap(), Squared(i * i));
        answered += 1;
    }
    assert_eq!(answered, 1000);
    assert_eq!(dsl::calls_in_flight(client.node()), 0);
    // ordinary messages still flow beside the calls
    client
        .send(server_addr, Note::Text("done".into()))
        .await
        .unwrap();

    client.node().shut_down().await;
    server.node().shut_down().await;
}

// A call that is given up on leaves no trace: the answer that arrives for it later must not be
// taken for the answer to a newer call (each call has an id of its own, never reused).
#[tokio::test]
async fn a_late_answer_never_reaches_a_newer_call() {
    let (server, client, server_addr) = pair().await;
    // given up on after 100 ms; the server answers it at 300 ms
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        client.call(server_addr, Slow(300)),
    );
    assert!(
        abandoned.await.is_err(),
        "the first call should have been given up on"
    );
    assert_eq!(dsl::calls_in_flight(client.node()), 0);
    // served beside the first and answered later, so it is still waiting when the abandoned
    // call's answer arrives
    let answer = client.call(server_addr, Slow(400)).await.unwrap();
    assert_eq!(
        answer,
        Squared(160_000),
        "the newer call got the abandoned call's answer"
    );
    client.node().shut_down().await;
    server.node().shut_down().await;
}

#[tokio::test]
async fn a_call_to_a_peer_that_disconnects_fails_cleanly() {
    let (server, client, server_addr) = pair().await;
    let err = tokio::time::timeout(Duration::from_secs(4), client.call(server_addr, Stall))
        .await
        .expect("the call must end before its own timeout")
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
    wait_until_10s("the client to drop the connection", || {
        client.node().num_connected() == 0
    })
    .await;
    assert_eq!(dsl::calls_in_flight(client.node()), 0);

    // and a call to a peer that is not connected fails at once
    let err = client.call(server_addr, Square(2)).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");

    client.node().shut_down().await;
    server.node().shut_down().await;
}

#[tokio::test]
async fn a_call_the_peer_does_not_serve_gets_its_reason() {
    let (server, client, server_addr) = pair().await;
    let err = client.call(server_addr, Unserved(1)).await.unwrap_err();
    assert!(err.to_string().contains("no handler"), "{err}");
    // the connection survives it
    assert_eq!(
        client.call(server_addr, Square(3)).await.unwrap(),
        Squared(9)
    );
    client.node().shut_down().await;
    server.node().shut_down().await;
}

/// A caller whose `OnDisconnect` is written by hand, beside its rpc lines.
#[pea2pea::node]
#[derive(Clone)]
struct Watcher {
    node: Node,
    left: Arc<Mutex<Vec<(SocketAddr, DisconnectOrigin)>>>,
}

protocol! {
    Watcher speaks Note {
        on Note::Text(_) => {},
        rpc Square -> Squared,
        rpc Stall -> Never,
    }
}

impl OnDisconnect for Watcher {
    async fn on_disconnect(&self, addr: SocketAddr, origin: DisconnectOrigin) {
        self.left.lock().unwrap().push((addr, origin));
    }
}

// DSL-06: rpc lines no longer need the DSL's own OnDisconnect (calls end on the connection's
// closed notification), so a node with rpc lines can have a hand-written one: both its hook
// and its calls work, and a call still ends as soon as the peer hangs up.
#[tokio::test]
async fn dsl_06_rpc_beside_a_hand_written_on_disconnect() {
    let server = Server {
        node: node("server"),
    };
    let server_addr = server.start().await.unwrap();
    let watcher = Watcher {
        node: node("watcher"),
        left: Default::default(),
    };
    watcher.enable_protocols().await;
    watcher.enable_on_disconnect().await;
    watcher.node().connect(server_addr).await.unwrap();

    assert_eq!(
        watcher.call(server_addr, Square(4)).await.unwrap(),
        Squared(16)
    );
    let err = tokio::time::timeout(Duration::from_secs(4), watcher.call(server_addr, Stall))
        .await
        .expect("the call must end when the peer hangs up, before its own 10 s timeout")
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted, "{err}");
    wait_until_10s("the hand-written on_disconnect to run", || {
        !watcher.left.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        *watcher.left.lock().unwrap(),
        vec![(server_addr, DisconnectOrigin::Reading)]
    );
    assert_eq!(dsl::calls_in_flight(watcher.node()), 0);
    watcher.node().shut_down().await;
    server.node().shut_down().await;
}
