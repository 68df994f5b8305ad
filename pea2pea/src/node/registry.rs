//! The connection registry: who is being set up, who is connected, and the admission limits.
//!
//! Two locks, always taken in this order: `limits`, then `active`. Every change to the set of
//! connections that counts against a limit happens with `limits` held, so checks and
//! insertions cannot interleave (no over-admission), and the shutdown flag lives there too, so
//! that a connection is either registered before shutdown begins (and torn down by it) or not
//! registered at all.

use std::{
    collections::{HashMap, HashSet},
    io,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    sync::{Notify, OwnedSemaphorePermit, Semaphore},
    task::AbortHandle,
};

use tokio_util::task::task_tracker::TaskTrackerToken;

use super::addr_hash::AddrHashState;
use crate::{
    ConnectionInfo, Node, ShuttingDown, io::ConnReader, io::ConnWriter, protocols::AnySender,
};

/// Takes a std lock, ignoring poison: no user code ever runs while one of these is held.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// The per-IP key: an IPv4-mapped IPv6 address shares the bucket of its IPv4 form.
pub(crate) fn canonical_ip(addr: SocketAddr) -> IpAddr {
    addr.ip().to_canonical()
}

/// Why admission refused a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    ShuttingDown,
    Duplicate,
    PerIpLimit,
    SetupBudget,
    ConnectionLimit,
}

impl Refusal {
    pub(crate) fn into_error(self, addr: SocketAddr) -> io::Error {
        use io::ErrorKind::*;
        match self {
            Self::ShuttingDown => io::Error::other(ShuttingDown),
            Self::Duplicate => io::Error::new(
                AlreadyExists,
                format!("already connecting or connected to {addr}"),
            ),
            Self::PerIpLimit => io::Error::new(
                QuotaExceeded,
                format!("max_connections_per_ip reached for {}", addr.ip()),
            ),
            Self::SetupBudget => io::Error::new(
                QuotaExceeded,
                "max_connecting connection setups already running",
            ),
            Self::ConnectionLimit => io::Error::new(QuotaExceeded, "max_connections reached"),
        }
    }
}

#[derive(Default)]
struct Limits {
    connecting: HashSet<SocketAddr, AddrHashState>,
    per_ip: HashMap<IpAddr, u16, AddrHashState>,
    shutting_down: bool,
}

impl Limits {
    fn release_ip(&mut self, ip: IpAddr) {
        if let Some(count) = self.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// An established connection, as the node keeps it.
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) info: ConnectionInfo,
    /// Set by the one teardown that wins the race to disconnect (exactly-once).
    pub(crate) claimed: Arc<AtomicBool>,
    /// The writer's queue (`mpsc::Sender<Queued<M>>`), if Writing is enabled.
    pub(crate) sender: Option<AnySender>,
    tasks: Mutex<Tasks>,
    /// Rung once, by `close`: wakes every `wait_closed`.
    closed: Notify,
}

#[derive(Default)]
struct Tasks {
    closed: bool,
    handles: Vec<AbortHandle>,
    /// Halves that no protocol uses, kept so that the socket stays open until teardown.
    idle_reader: Option<ConnReader>,
    idle_writer: Option<ConnWriter>,
}

impl Entry {
    pub(crate) fn new(
        id: u64,
        info: ConnectionInfo,
        claimed: Arc<AtomicBool>,
        sender: Option<AnySender>,
        idle_reader: Option<ConnReader>,
        idle_writer: Option<ConnWriter>,
    ) -> Self {
        let tasks = Tasks {
            idle_reader,
            idle_writer,
            ..Default::default()
        };
        Self {
            id,
            info,
            claimed,
            sender,
            tasks: Mutex::new(tasks),
            closed: Notify::new(),
        }
    }

    /// Ties a task to the connection: it is aborted at teardown (or now, if that already ran).
    pub(crate) fn attach(&self, handle: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        if tasks.closed {
            handle.abort();
        } else {
            tasks.handles.push(handle);
        }
    }

    /// Aborts every attached task and closes idle socket halves.
    pub(crate) fn close(&self) {
        let mut tasks = lock(&self.tasks);
        tasks.closed = true;
        let handles = std::mem::take(&mut tasks.handles);
        let halves = (tasks.idle_reader.take(), tasks.idle_writer.take());
        drop(tasks);
        for handle in handles {
            handle.abort();
        }
        drop(halves);
        self.closed.notify_waiters();
    }

    /// Resolves once [`close`](Self::close) has run (at once if it already has).
    pub(crate) async fn wait_closed(&self) {
        // made before the check: `notify_waiters` wakes every future made before it
        let notified = self.closed.notified();
        if lock(&self.tasks).closed {
            return;
        }
        notified.await;
    }
}

pub(crate) struct Registry {
    limits: Mutex<Limits>,
    active: RwLock<HashMap<SocketAddr, Arc<Entry>, AddrHashState>>,
    /// The setup budget (`max_connecting`), shared by inbound and outbound connections.
    budget: Arc<Semaphore>,
    max_connections: usize,
    max_per_ip: u16,
    /// Unit tests freeze a teardown right after its claim with this (run once).
    #[cfg(test)]
    after_claim: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Registry {
    pub(crate) fn new(max_connections: u16, max_per_ip: u16, max_connecting: u16) -> Self {
        Self {
            limits: Default::default(),
            active: Default::default(),
            budget: Arc::new(Semaphore::new(max_connecting.into())),
            max_connections: max_connections.into(),
            max_per_ip,
            #[cfg(test)]
            after_claim: Mutex::new(None),
        }
    }

    /// Runs `f` (once) in the next successful claim, right after it.
    #[cfg(test)]
    pub(crate) fn set_after_claim(&self, f: impl FnOnce() + Send + 'static) {
        *lock(&self.after_claim) = Some(Box::new(f));
    }

    #[cfg(test)]
    fn pause_after_claim(&self) {
        let pause = lock(&self.after_claim).take();
        if let Some(pause) = pause {
            pause();
        }
    }

    pub(crate) fn budget(&self) -> &Arc<Semaphore> {
        &self.budget
    }

    /// Admits a connection to setup: the checks run in a fixed order (duplicate, per-IP, setup
    /// budget, total) under the limits lock, and a pass reserves its place in every count.
    /// Inbound connections bring the permit they waited for; outbound ones must find one free.
    pub(crate) fn admit(
        &self,
        node: &Node,
        addr: SocketAddr,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Reservation, Refusal> {
        let mut limits = lock(&self.limits);
        if limits.shutting_down {
            return Err(Refusal::ShuttingDown);
        }
        let active = read(&self.active);
        if limits.connecting.contains(&addr) || active.contains_key(&addr) {
            return Err(Refusal::Duplicate);
        }
        let ip = canonical_ip(addr);
        if limits.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
            return Err(Refusal::PerIpLimit);
        }
        let permit = match permit {
            Some(permit) => permit,
            None => self
                .budget
                .clone()
                .try_acquire_owned()
                .map_err(|_| Refusal::SetupBudget)?,
        };
        if active.len() + limits.connecting.len() >= self.max_connections {
            return Err(Refusal::ConnectionLimit);
        }
        drop(active);
        limits.connecting.insert(addr);
        *limits.per_ip.entry(ip).or_default() += 1;
        Ok(Reservation {
            node: node.clone(),
            addr,
            permit: Some(permit),
            registered: false,
            _in_flight: node.0.shutdown.track(),
        })
    }

    /// Moves a reserved connection into the active set, unless shutdown has begun.
    pub(crate) fn register(
        &self,
        mut reservation: Reservation,
        entry: Arc<Entry>,
    ) -> Result<(), Refusal> {
        let mut limits = lock(&self.limits);
        if limits.shutting_down {
            return Err(Refusal::ShuttingDown); // the reservation rolls back as it drops
        }
        limits.connecting.remove(&reservation.addr);
        write(&self.active).insert(reservation.addr, entry);
        reservation.registered = true; // its per-IP count now belongs to the active entry
        drop(limits);
        reservation.permit.take();
        Ok(())
    }

    /// Sets the shutdown flag; from now on nothing is admitted or registered.
    pub(crate) fn begin_shutdown(&self) {
        lock(&self.limits).shutting_down = true;
    }

    /// Claims the teardown of a connection. Only the first claim succeeds; a claim scoped to
    /// an older connection id never touches a newer connection at the same address.
    ///
    /// `_in_flight` is the caller's place in shutdown's count, taken *before* the claim: a
    /// claim that shutdown can see (its own claim fails) is then always one it waits for.
    pub(crate) fn claim(
        &self,
        addr: SocketAddr,
        conn_id: Option<u64>,
        _in_flight: &TaskTrackerToken,
    ) -> Option<Arc<Entry>> {
        let entry = {
            let active = read(&self.active);
            let entry = active.get(&addr)?;
            if conn_id.is_some_and(|id| id != entry.id) {
                return None;
            }
            entry
                .claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .ok()?;
            entry.clone()
        };
        #[cfg(test)]
        self.pause_after_claim();
        Some(entry)
    }

    /// Removes a claimed connection and releases its place in every count.
    pub(crate) fn remove(&self, addr: SocketAddr, conn_id: u64) {
        let mut limits = lock(&self.limits);
        let mut active = write(&self.active);
        if active.get(&addr).is_some_and(|e| e.id == conn_id) {
            active.remove(&addr);
            limits.release_ip(canonical_ip(addr));
        }
    }

    /// Removes every connection still registered and releases its counts (shutdown's last
    /// step). A teardown still running for one of them later finds nothing to remove, since
    /// `remove` is scoped by connection id.
    pub(crate) fn remove_all(&self) -> Vec<Arc<Entry>> {
        let mut limits = lock(&self.limits);
        let removed: Vec<_> = write(&self.active).drain().map(|(_, e)| e).collect();
        for entry in &removed {
            limits.release_ip(canonical_ip(entry.info.addr()));
        }
        removed
    }

    pub(crate) fn get(&self, addr: SocketAddr) -> Option<Arc<Entry>> {
        read(&self.active).get(&addr).cloned()
    }

    /// Runs `f` on the active entry without cloning its `Arc` (the per-message send path).
    /// The address is taken by reference, as the sender holds it: hashed from there, rather
    /// than from a copy that the compiler lays out anew, whose fresh stores the hash's loads
    /// would have to wait for (a stall of some 10 ns per send, measured).
    pub(crate) fn with_entry<R>(
        &self,
        addr: &SocketAddr,
        f: impl FnOnce(Option<&Entry>) -> R,
    ) -> R {
        f(read(&self.active).get(addr).map(|e| &**e))
    }

    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        read(&self.active).values().cloned().collect()
    }

    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        read(&self.active).keys().copied().collect()
    }

    pub(crate) fn infos(&self) -> HashMap<SocketAddr, ConnectionInfo> {
        read(&self.active)
            .iter()
            .map(|(a, e)| (*a, e.info.clone()))
            .collect()
    }

    pub(crate) fn is_connected(&self, addr: SocketAddr) -> bool {
        read(&self.active).contains_key(&addr)
    }

    pub(crate) fn num_connected(&self) -> usize {
        read(&self.active).len()
    }

    pub(crate) fn is_connecting(&self, addr: SocketAddr) -> bool {
        lock(&self.limits).connecting.contains(&addr)
    }

    pub(crate) fn num_connecting(&self) -> usize {
        lock(&self.limits).connecting.len()
    }

    #[cfg(test)]
    fn ip_count(&self, ip: IpAddr) -> u16 {
        lock(&self.limits).per_ip.get(&ip).copied().unwrap_or(0)
    }
}

/// A place held in the connecting set, the per-IP count and the setup budget while a
/// connection is set up. Dropping it before registration gives all three back, which is what
/// makes a cancelled or failed setup leak nothing.
pub(crate) struct Reservation {
    node: Node,
    addr: SocketAddr,
    permit: Option<OwnedSemaphorePermit>,
    registered: bool,
    /// Shutdown waits until every setup has registered or rolled back.
    _in_flight: TaskTrackerToken,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.registered {
            let mut limits = lock(&self.node.registry().limits);
            limits.connecting.remove(&self.addr);
            limits.release_ip(canonical_ip(self.addr));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn node() -> Node {
        Node::new(Config {
            max_connections: 10,
            max_connections_per_ip: 10,
            ..Default::default()
        })
    }

    // LIM-05: an IPv4-mapped IPv6 address counts in the bucket of its IPv4 form.
    #[test]
    fn lim_05_mapped_ipv6_shares_the_ipv4_bucket() {
        let node = node();
        let v4: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:1001".parse().unwrap();
        let a = node.registry().admit(&node, v4, None).unwrap();
        let b = node.registry().admit(&node, mapped, None).unwrap();
        assert_eq!(node.registry().ip_count(v4.ip()), 2);
        assert_eq!(node.registry().ip_count(canonical_ip(mapped)), 2);
        drop((a, b));
        assert!(
            lock(&node.registry().limits).per_ip.is_empty(),
            "an empty bucket is removed"
        );
    }

    // LIM-07: an outbound setup that finds the budget exhausted is refused.
    #[test]
    fn lim_07_exhausted_budget_refuses_outbound() {
        let node = Node::new(Config {
            max_connecting: 1,
            ..Default::default()
        });
        let _held = node
            .registry()
            .budget()
            .clone()
            .try_acquire_owned()
            .unwrap();
        let addr = "127.0.0.1:1000".parse().unwrap();
        assert_eq!(
            node.registry().admit(&node, addr, None).err(),
            Some(Refusal::SetupBudget)
        );
        assert_eq!(node.num_connecting(), 0);
    }

    // LIM-12: the checks run in order: duplicate, per-IP, budget, total.
    #[test]
    fn lim_12_check_order() {
        let node = Node::new(Config {
            max_connections: 1,
            max_connections_per_ip: 1,
            ..Default::default()
        });
        let addr: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let held = node.registry().admit(&node, addr, None).unwrap();
        assert_eq!(
            node.registry().admit(&node, addr, None).err(),
            Some(Refusal::Duplicate)
        );
        let same_ip = "127.0.0.1:1001".parse().unwrap();
        assert_eq!(
            node.registry().admit(&node, same_ip, None).err(),
            Some(Refusal::PerIpLimit)
        );
        // max_connecting is clamped to max_connections (1), so the budget check comes first
        let other_ip = "127.0.0.2:1000".parse().unwrap();
        assert_eq!(
            node.registry().admit(&node, other_ip, None).err(),
            Some(Refusal::SetupBudget)
        );
        drop(held);
        assert!(node.registry().admit(&node, other_ip, None).is_ok());
    }
}
