//! Plain tokio sockets used as peers outside the engine's control.

use std::{
    io::{self, ErrorKind},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpSocket, TcpStream},
    time::timeout,
};

/// How long a raw connect may take: generous, since a SYN the kernel drops under load is only
/// resent after a second.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// `127.0.0.<last>`: any address in 127.0.0.0/8 is a distinct source on loopback (Linux).
pub fn loopback_ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Opens a plain TCP connection to `addr`; panics if it is not established within 5s.
pub async fn raw_connect(addr: SocketAddr) -> TcpStream {
    timeout(CONNECT_DEADLINE, TcpStream::connect(addr))
        .await
        .unwrap_or_else(|_| panic!("raw connect to {addr} timed out"))
        .unwrap_or_else(|e| panic!("raw connect to {addr} failed: {e}"))
}

/// A socket bound to `ip` with an OS-assigned port, ready to be passed to
/// `Node::connect_using_socket` or connected by hand; panics if that fails.
pub fn socket_bound_to(ip: IpAddr) -> TcpSocket {
    try_socket_bound_to(ip).unwrap_or_else(|e| panic!("couldn't bind a socket to {ip}: {e}"))
}

/// [`socket_bound_to`] for callers that expect it to fail at times (e.g. out of ports).
pub fn try_socket_bound_to(ip: IpAddr) -> io::Result<TcpSocket> {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }?;
    socket.bind(SocketAddr::new(ip, 0))?;
    Ok(socket)
}

/// Opens a plain TCP connection to `addr` from the source IP `ip` (any address in 127.0.0.0/8
/// works on loopback); panics if it is not established within 5s.
pub async fn raw_connect_from(ip: IpAddr, addr: SocketAddr) -> TcpStream {
    timeout(CONNECT_DEADLINE, socket_bound_to(ip).connect(addr))
        .await
        .unwrap_or_else(|_| panic!("raw connect from {ip} to {addr} timed out"))
        .unwrap_or_else(|e| panic!("raw connect from {ip} to {addr} failed: {e}"))
}

/// Asserts that the remote end closes `stream` within `limit` (see [`closed_within`]).
pub async fn assert_closed_within(stream: &mut TcpStream, limit: Duration) {
    assert!(
        closed_within(stream, limit).await,
        "the remote end didn't close the connection within {limit:?}"
    );
}

/// Whether the remote end closes `stream` within `limit`: a read returns EOF or a connection
/// error (e.g. a reset). Any bytes the remote sent before closing are skipped.
pub async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let read_to_the_end = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    };
    timeout(limit, read_to_the_end).await.is_ok()
}

/// Reads one [`crate::TestCodec`] frame from a raw stream and returns its payload; panics if no
/// complete frame arrives within `limit`.
pub async fn read_frame(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    timeout(limit, async {
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await?;
        let mut payload = vec![0u8; u16::from_be_bytes(prefix) as usize];
        stream.read_exact(&mut payload).await?;
        Ok::<_, std::io::Error>(payload)
    })
    .await
    .unwrap_or_else(|_| panic!("no frame arrived within {limit:?}"))
    .expect("couldn't read a frame")
}

/// A listener that never reads what its accepted sockets receive, with a 4KiB receive buffer
/// (set before `listen`, so accepted sockets inherit it) that keeps the kernel from absorbing
/// megabytes on the peer's behalf. Used to make a sender's writes block.
pub fn small_buffer_listener() -> TcpListener {
    let socket = TcpSocket::new_v4().expect("couldn't create a socket");
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(crate::LOCALHOST_ANY_PORT).unwrap();
    socket.listen(16).unwrap()
}

/// Connects `node` to a peer that never reads, through small buffers at both ends
/// ([`small_buffer_listener`], [`small_send_buffer_socket`]), so that its writes block after a
/// few KiB (WR-03). Returns the peer's address, the listener and the accepted stream: keep them
/// alive for as long as the writes must stay blocked.
pub async fn connect_to_stalled_reader(
    node: &pea2pea::Node,
) -> (SocketAddr, TcpListener, TcpStream) {
    let listener = small_buffer_listener();
    let addr = listener.local_addr().unwrap();
    node.connect_using_socket(addr, small_send_buffer_socket())
        .await
        .expect("couldn't connect to the stalled reader");
    let (stream, _) = listener.accept().await.unwrap();
    (addr, listener, stream)
}

/// An unbound IPv4 socket with a 4KiB send buffer, for `Node::connect_using_socket` (WR-03).
pub fn small_send_buffer_socket() -> TcpSocket {
    let socket = TcpSocket::new_v4().expect("couldn't create a socket");
    socket.set_send_buffer_size(4096).unwrap();
    socket
}

/// A listener whose kernel accept queue is full, so that further connection attempts to it stall
/// at the TCP handshake (the kernel drops their SYNs) until they time out (CONN-11).
///
/// The listener has a backlog of 1 and is never accepted from; it is filled with raw
/// connections until one of them no longer completes within 200ms. The returned listener and
/// streams must be kept alive for as long as the queue has to stay full.
pub async fn full_backlog_listener() -> (TcpListener, Vec<TcpStream>, SocketAddr) {
    let socket = TcpSocket::new_v4().expect("couldn't create a socket");
    socket.bind(crate::LOCALHOST_ANY_PORT).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(e)) => panic!("couldn't fill the accept queue: {e}"),
            // the queue is full: the kernel no longer completes connections
            Err(_) => return (listener, fillers, addr),
        }
    }
    panic!("the accept queue never filled up");
}
