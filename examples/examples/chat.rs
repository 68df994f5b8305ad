//! A chat between processes: lines typed in one terminal appear in all the others.
//!
//! ```text
//! # terminal 1                                  # terminal 2
//! cargo run --example chat -- --listen 127.0.0.1:4000 --name ann
//!                                               cargo run --example chat -- --connect 127.0.0.1:4000 --name bob
//! ```
//!
//! Options: `--listen ADDR` (accept peers there), `--connect ADDR[,ADDR...]` (dial peers),
//! `--name NAME`. Each node relays what it hears to its other peers, skipping lines it has
//! already seen, so any tree or mesh of chat processes works: a third one may connect to
//! either of the first two. The program ends at the end of its input (Ctrl-D), so it also runs
//! unattended: `echo hi | cargo run --example chat -- --connect 127.0.0.1:4000 --name bot`.

use std::{
    collections::{HashMap, HashSet},
    io,
    net::SocketAddr,
    process::ExitCode,
    sync::{Arc, Mutex},
};

use pea2pea::{Config, DisconnectOrigin, Message, Node, Pea2Pea, protocol};
use pea2pea_examples::Args;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Message, Debug, Clone)]
enum Chat {
    /// Sent to each new peer: who this is.
    Hello {
        #[message(max_len = 32)]
        name: String,
    },
    /// A line, identified by its author's random id and a sequence number so that relays can
    /// drop copies.
    Line {
        origin: u64,
        seq: u64,
        #[message(max_len = 32)]
        name: String,
        #[message(max_len = 4096)]
        text: String,
    },
}

#[pea2pea::node]
#[derive(Clone)]
struct ChatNode {
    node: Node,
    name: String,
    id: u64,
    /// (origin, seq) of every line seen, to relay each one once.
    seen: Arc<Mutex<HashSet<(u64, u64)>>>,
    /// The names the peers gave in their hellos.
    names: Arc<Mutex<HashMap<SocketAddr, String>>>,
}

protocol! {
    ChatNode speaks Chat over length_delimited(max_frame = 8 KiB) {
        idle_timeout = off, // people may be quiet for a long time
        on Chat::Hello { name } from addr => {
            println!("* {name} joined ({addr})");
            self.names.lock().unwrap().insert(addr, name);
        }
        on line @ Chat::Line { .. } from addr => self.relay(line, addr).await,
        on_connect(addr) => {
            let _ = self.send(addr, Chat::Hello { name: self.name.clone() }).await;
        }
        on_disconnect(addr, origin) => {
            let name = self.names.lock().unwrap().remove(&addr);
            // when this node quits, it says so itself
            if origin != DisconnectOrigin::Shutdown {
                println!("* {} left", name.unwrap_or_else(|| addr.to_string()));
            }
        }
    }
}

impl ChatNode {
    /// Shows a line the first time it comes by and passes it on to every peer but `from`.
    async fn relay(&self, line: Chat, from: SocketAddr) {
        let Chat::Line {
            origin,
            seq,
            name,
            text,
        } = &line
        else {
            return;
        };
        if !self.seen.lock().unwrap().insert((*origin, *seq)) {
            return;
        }
        println!("[{name}] {text}");
        let peers = self.node().connected_addrs().into_iter();
        self.send_to_many(peers.filter(|&p| p != from), &line).await;
    }

    /// Sends a line of our own to every peer, and returns once it is written to each.
    async fn say(&self, seq: u64, text: String) {
        self.seen.lock().unwrap().insert((self.id, seq));
        let line = Chat::Line {
            origin: self.id,
            seq,
            name: self.name.clone(),
            text,
        };
        for peer in self.node().connected_addrs() {
            let _ = self.send(peer, line.clone()).await;
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    pea2pea_examples::start_logger();
    let args = Args::parse_or_exit(
        &["listen", "connect", "name"],
        "chat [--listen ADDR] [--connect ADDR[,ADDR...]] [--name NAME]",
    );
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> io::Result<()> {
    let parse = |s: &str| {
        s.trim().parse::<SocketAddr>().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad address {s:?}: {e}"),
            )
        })
    };
    let listen = match args.get_str("listen", "") {
        "" => None,
        addr => Some(parse(addr)?),
    };
    let connect = args
        .get_str("connect", "")
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(parse)
        .collect::<io::Result<Vec<_>>>()?;
    if listen.is_none() && connect.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "give --listen ADDR, --connect ADDR, or both",
        ));
    }

    let id = {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(io::Error::other)?;
        u64::from_le_bytes(bytes)
    };
    let name = args.get_str("name", "").to_owned();
    let name = if name.is_empty() {
        format!("anon-{:04x}", id & 0xffff)
    } else {
        name
    };
    let chat = ChatNode {
        node: Node::new(Config {
            name: Some(name.clone()),
            listener_addr: listen,
            // chat processes on one machine all come from the same address
            max_connections_per_ip: 32,
            ..Default::default()
        }),
        name: name.clone(),
        id,
        seen: Default::default(),
        names: Default::default(),
    };
    if listen.is_some() {
        let addr = chat.start().await?;
        println!("* {name} listening on {addr}");
    } else {
        chat.enable_protocols().await;
    }
    for addr in connect {
        chat.node().connect(addr).await?;
        println!("* {name} connected to {addr}");
    }

    // each line typed goes to every peer; the end of input ends the chat
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut seq = 0;
    while let Some(text) = lines.next_line().await? {
        if !text.is_empty() {
            seq += 1;
            chat.say(seq, text).await;
        }
    }
    chat.node().shut_down().await;
    println!("* {name} left the chat");
    Ok(())
}
