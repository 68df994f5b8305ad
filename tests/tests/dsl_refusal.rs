//! Decode failures in the DSL (DSL-50..54): a peer whose message, request or response does not
//! decode is refused (with `rpc` lines, whose envelope can say so) and disconnected; both sides'
//! `on_disconnect` read why in the close reason, the failures are counted, and the node lives on.

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::BytesMut;
use pea2pea::{
    Config, DecodeError, DisconnectOrigin, Message, Node, Pea2Pea, dsl, message::Reader, protocol,
};
use pea2pea_tests::{raw, wait_until_10s};
use tokio::io::AsyncWriteExt;

/// The first version of a chat protocol.
mod v1 {
    #[derive(pea2pea::Message, Debug, Clone, PartialEq)]
    pub enum Chat {
        Say(String),
    }
}

/// The second: one variant more, which a v1 reader cannot decode.
mod v2 {
    #[derive(pea2pea::Message, Debug, Clone, PartialEq)]
    pub enum Chat {
        Say(String),
        React(u8),
    }
}

#[derive(Message, Debug, Clone, PartialEq)]
struct Ask;

#[derive(Message, Debug, Clone, PartialEq)]
struct Reply;

/// One byte on the wire: the request of `Old`'s `rpc Strict`. An rpc's method id is its
/// request's name, so [`wide::Strict`] (another version of it, two bytes) reaches this
/// handler.
#[derive(Debug, Clone, PartialEq)]
struct Strict(u8);

/// Two bytes on the wire: a `Strict` reader finds one left over. `Old` answers an `Ask` with
/// one where `New` expects a `Strict`.
#[derive(Debug, Clone, PartialEq)]
struct Wide(u16);

/// The request `New` sends as `Strict`: two bytes, as a [`Wide`].
mod wide {
    #[derive(Debug, Clone, PartialEq)]
    pub struct Strict(pub super::Wide);

    impl pea2pea::Message for Strict {
        fn encoded_len(&self) -> usize {
            self.0.encoded_len()
        }
        fn encode(&self, dst: &mut bytes::BytesMut) {
            self.0.encode(dst)
        }
        fn decode(src: &mut pea2pea::message::Reader) -> Result<Self, pea2pea::DecodeError> {
            super::Wide::decode(src).map(Strict)
        }
    }
}

impl Message for Strict {
    fn encoded_len(&self) -> usize {
        1
    }
    fn encode(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(&[self.0]);
    }
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Strict(src.read_u8("Strict")?))
    }
}

impl Message for Wide {
    fn encoded_len(&self) -> usize {
        2
    }
    fn encode(&self, dst: &mut BytesMut) {
        dst.extend_from_slice(&self.0.to_le_bytes());
    }
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Wide(u16::from_le_bytes(src.read_array("Wide")?)))
    }
}

/// How each connection of a node ended, as its `on_disconnect` saw it.
type Ended = Arc<Mutex<Vec<(DisconnectOrigin, Option<String>)>>>;

fn record(node: &Node, ended: &Ended, addr: SocketAddr, origin: DisconnectOrigin) {
    let reason = node.connection_info(addr).and_then(|i| i.close_reason());
    ended.lock().unwrap().push((origin, reason));
}

/// Speaks v1 with rpc lines: serves a `Strict` and answers an `Ask` with a `Wide`.
#[pea2pea::node]
#[derive(Clone)]
struct Old {
    node: Node,
    heard: Arc<Mutex<Vec<String>>>,
    ended: Ended,
}

protocol! {
    Old speaks v1::Chat {
        on v1::Chat::Say(text) => self.heard.lock().unwrap().push(text),
        rpc Strict(_) -> Reply => Reply,
        rpc Ask -> Wide => Wide(0x0101),
        on_disconnect(addr, origin) => record(self.node(), &self.ended, addr, origin),
    }
}

/// Speaks v2 with rpc lines: sends a two-byte `Strict` where `Old` expects one byte, and
/// expects a `Strict` where `Old` answers a `Wide`.
#[pea2pea::node]
#[derive(Clone)]
struct New {
    node: Node,
    ended: Ended,
}

protocol! {
    New speaks v2::Chat {
        on _ => {},
        rpc wide::Strict -> Reply,
        rpc Ask -> Strict,
        on_disconnect(addr, origin) => record(self.node(), &self.ended, addr, origin),
    }
}

/// `Old` without rpc lines: no envelope, so no refusal.
#[pea2pea::node]
#[derive(Clone)]
struct OldPlain {
    node: Node,
    ended: Ended,
}

protocol! {
    OldPlain speaks v1::Chat {
        on v1::Chat::Say(_) => {},
        on_disconnect(addr, origin) => record(self.node(), &self.ended, addr, origin),
    }
}

#[pea2pea::node]
#[derive(Clone)]
struct NewPlain {
    node: Node,
    ended: Ended,
}

protocol! {
    NewPlain speaks v2::Chat {
        on _ => {},
        on_disconnect(addr, origin) => record(self.node(), &self.ended, addr, origin),
    }
}

fn node(name: &str) -> Node {
    Node::new(Config {
        name: Some(name.into()),
        ..Config::loopback()
    })
}

fn old_node() -> Old {
    Old {
        node: node("old"),
        heard: Default::default(),
        ended: Default::default(),
    }
}

fn new_node() -> New {
    New {
        node: node("new"),
        ended: Default::default(),
    }
}

/// Waits for `n` ended connections and returns them.
async fn ended(ended: &Ended, n: usize) -> Vec<(DisconnectOrigin, Option<String>)> {
    wait_until_10s("on_disconnect", || ended.lock().unwrap().len() == n).await;
    ended.lock().unwrap().clone()
}

fn reason(ended: &[(DisconnectOrigin, Option<String>)], i: usize) -> &str {
    ended[i]
        .1
        .as_deref()
        .expect("a close reason in on_disconnect")
}

/// Asserts what each side of a refused frame knows once both connections ended: the sender
/// (whose frame was refused) reads "the peer refused a message: {refusal}..." and counts it in
/// `dsl::refused_by_peer`; the receiver reads "the peer sent invalid data: ..." and counts a
/// decode failure; both reasons name `detail`, and neither side counts the other's figure.
async fn both_know_why(
    (sender, sender_ended): (&Node, &Ended),
    (receiver, receiver_ended): (&Node, &Ended),
    refusal: &str,
    detail: &str,
) {
    let sender_ended = ended(sender_ended, 1).await;
    let refused = reason(&sender_ended, 0);
    let expected = format!("the peer refused a message: {refusal}");
    assert!(refused.starts_with(&expected), "{refused}");
    assert!(refused.contains(detail), "{refused}");
    assert_eq!(dsl::refused_by_peer(sender), 1);
    assert_eq!(sender.stats().decode_failures(), 0);

    let receiver_ended = ended(receiver_ended, 1).await;
    let invalid = reason(&receiver_ended, 0);
    assert!(
        invalid.starts_with("the peer sent invalid data: "),
        "{invalid}"
    );
    assert!(invalid.contains(detail), "{invalid}");
    assert_eq!(receiver.stats().decode_failures(), 1);
    assert_eq!(dsl::refused_by_peer(receiver), 0);
}

// DSL-50: with rpc lines, a v2 message a v1 reader cannot decode (a new variant) is refused:
// the reader counts it, its on_disconnect reads what failed; the sender's reads "the peer
// refused a message: ..." and counts it in `dsl::refused_by_peer`; the v1 node lives on and
// serves the next peer.
#[tokio::test]
async fn dsl_50_an_undecodable_message_is_refused_and_both_sides_know_why() {
    let (old, new) = (old_node(), new_node());
    let old_addr = old.start().await.unwrap();
    new.enable_protocols().await;
    new.node().connect(old_addr).await.unwrap();
    new.send(old_addr, v2::Chat::React(1)).await.unwrap();
    both_know_why(
        (new.node(), &new.ended),
        (old.node(), &old.ended),
        "cannot decode",
        "unknown variant tag 1",
    )
    .await;
    // the reader itself closed it (a request or response is refused by the DSL's own code)
    assert_eq!(old.ended.lock().unwrap()[0].0, DisconnectOrigin::Reading);

    // the v1 node lives on: a peer that sends what it knows is heard
    let newer = new_node();
    newer.enable_protocols().await;
    newer.node().connect(old_addr).await.unwrap();
    newer
        .send(old_addr, v2::Chat::Say("hi".into()))
        .await
        .unwrap();
    wait_until_10s("old to hear", || old.heard.lock().unwrap().len() == 1).await;
    for node in [old.node(), new.node(), newer.node()] {
        node.shut_down().await;
    }
}

// DSL-51: a request the server cannot decode gets the caller a failure answer ("invalid
// request") and a refusal: the caller's on_disconnect reads "the peer refused a message";
// the server counts a decode failure and an invalid request.
#[tokio::test]
async fn dsl_51_an_undecodable_request_is_refused() {
    let (old, new) = (old_node(), new_node());
    let old_addr = old.start().await.unwrap();
    new.enable_protocols().await;
    new.node().connect(old_addr).await.unwrap();
    let err = new.call(old_addr, wide::Strict(Wide(7))).await.unwrap_err();
    assert!(err.to_string().contains("invalid request"), "{err}");
    both_know_why(
        (new.node(), &new.ended),
        (old.node(), &old.ended),
        "invalid",
        "left over",
    )
    .await;
    assert_eq!(dsl::invalid_requests(old.node()), 1);
    old.node().shut_down().await;
    new.node().shut_down().await;
}

// DSL-52: a response the caller cannot decode fails its call (`InvalidData`), is counted as
// the caller's decode failure and refused: the server's on_disconnect reads "the peer refused a
// message" and counts it.
#[tokio::test]
async fn dsl_52_an_undecodable_response_is_refused() {
    let (old, new) = (old_node(), new_node());
    let old_addr = old.start().await.unwrap();
    new.enable_protocols().await;
    new.node().connect(old_addr).await.unwrap();
    let err = new.call(old_addr, Ask).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    both_know_why(
        (old.node(), &old.ended),
        (new.node(), &new.ended),
        "invalid",
        "left over",
    )
    .await;
    old.node().shut_down().await;
    new.node().shut_down().await;
}

// DSL-53: without rpc lines there is no envelope to refuse with: the reader still counts the
// failure and its on_disconnect reads what failed; the sender sees only the close ("the peer
// closed the connection").
#[tokio::test]
async fn dsl_53_without_rpc_lines_the_sender_sees_the_close() {
    let old = OldPlain {
        node: node("old"),
        ended: Default::default(),
    };
    let new = NewPlain {
        node: node("new"),
        ended: Default::default(),
    };
    let old_addr = old.start().await.unwrap();
    new.enable_protocols().await;
    new.node().connect(old_addr).await.unwrap();
    new.send(old_addr, v2::Chat::React(1)).await.unwrap();

    let old_ended = ended(&old.ended, 1).await;
    assert!(
        reason(&old_ended, 0).contains("unknown variant tag 1"),
        "{old_ended:?}"
    );
    assert_eq!(old.node().stats().decode_failures(), 1);
    let new_ended = ended(&new.ended, 1).await;
    assert_eq!(
        reason(&new_ended, 0),
        "the peer closed the connection",
        "{new_ended:?}"
    );
    assert_eq!(dsl::refused_by_peer(new.node()), 0);
    old.node().shut_down().await;
    new.node().shut_down().await;
}

/// A frame of the rpc envelope: a 4-byte big-endian length, then `body`.
fn envelope(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

// DSL-54: refusals from the network are never answered and cannot make a node loop: a raw peer
// that floods refused frames (some with a reason of 4 KiB and control characters) is closed
// after the first, counted once per frame read, sent nothing back; one that sends garbage
// after a refusal gets at most one refusal in return. The node lives on.
#[tokio::test]
async fn dsl_54_refusals_from_the_network_are_never_answered() {
    let old = old_node();
    let old_addr = old.start().await.unwrap();

    let mut flood = Vec::new();
    let mut long = vec![4u8];
    long.extend(std::iter::repeat_n(b'\n', 4096));
    for _ in 0..1000 {
        flood.extend(envelope(&long));
        flood.extend(envelope(b"\x04no"));
    }
    let mut socket = raw::raw_connect(old_addr).await;
    let _ = socket.write_all(&flood).await; // the node may close before it has read it all
    let mut received = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut socket, &mut received);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the node did not close the connection")
        .ok();
    assert!(received.is_empty(), "a refusal was answered: {received:?}");
    let refusals = dsl::refused_by_peer(old.node());
    assert!((1..=2).contains(&refusals), "{refusals} refusals counted");
    let old_ended = ended(&old.ended, 1).await;
    let spaces = " ".repeat(dsl::MAX_REFUSAL);
    assert_eq!(
        reason(&old_ended, 0),
        format!("the peer refused a message: {spaces}"),
        "cut to MAX_REFUSAL bytes, line breaks replaced"
    );

    // garbage (an unknown envelope kind) gets one refusal, and the close
    let mut socket = raw::raw_connect(old_addr).await;
    socket.write_all(&envelope(&[9, 9, 9])).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut socket, &mut received);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the node did not close the connection")
        .ok();
    assert_eq!(received[4], 4, "a refused frame: {received:?}");
    assert_eq!(
        received.len(),
        4 + u32::from_be_bytes(received[..4].try_into().unwrap()) as usize
    );
    assert_eq!(old.node().stats().decode_failures(), 1);

    // and the node still serves a well-behaved peer
    let new = new_node();
    new.enable_protocols().await;
    new.node().connect(old_addr).await.unwrap();
    new.send(old_addr, v2::Chat::Say("still here".into()))
        .await
        .unwrap();
    wait_until_10s("old to hear", || old.heard.lock().unwrap().len() == 1).await;
    old.node().shut_down().await;
    new.node().shut_down().await;
}
