//! The network workloads, written once against the pea2pea 0.57 trait API and against raw
//! tokio. This file is compiled twice: here, against this workspace's `pea2pea`, and in
//! `benches/published`, against the published crate, so both engines run the same code.

use std::{
    io,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use self::tokio_stream_lite::next_frame;
use bytes::{Bytes, BytesMut};
use pea2pea::{
    Config, Connection, ConnectionSide, DisconnectOrigin, Node, Pea2Pea,
    protocols::{Handshake, OnConnect, OnDisconnect, Reading, Writing},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Notify, mpsc},
};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

/// Frames with a 4-byte length prefix and room for the largest message used here.
fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(1 << 20)
        .new_codec()
}

/// A config for benchmark nodes: loopback, and limits high enough for every workload.
pub fn config() -> Config {
    Config {
        listener_addr: Some("127.0.0.1:0".parse().unwrap()),
        listener_backlog: 1024,
        max_connections: 2000,
        max_connections_per_ip: 2000,
        max_connecting: 2000,
        connection_timeout_ms: 10_000,
        ..Default::default()
    }
}

/// Counts what arrives, and wakes a waiter once a target number of bytes is in.
#[derive(Default)]
pub struct Counter {
    bytes: AtomicU64,
    target: AtomicU64,
    reached: Notify,
}

impl Counter {
    pub fn add(&self, n: usize) {
        let total = self.bytes.fetch_add(n as u64, Relaxed) + n as u64;
        let target = self.target.load(Relaxed);
        if target != 0 && total >= target {
            self.reached.notify_one();
        }
    }

    pub async fn wait_for(&self, target: u64) {
        self.target.store(target, Relaxed);
        while self.bytes.load(Relaxed) < target {
            // notify_one stores a permit, so a wake-up between the check and here is not lost
            self.reached.notified().await;
        }
    }
}

/// A node that reads frames, counts their payload bytes, and (for ping-pong) echoes them.
/// `QUEUE` is its outbound queue depth (the engine's default is 64).
#[derive(Clone)]
pub struct Peer<const QUEUE: usize = 64> {
    node: Node,
    counter: Arc<Counter>,
    echo: bool,
    replies: Option<mpsc::UnboundedSender<()>>,
}

impl<const QUEUE: usize> Pea2Pea for Peer<QUEUE> {
    fn node(&self) -> &Node {
        &self.node
    }
}

impl<const QUEUE: usize> Peer<QUEUE> {
    fn new(echo: bool) -> Self {
        Self {
            node: Node::new(config()),
            counter: Default::default(),
            echo,
            replies: None,
        }
    }
}

impl<const QUEUE: usize> Reading for Peer<QUEUE> {
    type Message = BytesMut;
    type Codec = LengthDelimitedCodec;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
        codec()
    }

    async fn process_message(&self, source: SocketAddr, message: BytesMut) {
        self.counter.add(message.len());
        if self.echo {
            let _ = self.unicast_fast(source, message.freeze());
        }
        if let Some(replies) = &self.replies {
            let _ = replies.send(());
        }
    }
}

impl<const QUEUE: usize> Writing for Peer<QUEUE> {
    const MESSAGE_QUEUE_DEPTH: usize = QUEUE;

    type Message = Bytes;
    type Codec = LengthDelimitedCodec;

    fn codec(&self, _addr: SocketAddr, _side: ConnectionSide) -> Self::Codec {
        codec()
    }
}

impl<const QUEUE: usize> Handshake for Peer<QUEUE> {
    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        self.borrow_stream(&mut conn).set_nodelay(true)?;
        Ok(conn)
    }
}

impl<const QUEUE: usize> OnConnect for Peer<QUEUE> {
    async fn on_connect(&self, _addr: SocketAddr) {}
}

impl<const QUEUE: usize> OnDisconnect for Peer<QUEUE> {
    async fn on_disconnect(&self, _addr: SocketAddr, _origin: DisconnectOrigin) {}
}

async fn start<const QUEUE: usize>(peer: &Peer<QUEUE>) -> SocketAddr {
    peer.enable_handshake().await;
    peer.enable_reading().await;
    peer.enable_writing().await;
    peer.node.toggle_listener().await.unwrap().unwrap()
}

/// Queues a message. A refused send (the queue is full) is retried at once, since an engine
/// may make room as it refuses; only when the retry is refused too does the sender yield.
/// The payload is cloned once per attempt, as raw tokio's loop clones it once per message.
async fn send<const QUEUE: usize>(peer: &Peer<QUEUE>, addr: SocketAddr, msg: &Bytes) {
    let mut refused = 0;
    loop {
        match peer.unicast_fast(addr, msg.clone()) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::QuotaExceeded => {
                refused += 1;
                if refused > 1 {
                    tokio::task::yield_now().await;
                }
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
}

/// `senders` nodes each send `count` messages of `size` bytes to one receiver; returns the
/// time from the first send until the receiver has every byte. `QUEUE` is the senders'
/// outbound queue depth, which bounds how many messages one write can carry.
pub async fn pea2pea_stream<const QUEUE: usize>(
    senders: usize,
    count: usize,
    size: usize,
) -> Duration {
    let receiver = Peer::<QUEUE>::new(false);
    let addr = start(&receiver).await;
    let mut nodes = Vec::new();
    for _ in 0..senders {
        let sender = Peer::<QUEUE>::new(false);
        start(&sender).await;
        sender.node.connect(addr).await.unwrap();
        nodes.push(sender);
    }
    let payload = Bytes::from(vec![7u8; size]);
    let begin = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for sender in nodes.clone() {
        let payload = payload.clone();
        tasks.spawn(async move {
            for _ in 0..count {
                send(&sender, addr, &payload).await;
            }
        });
    }
    receiver
        .counter
        .wait_for((senders * count * size) as u64)
        .await;
    let elapsed = begin.elapsed();
    while tasks.join_next().await.is_some() {}
    for node in nodes.iter().map(|n| &n.node).chain([&receiver.node]) {
        node.shut_down().await;
    }
    elapsed
}

/// The raw-tokio version of [`pea2pea_stream`]: one task per connection and direction, the
/// same codec, `TCP_NODELAY`, writes fed into a `FramedWrite` and flushed when it chooses.
pub async fn raw_stream(senders: usize, count: usize, size: usize) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(Counter::default());
    let acceptor = {
        let counter = counter.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut frames = FramedRead::new(stream, codec());
                    while let Some(Ok(frame)) = next_frame(&mut frames).await {
                        counter.add(frame.len());
                    }
                });
            }
        })
    };
    let mut sinks = Vec::new();
    for _ in 0..senders {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        sinks.push(FramedWrite::new(stream, codec()));
    }
    let payload = Bytes::from(vec![7u8; size]);
    let begin = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut sink in sinks {
        let payload = payload.clone();
        tasks.spawn(async move {
            for _ in 0..count {
                tokio_stream_lite::feed(&mut sink, payload.clone())
                    .await
                    .unwrap();
            }
            tokio_stream_lite::flush(&mut sink).await.unwrap();
            sink
        });
    }
    counter.wait_for((senders * count * size) as u64).await;
    let elapsed = begin.elapsed();
    while tasks.join_next().await.is_some() {}
    acceptor.abort();
    elapsed
}

/// The physical limit of a one-way stream on this machine: one thread writes `total` bytes
/// in `chunk`-byte writes and another reads them into a buffer of the same size, over plain
/// blocking sockets: no framing, no codec, no runtime. What is left is the kernel's loopback
/// and its copies. Returns the time from the first write until the reader has every byte.
pub async fn limit_blast(total: usize, chunk: usize) -> Duration {
    blast(vec![7u8; chunk], total, |_, n| n).await
}

/// The limit for small messages: `count` records of a 4-byte length and `size` bytes, framed
/// in advance and written in writes of about `chunk` bytes; the reader walks the length
/// prefixes to count records (the least any framed receiver must do). Returns the time from
/// the first write until the reader has counted every record.
pub async fn limit_record_blast(count: usize, size: usize, chunk: usize) -> Duration {
    let record = 4 + size;
    let per_write = (chunk / record).max(1);
    let mut framed = Vec::with_capacity(per_write * record);
    for _ in 0..per_write {
        framed.extend_from_slice(&(size as u32).to_be_bytes());
        framed.extend_from_slice(&vec![7u8; size]);
    }
    // the reader's carry: bytes of a record cut by a read, and the records counted
    let mut carry = Vec::with_capacity(record);
    blast(framed, count * record, move |buf, n| {
        carry.extend_from_slice(&buf[..n]);
        let mut at = 0;
        let mut records = 0;
        while carry.len() - at >= 4 {
            let len = u32::from_be_bytes(carry[at..at + 4].try_into().unwrap()) as usize;
            if carry.len() - at < 4 + len {
                break;
            }
            at += 4 + len;
            records += 1;
        }
        carry.drain(..at);
        records * record
    })
    .await
}

/// One thread writes `data` over and over until `total` bytes are out (the last write cut
/// short); another reads into a buffer as large as `data` and hands each read to `consume`,
/// which says how many bytes it accounted for; the run ends when that reaches `total`.
async fn blast(
    data: Vec<u8>,
    total: usize,
    mut consume: impl FnMut(&[u8], usize) -> usize + Send + 'static,
) -> Duration {
    use std::io::{Read, Write};
    tokio::task::spawn_blocking(move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut write = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut read, _) = listener.accept().unwrap();
        for s in [&read, &write] {
            s.set_nodelay(true).unwrap();
        }
        let mut buf = vec![0u8; data.len()];
        let begin = Instant::now();
        let writer = std::thread::spawn(move || {
            let mut left = total;
            while left > 0 {
                let n = left.min(data.len());
                write.write_all(&data[..n]).unwrap();
                left -= n;
            }
            write
        });
        let mut got = 0;
        while got < total {
            let n = read.read(&mut buf).unwrap();
            assert!(n != 0, "the blast's writer closed early");
            got += consume(&buf, n);
        }
        let elapsed = begin.elapsed();
        drop(writer.join());
        elapsed
    })
    .await
    .unwrap()
}

/// The latency limit: round trips of `size` bytes over plain loopback sockets, both ends
/// served by one blocking thread (no runtime, no framing, no thread wake-up: on loopback a
/// write has reached the other socket when it returns, so each read finds its bytes waiting).
/// What is left is the kernel's cost: four system calls and two passes through the TCP stack.
pub async fn limit_pingpong(rounds: usize, size: usize) -> Vec<Duration> {
    use std::io::{Read, Write};
    tokio::task::spawn_blocking(move || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        for stream in [&client, &server] {
            stream.set_nodelay(true).unwrap();
        }
        let payload = vec![1u8; size];
        let mut buf = vec![0u8; size];
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let begin = std::time::Instant::now();
            client.write_all(&payload).unwrap();
            server.read_exact(&mut buf).unwrap();
            server.write_all(&buf).unwrap();
            client.read_exact(&mut buf).unwrap();
            times.push(begin.elapsed());
        }
        times
    })
    .await
    .unwrap()
}

/// Round-trip times of `rounds` request/response exchanges of `size` bytes, one at a time.
pub async fn pea2pea_pingpong(rounds: usize, size: usize) -> Vec<Duration> {
    let server = Peer::<64>::new(true);
    let addr = start(&server).await;
    let (replies, mut replied) = mpsc::unbounded_channel();
    let client = Peer::<64> {
        replies: Some(replies),
        ..Peer::<64>::new(false)
    };
    start(&client).await;
    client.node.connect(addr).await.unwrap();
    let payload = Bytes::from(vec![1u8; size]);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let begin = Instant::now();
        client.unicast_fast(addr, payload.clone()).unwrap();
        replied.recv().await.unwrap();
        times.push(begin.elapsed());
    }
    client.node.shut_down().await;
    server.node.shut_down().await;
    times
}

/// The raw-tokio version of [`pea2pea_pingpong`].
pub async fn raw_pingpong(rounds: usize, size: usize) -> Vec<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        let mut frames = FramedRead::new(read, codec());
        let mut sink = FramedWrite::new(write, codec());
        while let Some(Ok(frame)) = next_frame(&mut frames).await {
            tokio_stream_lite::send(&mut sink, frame.freeze())
                .await
                .unwrap();
        }
    });
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (read, write) = stream.into_split();
    let mut frames = FramedRead::new(read, codec());
    let mut sink = FramedWrite::new(write, codec());
    let payload = Bytes::from(vec![1u8; size]);
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let begin = Instant::now();
        tokio_stream_lite::send(&mut sink, payload.clone())
            .await
            .unwrap();
        next_frame(&mut frames).await.unwrap().unwrap();
        times.push(begin.elapsed());
    }
    drop((sink, frames));
    let _ = server.await;
    times
}

/// `clients` nodes dial one node at once; returns the time until every dial has completed.
pub async fn pea2pea_connect_burst(clients: usize) -> Duration {
    let server = Peer::<64>::new(false);
    let addr = start(&server).await;
    let mut nodes = Vec::new();
    for _ in 0..clients {
        let client = Peer::<64>::new(false);
        client.enable_handshake().await;
        client.enable_reading().await;
        client.enable_writing().await;
        nodes.push(client);
    }
    let begin = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in nodes.clone() {
        tasks.spawn(async move { client.node.connect(addr).await.unwrap() });
    }
    while tasks.join_next().await.is_some() {}
    while server.node.num_connected() < clients {
        tokio::task::yield_now().await;
    }
    let elapsed = begin.elapsed();
    for node in nodes.iter().map(|n| &n.node).chain([&server.node]) {
        node.shut_down().await;
    }
    elapsed
}

/// The raw-tokio version of [`pea2pea_connect_burst`]: the server spawns a reading task per
/// connection, each client a writer half and a reading task.
pub async fn raw_connect_burst(clients: usize) -> Duration {
    let listener = tokio::net::TcpSocket::new_v4().unwrap();
    listener.set_reuseaddr(true).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = listener.listen(1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let acceptor = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut conns = Vec::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (read, write) = stream.into_split();
                conns.push(write);
                tokio::spawn(async move {
                    let mut frames = FramedRead::new(read, codec());
                    while let Some(Ok(_)) = next_frame(&mut frames).await {}
                });
                accepted.fetch_add(1, Relaxed);
            }
        })
    };
    let begin = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        tasks.spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (read, write) = stream.into_split();
            let reader = tokio::spawn(async move {
                let mut frames = FramedRead::new(read, codec());
                while let Some(Ok(_)) = next_frame(&mut frames).await {}
            });
            (FramedWrite::new(write, codec()), reader)
        });
    }
    let mut kept = Vec::new();
    while let Some(conn) = tasks.join_next().await {
        kept.push(conn.unwrap());
    }
    while accepted.load(Relaxed) < clients as u64 {
        tokio::task::yield_now().await;
    }
    let elapsed = begin.elapsed();
    acceptor.abort();
    for (_, reader) in kept {
        reader.abort();
    }
    elapsed
}

/// Time to connect and disconnect `rounds` times, one after the other.
pub async fn pea2pea_connect_sequential(rounds: usize) -> Duration {
    let server = Peer::<64>::new(false);
    let addr = start(&server).await;
    let client = Peer::<64>::new(false);
    start(&client).await;
    let begin = Instant::now();
    for _ in 0..rounds {
        client.node.connect(addr).await.unwrap();
        client.node.disconnect(addr).await;
    }
    let elapsed = begin.elapsed();
    client.node.shut_down().await;
    server.node.shut_down().await;
    elapsed
}

/// Time to create a node, enable all five protocols and start listening; then to shut it down.
pub async fn pea2pea_startup_shutdown() -> (Duration, Duration) {
    let begin = Instant::now();
    let peer = Peer::<64>::new(false);
    start(&peer).await;
    let started = begin.elapsed();
    let begin = Instant::now();
    peer.node.shut_down().await;
    (started, begin.elapsed())
}

/// Resident memory, in bytes (Linux).
pub fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
        * 4096
}

/// Memory per idle listening node with all five protocols: `(bytes per node, the nodes)`.
pub async fn pea2pea_idle_nodes(count: usize) -> (u64, Vec<Node>) {
    let before = resident();
    let mut nodes = Vec::with_capacity(count);
    for _ in 0..count {
        let peer = Peer::<64>::new(false);
        start(&peer).await;
        nodes.push(peer.node.clone());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    (resident().saturating_sub(before) / count as u64, nodes)
}

/// The raw-tokio version: a listener and its accept task per "node".
pub async fn raw_idle_nodes(count: usize) -> (u64, Vec<tokio::task::JoinHandle<()>>) {
    let before = resident();
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        tasks.push(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    (resident().saturating_sub(before) / count as u64, tasks)
}

/// Memory per idle connection on a node with all five protocols, dialled by plain sockets
/// that sent one message each (so that buffers exist, as on a connection that was used).
pub async fn pea2pea_idle_connections(count: usize) -> (u64, Node, Vec<TcpStream>) {
    let server = Peer::<64>::new(false);
    let addr = start(&server).await;
    let before = resident();
    let streams = dial_and_greet(addr, count).await;
    while server.counter.bytes.load(Relaxed) < count as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    (
        resident().saturating_sub(before) / count as u64,
        server.node.clone(),
        streams,
    )
}

/// The raw-tokio version: a reading task per accepted connection, holding its write half.
pub async fn raw_idle_connections(
    count: usize,
) -> (u64, tokio::task::JoinHandle<()>, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(Counter::default());
    let before = resident();
    let acceptor = {
        let counter = counter.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let (read, write) = stream.into_split();
                    let _sink = FramedWrite::new(write, codec());
                    let mut frames = FramedRead::new(read, codec());
                    while let Some(Ok(frame)) = next_frame(&mut frames).await {
                        counter.add(frame.len());
                    }
                });
            }
        })
    };
    let streams = dial_and_greet(addr, count).await;
    while counter.bytes.load(Relaxed) < count as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    (
        resident().saturating_sub(before) / count as u64,
        acceptor,
        streams,
    )
}

/// Opens `count` plain connections to `addr`, each sending one 1-byte frame.
async fn dial_and_greet(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&[0, 0, 0, 1, 42]).await.unwrap();
        streams.push(stream);
    }
    streams
}

/// Just enough of `Stream`/`Sink` to drive tokio-util's framed types without `futures`.
mod tokio_stream_lite {
    use std::{future::poll_fn, pin::Pin};

    use bytes::Bytes;
    use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

    use futures_core::Stream;
    use futures_sink::Sink;

    type Reader<R> = FramedRead<R, LengthDelimitedCodec>;
    type Writer<W> = FramedWrite<W, LengthDelimitedCodec>;

    pub async fn next_frame<R: tokio::io::AsyncRead + Unpin>(
        frames: &mut Reader<R>,
    ) -> Option<std::io::Result<bytes::BytesMut>> {
        poll_fn(|cx| Pin::new(&mut *frames).poll_next(cx)).await
    }

    pub async fn feed<W: tokio::io::AsyncWrite + Unpin>(
        sink: &mut Writer<W>,
        item: Bytes,
    ) -> std::io::Result<()> {
        poll_fn(|cx| Sink::<Bytes>::poll_ready(Pin::new(&mut *sink), cx)).await?;
        Sink::<Bytes>::start_send(Pin::new(&mut *sink), item)
    }

    pub async fn flush<W: tokio::io::AsyncWrite + Unpin>(
        sink: &mut Writer<W>,
    ) -> std::io::Result<()> {
        poll_fn(|cx| Sink::<Bytes>::poll_flush(Pin::new(&mut *sink), cx)).await
    }

    pub async fn send<W: tokio::io::AsyncWrite + Unpin>(
        sink: &mut Writer<W>,
        item: Bytes,
    ) -> std::io::Result<()> {
        feed(sink, item).await?;
        flush(sink).await
    }
}
