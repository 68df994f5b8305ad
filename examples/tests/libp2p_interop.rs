//! Interop with a real rust-libp2p node, through the `libp2p` example's own code, and what the
//! pea2pea node does with garbage at each layer, sent from the libp2p side's position: a raw
//! socket that dials it and speaks correctly up to the point where it sends garbage.

// real sockets and a real libp2p node: not in a simulation build (which has no libp2p)
#![cfg(not(pea2pea_sim))]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use libp2p_identity::Keypair;
use pea2pea::Pea2Pea;
use pea2pea_examples::{
    libp2p_peer::{
        Counts, Libp2pPeer, NoiseIdentity, PROTOCOLS, multistream, noise, upgrade,
        yamux::{self, Frame, FrameCodec, Kind},
    },
    noise_stream::NoiseStream,
    wait_until,
};
// the stream the node's handshake takes: a raw client speaks through the same type
use pea2pea::net::TcpStream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Encoder, FramedRead};

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/libp2p.rs"]
mod example;

use example::libp2p_interop::{self as interop, Direction, rust_side::RustPeer};

const DEADLINE: Duration = Duration::from_secs(20);

// HS-05: the handshake takes the TCP stream and returns it wrapped in Noise, which Reading and
// Writing then use for yamux.
#[tokio::test]
async fn both_directions_authenticate_ping_identify_and_close_cleanly() {
    let ours = interop::our_node("pea2pea").await.unwrap();
    let theirs = RustPeer::start().await.unwrap();
    let reports = interop::interop(&ours, &theirs, 5).await.unwrap();
    let our_listen_addr = ours.listen_multiaddr().unwrap();

    assert_eq!(reports.len(), 2);
    for report in &reports {
        let direction = report.direction;
        // the handshake completed and each side authenticated the other's PeerId
        assert_eq!(report.peer_seen_by_us, theirs.peer_id, "{direction:?}");
        assert!(report.libp2p_saw_us, "{direction:?}");
        assert_eq!(report.libp2p_dialed, direction == Direction::TheyDial);
        // at least 5 pings answered each way
        assert_eq!(report.our_round_trips.len(), 5, "{direction:?}");
        assert!(report.their_pings_answered >= 5, "{report:?}");
        assert!(report.pings_we_answered >= 5, "{report:?}");
        assert!(report.their_ping_failures.is_empty(), "{report:?}");
        // identify both ways, with the expected agents, protocols and addresses
        let theirs_id = report.their_identify.as_ref().expect("their identify");
        assert_eq!(theirs_id.agent_version, interop::rust_side::AGENT);
        for protocol in ["/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"] {
            assert!(
                theirs_id.protocols.iter().any(|p| p == protocol),
                "{theirs_id:?}"
            );
        }
        assert!(
            theirs_id.listen_addrs.contains(&theirs.listen_addr),
            "{theirs_id:?}"
        );
        assert_eq!(theirs_id.public_key.to_peer_id(), theirs.peer_id);
        let (agent, protocols, listen_addrs) = report.what_they_learnt.clone().unwrap();
        assert_eq!(
            agent,
            concat!("pea2pea-examples/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(protocols, PROTOCOLS);
        // libp2p gives the address without the /p2p suffix
        assert_eq!(listen_addrs.len(), 1);
        assert!(
            our_listen_addr
                .to_string()
                .starts_with(&listen_addrs[0].to_string())
        );
        // the dialling side closed; both sides saw the connection end
        assert!(report.closed_here, "{direction:?}");
        match direction {
            // we said go-away: libp2p's yamux reports the session closed by the peer
            Direction::WeDial => {
                let cause = report.closed_there.clone().unwrap().unwrap();
                assert!(cause.contains("closed"), "{cause}");
            }
            // libp2p closed it itself: no error on its side
            Direction::TheyDial => assert_eq!(report.closed_there, Some(None)),
        }
    }
    assert_eq!(
        ours.counts().pings_answered,
        reports.iter().map(|r| r.pings_we_answered).sum::<u64>()
    );
    assert_eq!(rejections(ours.counts()), 0);
    assert_eq!(ours.counts().streams_reset, 0);
    assert_eq!(theirs.errors(), Vec::<String>::new());

    ours.shut_down().await;
    assert_eq!(ours.node().num_connected(), 0);
    theirs.stop().await.unwrap();
}

// HS-04: `dial` (the node's `connect`) returns the handshake's own error.
#[tokio::test]
async fn a_libp2p_node_with_another_peer_id_is_refused() {
    let ours = interop::our_node("pea2pea").await.unwrap();
    let theirs = RustPeer::start().await.unwrap();
    let addr = pea2pea_examples::libp2p_peer::socket_addr_of(&theirs.listen_addr).unwrap();
    let someone_else = Keypair::generate_ed25519().public().to_peer_id();

    let error = ours.dial(addr, Some(someone_else)).await.unwrap_err();
    assert!(error.to_string().contains("proved it is"), "{error}");
    assert!(ours.peer(addr).is_none());
    assert_eq!(ours.counts().noise_rejections, 1);
    // the right PeerId still gets through
    assert_eq!(
        ours.dial(addr, Some(theirs.peer_id)).await.unwrap(),
        theirs.peer_id
    );
    assert_eq!(ours.ping(addr, 2).await.unwrap().len(), 2);

    // shutting down with the connection open says go-away to libp2p first
    ours.shut_down().await;
    let our_id = ours.peer_id();
    assert!(wait_until(DEADLINE, || theirs.observed(&our_id).closed.len() == 1).await);
    theirs.stop().await.unwrap();
}

fn rejections(counts: Counts) -> u64 {
    counts.multistream_rejections + counts.noise_rejections + counts.yamux_rejections
}

/// Reads until the node closes the connection; `false` if it does not within the deadline.
async fn closed_by_node<S: AsyncRead + Unpin>(stream: &mut S) -> bool {
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(DEADLINE, read_to_end).await.is_ok()
}

/// Dials `node`'s listening address.
async fn dial(node: &Libp2pPeer) -> TcpStream {
    let addr = node.node().listening_addr().await.unwrap();
    TcpStream::connect(addr).await.unwrap()
}

/// Sends `bytes` as multistream-select messages on a raw socket.
async fn send_messages(stream: &mut TcpStream, messages: &[&str]) {
    multistream::write(stream, messages).await.unwrap();
}

/// After the garbage: every connection is gone, `rejected` is what the node counted, and it
/// still serves a real libp2p node (which dials it, pings and identifies); then it shuts down.
async fn lives_on(ours: Libp2pPeer, rejected: Counts) {
    let node = ours.node();
    assert!(
        wait_until(DEADLINE, || node.num_connected() == 0
            && node.num_connecting() == 0)
        .await,
        "the node kept a connection"
    );
    let counts = ours.counts();
    assert_eq!(
        Counts {
            pings_answered: 0,
            ..counts
        },
        rejected
    );
    let theirs = RustPeer::start().await.unwrap();
    let report = interop::run_direction(&ours, &theirs, Direction::TheyDial, 5)
        .await
        .unwrap();
    assert!(interop::all_good(&report, &theirs.peer_id, 5), "{report:?}");
    theirs.stop().await.unwrap();
    ours.shut_down().await;
}

// HS-01: each failed handshake leaves nothing registered; the counters say which layer failed.
#[tokio::test]
async fn garbage_in_multistream_select_closes_the_connection() {
    let ours = interop::our_node("target").await.unwrap();

    // a well-framed message that is not the header (an HTTP request line)
    let mut raw = dial(&ours).await;
    send_messages(&mut raw, &["GET / HTTP/1.1"]).await;
    assert!(closed_by_node(&mut raw).await);

    // a length prefix far past the largest message
    let mut raw = dial(&ours).await;
    raw.write_all(&[0xff, 0xff, 0xff, 0x0f]).await.unwrap();
    assert!(closed_by_node(&mut raw).await);

    // the header, then only protocols the node does not speak
    let mut raw = dial(&ours).await;
    let proposals = ["/tls/1.0.0"; multistream::MAX_PROPOSALS + 1];
    send_messages(&mut raw, &[&[multistream::HEADER][..], &proposals].concat()).await;
    assert!(closed_by_node(&mut raw).await);

    // a message without its newline
    let mut raw = dial(&ours).await;
    raw.write_all(b"\x13/multistream/1.0.0X").await.unwrap();
    assert!(closed_by_node(&mut raw).await);

    let rejected = Counts {
        multistream_rejections: 4,
        ..Counts::default()
    };
    lives_on(ours, rejected).await;
}

// HS-01, as above, for the Noise layer.
#[tokio::test]
async fn garbage_in_noise_closes_the_connection() {
    let ours = interop::our_node("target").await.unwrap();

    // /noise agreed, then a first handshake message too short to hold a key
    let mut raw = dial(&ours).await;
    multistream::propose(&mut raw, noise::PROTOCOL)
        .await
        .unwrap();
    raw.write_all(b"\x00\x03abc").await.unwrap();
    assert!(closed_by_node(&mut raw).await);

    // a correct handshake, but the payload claims an identity that did not sign our static key
    let mut raw = dial(&ours).await;
    multistream::propose(&mut raw, noise::PROTOCOL)
        .await
        .unwrap();
    let honest = NoiseIdentity::new(Keypair::generate_ed25519()).unwrap();
    let mut forger = NoiseIdentity::new(Keypair::generate_ed25519()).unwrap();
    forger.payload = honest.payload.clone();
    let (peer, _) = noise::handshake(&mut raw, &forger, true).await.unwrap();
    assert_eq!(
        peer,
        ours.peer_id(),
        "the forger still authenticated the node"
    );
    assert!(closed_by_node(&mut raw).await);

    // a payload that is not a protobuf
    let mut raw = dial(&ours).await;
    multistream::propose(&mut raw, noise::PROTOCOL)
        .await
        .unwrap();
    let mut garbled = NoiseIdentity::new(Keypair::generate_ed25519()).unwrap();
    garbled.payload.identity_key = vec![0xff; 40];
    noise::handshake(&mut raw, &garbled, true).await.unwrap();
    assert!(closed_by_node(&mut raw).await);

    let rejected = Counts {
        noise_rejections: 3,
        ..Counts::default()
    };
    lives_on(ours, rejected).await;
}

/// A raw connection upgraded correctly (multistream, Noise, multistream), ready for yamux.
async fn upgraded(ours: &Libp2pPeer) -> NoiseStream {
    let me = NoiseIdentity::new(Keypair::generate_ed25519()).unwrap();
    let (peer, stream) = upgrade::upgrade(dial(ours).await, &me, true, Some(ours.peer_id()))
        .await
        .unwrap();
    assert_eq!(peer, ours.peer_id());
    stream
}

async fn send_frame(stream: &mut NoiseStream, frame: Frame) {
    let mut buf = BytesMut::new();
    FrameCodec::new(Default::default())
        .encode(frame, &mut buf)
        .unwrap();
    stream.write_all(&buf).await.unwrap();
    stream.flush().await.unwrap();
}

/// Reads frames until one matches `wanted`; `None` if the connection ends first.
async fn frame_where(
    frames: &mut FramedRead<NoiseStream, FrameCodec>,
    wanted: impl Fn(&Frame) -> bool,
) -> Option<Frame> {
    use libp2p::futures::StreamExt;
    let find = async {
        while let Some(Ok(frame)) = frames.next().await {
            if wanted(&frame) {
                return Some(frame);
            }
        }
        None
    };
    tokio::time::timeout(DEADLINE, find).await.ok().flatten()
}

// RD-02: a frame the codec cannot decode ends the connection; a breach of yamux found while
// processing a frame ends it too, after a go-away.
#[tokio::test]
async fn garbage_in_yamux_closes_the_connection() {
    let ours = interop::our_node("target").await.unwrap();

    // a header of another version
    let mut raw = upgraded(&ours).await;
    raw.write_all(&[7, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        .await
        .unwrap();
    raw.flush().await.unwrap();
    assert!(closed_by_node(&mut raw).await);

    // an unknown frame type
    let mut raw = upgraded(&ours).await;
    raw.write_all(&[0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
        .await
        .unwrap();
    raw.flush().await.unwrap();
    assert!(closed_by_node(&mut raw).await);

    // a stream opened with the listener's numbering (the dialer's ids are odd): the node says
    // go-away with a protocol error, then closes
    let mut raw = upgraded(&ours).await;
    send_frame(&mut raw, Frame::window_update(2, yamux::SYN, 0)).await;
    let mut frames = FramedRead::new(raw, FrameCodec::new(Default::default()));
    let go_away = frame_where(&mut frames, |f| f.kind == Kind::GoAway).await;
    assert_eq!(
        go_away.map(|f| f.value),
        Some(yamux::GO_AWAY_PROTOCOL_ERROR)
    );
    assert!(closed_by_node(frames.get_mut()).await);

    // more data than the stream's window: one byte that starts a length prefix (so it stays
    // unconsumed), then a whole window's worth
    let mut raw = upgraded(&ours).await;
    let first = Bytes::from_static(&[0x8a]);
    send_frame(&mut raw, Frame::data(1, yamux::SYN, first)).await;
    let window = Bytes::from(vec![0u8; yamux::WINDOW as usize]);
    send_frame(&mut raw, Frame::data(1, 0, window)).await;
    assert!(closed_by_node(&mut raw).await);

    let rejected = Counts {
        yamux_rejections: 4,
        ..Counts::default()
    };
    lives_on(ours, rejected).await;
}

#[tokio::test]
async fn garbage_on_one_stream_resets_only_that_stream() {
    let ours = interop::our_node("target").await.unwrap();
    let mut raw = upgraded(&ours).await;
    // not a multistream-select header
    let garbage = Bytes::from_static(b"\x05hello");
    send_frame(&mut raw, Frame::data(1, yamux::SYN, garbage)).await;
    let mut frames = FramedRead::new(raw, FrameCodec::new(Default::default()));
    let reset = frame_where(&mut frames, |f| f.stream == 1 && f.has(yamux::RST)).await;
    assert!(reset.is_some(), "the stream was not reset");
    assert!(wait_until(DEADLINE, || ours.counts().streams_reset == 1).await);
    // the connection lives on: a session ping is answered
    send_frame(frames.get_mut(), Frame::ping(yamux::SYN, 42)).await;
    let pong = frame_where(&mut frames, |f| f.kind == Kind::Ping)
        .await
        .unwrap();
    assert!(pong.has(yamux::ACK) && pong.value == 42, "{pong:?}");
    assert_eq!(ours.node().num_connected(), 1);
    assert_eq!(rejections(ours.counts()), 0);
    drop(frames);
    ours.shut_down().await;
}
