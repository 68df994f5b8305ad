use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[cfg(doc)]
use crate::{Node, protocols::Handshake};

/// The settings of a [`Node`], fixed when it is created.
///
/// Every limit here is a bound that a remote peer cannot raise. A value of `0` for any of the
/// three connection limits makes [`Node::new`] panic, since such a node could never connect.
///
/// Start from [`Config::default`] (the published defaults, for a node that faces a public
/// network) or from [`Config::loopback`] (for nodes on one host or a local network), and set
/// the fields you need:
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

impl Config {
    /// A preset for nodes that talk over loopback or a local network: it listens on
    /// `127.0.0.1:0` and admits as many connections from one IP as the node admits in total.
    ///
    /// These are the only two differences from [`Config::default`], whose listener binds every
    /// interface (`0.0.0.0:0`) and whose per-IP limit of 1 refuses a second peer on the same
    /// host; on one machine every peer comes from 127.0.0.1, so the default would admit only
    /// one of them. Keep the default for nodes that face the internet. (The `test` feature of
    /// this crate makes `Default` return this preset.)
    ///
    /// The per-IP limit is a value, not a link: raising `max_connections` with struct update
    /// syntax leaves it at the preset's (100); raise both, as the second example does.
    ///
    /// ```
    /// use pea2pea::Config;
    ///
    /// let config = Config { name: Some("alice".into()), ..Config::loopback() };
    /// assert_eq!(config.listener_addr, Some("127.0.0.1:0".parse().unwrap()));
    /// assert_eq!(config.max_connections_per_ip, config.max_connections);
    ///
    /// // 500 peers, all on this host
    /// let many = Config { max_connections: 500, max_connections_per_ip: 500, ..Config::loopback() };
    /// assert_eq!(many.max_connections_per_ip, 500);
    /// ```
    pub fn loopback() -> Self {
        let public = Self::public();
        Self {
            listener_addr: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
            max_connections_per_ip: public.max_connections,
            ..public
        }
    }

    /// The published defaults, whatever the features.
    fn public() -> Self {
        Self {
            name: None,
            listener_addr: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
            listener_backlog: 128,
            reuse_listener_port: false,
            max_connections: 100,
            max_connections_per_ip: 1,
            max_connecting: 100,
            connection_timeout_ms: 1_000,
        }
    }
}

impl Default for Config {
    /// Listens on every interface (`0.0.0.0:0`) and admits one connection per IP, 100 in all,
    /// at most 100 of them being set up at once, with a 1 s TCP connect timeout and a backlog
    /// of 128: the published crate's defaults. With the `test` feature it is
    /// [`Config::loopback`] instead.
    fn default() -> Self {
        if cfg!(feature = "test") {
            Self::loopback()
        } else {
            Self::public()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // CFG-01: the loopback preset changes exactly two fields of the published defaults.
    #[test]
    fn loopback_differs_from_the_published_defaults_in_two_fields() {
        let (public, loopback) = (Config::public(), Config::loopback());
        assert_eq!(public.listener_addr, Some("0.0.0.0:0".parse().unwrap()));
        assert_eq!(public.max_connections_per_ip, 1);
        assert_eq!(loopback.listener_addr, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(loopback.max_connections_per_ip, 100);
        let public_but_for_the_two = Config {
            listener_addr: loopback.listener_addr,
            max_connections_per_ip: loopback.max_connections_per_ip,
            ..public
        };
        assert_eq!(
            format!("{public_but_for_the_two:?}"),
            format!("{loopback:?}")
        );
        let expected_default = if cfg!(feature = "test") {
            loopback
        } else {
            Config::public()
        };
        assert_eq!(
            format!("{:?}", Config::default()),
            format!("{expected_default:?}")
        );
    }
}
