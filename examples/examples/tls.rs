//! TLS 1.3 under DSL-routed messages, with `tokio-rustls` (ring provider) and a self-signed
//! certificate that the server makes at start with `rcgen`.
//!
//! ```text
//! cargo run --example tls
//! ```
//!
//! The TLS handshake is a hand-written `Handshake` (`handshake = custom` in `protocol!`): it
//! takes the connection's TCP stream, runs the TLS handshake on it, and returns the TLS stream,
//! which reading and writing then use as they would the socket. alice trusts the server's
//! certificate (it is the one root in her store) and talks; mallory trusts only her own CA,
//! so her client refuses the server and nothing is exchanged.

use std::{
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use pea2pea::{
    Config, Connection, ConnectionSide, Message, Node, Pea2Pea, protocol, protocols::Handshake,
};
use tokio::sync::mpsc;
use tokio_rustls::{
    TlsAcceptor, TlsConnector,
    rustls::{
        self, ClientConfig, RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName},
    },
};

#[derive(Message, Debug)]
enum Talk {
    Question(String),
    Answer(String),
}

/// Which end of TLS a node plays.
#[derive(Clone)]
enum Tls {
    Server(TlsAcceptor),
    Client(TlsConnector),
}

#[pea2pea::node]
#[derive(Clone)]
struct Peer {
    node: Node,
    tls: Tls,
    /// What the last handshake negotiated, or why it failed.
    session: Arc<Mutex<String>>,
    heard: mpsc::UnboundedSender<String>,
}

protocol! {
    Peer speaks Talk over length_delimited(max_frame = 64 KiB) {
        handshake = custom,
        on Talk::Question(q) from addr => {
            let _ = self.send_fast(addr, Talk::Answer(format!("over TLS, yes: {q}")));
        }
        on Talk::Answer(a) => { let _ = self.heard.send(a); }
    }
}

impl Handshake for Peer {
    async fn perform_handshake(&self, mut conn: Connection) -> io::Result<Connection> {
        let stream = self.take_stream(&mut conn);
        // the side in `conn` is the peer's: Initiator means it dialled us, so we serve
        let outcome = match (&self.tls, conn.side()) {
            (Tls::Server(acceptor), ConnectionSide::Initiator) => {
                acceptor.accept(stream).await.map(|tls| {
                    let (_, session) = tls.get_ref();
                    let info = describe(
                        session.protocol_version(),
                        session.negotiated_cipher_suite(),
                    );
                    self.return_stream(&mut conn, tls);
                    info
                })
            }
            (Tls::Client(connector), ConnectionSide::Responder) => {
                // the name the certificate must be for
                let name = ServerName::try_from("localhost").expect("a valid DNS name");
                connector.connect(name, stream).await.map(|tls| {
                    let (_, session) = tls.get_ref();
                    let info = describe(
                        session.protocol_version(),
                        session.negotiated_cipher_suite(),
                    );
                    self.return_stream(&mut conn, tls);
                    info
                })
            }
            _ => Err(io::Error::other(
                "a TLS server only accepts and a client only dials",
            )),
        };
        *self.session.lock().unwrap() = match &outcome {
            Ok(info) => info.clone(),
            Err(e) => format!("failed: {e}"),
        };
        outcome.map(|_| conn)
    }
}

fn describe(
    version: Option<rustls::ProtocolVersion>,
    suite: Option<rustls::SupportedCipherSuite>,
) -> String {
    match (version, suite) {
        (Some(v), Some(s)) => format!("{v:?}, {:?}", s.suite()),
        _ => "unknown parameters".into(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A fresh key pair and a self-signed certificate for "localhost", issued by `issuer`.
fn self_signed(
    issuer: &str,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    let key_pair = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, issuer);
    let cert = params.self_signed(&key_pair)?;
    let key = PrivatePkcs8KeyDer::from(key_pair.serialize_der());
    Ok((cert.der().clone(), key.into()))
}

fn server_tls(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> io::Result<Tls> {
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(vec![cert], key))
        .map_err(io::Error::other)?;
    Ok(Tls::Server(TlsAcceptor::from(Arc::new(config))))
}

/// A client that trusts `root`, and nothing else.
fn client_tls(root: CertificateDer<'static>) -> io::Result<Tls> {
    let mut roots = RootCertStore::empty();
    roots.add(root).map_err(io::Error::other)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Tls::Client(TlsConnector::from(Arc::new(config))))
}

fn peer(name: &str, tls: Tls) -> (Peer, mpsc::UnboundedReceiver<String>) {
    let (heard, inbox) = mpsc::unbounded_channel();
    let peer = Peer {
        node: Node::new(Config {
            name: Some(name.into()),
            listener_addr: Some("127.0.0.1:0".parse().unwrap()),
            max_connections_per_ip: 4, // both clients come from 127.0.0.1
            ..Default::default()
        }),
        tls,
        session: Default::default(),
        heard,
    };
    (peer, inbox)
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger_at("error");
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tls example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> io::Result<bool> {
    let (cert, key) = self_signed("pea2pea tls example").map_err(io::Error::other)?;
    println!(
        "made a self-signed certificate for localhost ({} bytes)",
        cert.len()
    );

    let (server, _) = peer("server", server_tls(cert.clone(), key)?);
    let server_addr: SocketAddr = server.start().await?;

    // alice trusts exactly the server's certificate
    let (alice, mut alice_heard) = peer("alice", client_tls(cert)?);
    alice.enable_protocols().await;
    alice.node().connect(server_addr).await?;
    println!("alice connected: {}", alice.session.lock().unwrap());
    alice
        .send(server_addr, Talk::Question("is this private?".into()))
        .await?;
    let answer = tokio::time::timeout(Duration::from_secs(5), alice_heard.recv()).await;
    let answered = match answer {
        Ok(Some(answer)) => {
            println!("the server answered alice: {answer}");
            true
        }
        _ => false,
    };

    // mallory trusts only a certificate of her own, so the server's fails her check
    let (her_cert, _) = self_signed("mallory's own CA").map_err(io::Error::other)?;
    let (mallory, _) = peer("mallory", client_tls(her_cert)?);
    mallory.enable_protocols().await;
    let refused = match mallory.node().connect(server_addr).await {
        Ok(()) => {
            println!("mallory connected, which she should not have");
            false
        }
        Err(e) => {
            println!("mallory's client refused the server: {e}");
            true
        }
    };
    // the server learns of it from mallory's alert
    pea2pea_examples::wait_until(Duration::from_secs(5), || {
        server.session.lock().unwrap().starts_with("failed")
    })
    .await;
    println!(
        "the server's side of it: {}",
        server.session.lock().unwrap()
    );

    for peer in [&alice, &mallory, &server] {
        peer.node().shut_down().await;
    }
    Ok(answered && refused)
}
