use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[cfg(doc)]
use crate::{Node, protocols::Handshake};

/// The settings of a [`Node`], fixed when it is created.
///
/// Every limit here is a bound that a remote peer cannot raise. A value of `0` for any of the
/// three connection limits makes [`Node::new`] panic, since such a node could never connect.
///
/// ```
/// use pea2pea::Config;
///
/// let config = Config {
///     name: Some("alice".into()),
///     listener_addr: Some("127.0.0.1:0".parse().unwrap()),
///     max_connections: 16,
///     ..Default::default()
/// };
/// assert_eq!(config.max_connecting, 100); // clamped to 16 when the node is created
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's name, used in its logs. `None` gives it a sequential number (`"0"`, `"1"`, ...).
    pub name: Option<String>,
    /// The address that [`Node::toggle_listener`] binds. Port `0` picks a free port; `None`
    /// means the node only dials out (toggling the listener then fails with `AddrNotAvailable`).
    pub listener_addr: Option<SocketAddr>,
    /// The length of the kernel's queue of accepted-but-not-yet-taken connections (`listen(2)`).
    /// Ignored in a simulation build (see [`net`](crate::net)).
    pub listener_backlog: u32,
    /// Sets `SO_REUSEPORT` on the listener so that several nodes can share one port (the kernel
    /// spreads incoming connections between them). Unsupported platforms, and simulation builds
    /// (see [`net`](crate::net)), fail the toggle with `Unsupported`.
    pub reuse_listener_port: bool,
    /// The most connections, established plus being set up, that the node keeps at once.
    pub max_connections: u16,
    /// The most connections, established plus being set up, with any single IP address.
    /// IPv4-mapped IPv6 addresses count as their IPv4 form.
    pub max_connections_per_ip: u16,
    /// The most connections being set up (dialled or accepted, not yet through the
    /// [`Handshake`]) at once; inbound and outbound share this budget. Clamped to
    /// `max_connections`. Surplus inbound connections wait in the kernel's accept queue;
    /// surplus outbound ones fail with `QuotaExceeded`.
    pub max_connecting: u16,
    /// How long an outbound TCP connect may take, in milliseconds. `0` fails every dial at once.
    pub connection_timeout_ms: u16,
}

impl Default for Config {
    fn default() -> Self {
        // The `test` feature trades production safety (one connection per IP, listening on all
        // interfaces) for what local multi-node tests need.
        let test_profile = cfg!(feature = "test");
        let listener_ip = if test_profile {
            Ipv4Addr::LOCALHOST
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        Self {
            name: None,
            listener_addr: Some(SocketAddr::new(IpAddr::V4(listener_ip), 0)),
            listener_backlog: 128,
            reuse_listener_port: false,
            max_connections: 100,
            max_connections_per_ip: if test_profile { 100 } else { 1 },
            max_connecting: 100,
            connection_timeout_ms: 1_000,
        }
    }
}
