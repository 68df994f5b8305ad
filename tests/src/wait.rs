//! Bounded waiting and state-consistency checks.

use std::{
    future::{Future, poll_fn},
    pin::pin,
    task::Poll,
    time::{Duration, Instant},
};

use pea2pea::Node;

/// How often [`wait_until`] re-checks its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Polls `cond` every 10ms until it holds; panics once `timeout` has passed without it holding.
///
/// The condition is checked one last time at the deadline, so a condition that becomes true
/// exactly then is not reported as a failure.
pub async fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) {
    wait_until_desc(timeout, "condition", cond).await
}

/// [`wait_until`] with a description of the awaited condition for the panic message.
pub async fn wait_until_desc(timeout: Duration, what: &str, cond: impl FnMut() -> bool) {
    wait_until_every(timeout, POLL_INTERVAL, what, cond).await
}

/// The DSL tests' wait: polls `cond` every 5ms until it holds; panics after 10s without it
/// holding, naming `what`.
pub async fn wait_until_10s(what: &str, cond: impl FnMut() -> bool) {
    wait_until_every(
        Duration::from_secs(10),
        Duration::from_millis(5),
        what,
        cond,
    )
    .await
}

/// Polls `cond` every `interval` until it holds; panics once `timeout` has passed without it.
async fn wait_until_every(
    timeout: Duration,
    interval: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(interval).await;
    }
}

/// Awaits `fut`, panicking with `what` if it takes longer than `limit` (a wedged operation).
pub async fn bounded<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(out) => out,
        Err(_) => panic!("wedged: {what} did not finish within {limit:?}"),
    }
}

/// Waits up to 1s until `node` has exactly `n` active connections (`wait_for_connections` of the
/// test vocabulary).
pub async fn wait_for_connections(node: &Node, n: usize) {
    let what = format!("node {} to have {n} connection(s)", node.name());
    wait_until_desc(Duration::from_secs(1), &what, || node.num_connected() == n).await
}

/// Asserts that all the node's views of its connections agree (CONN-14): the number of active
/// connections equals the number of connected addresses and of connection infos, and every
/// connected address is reported as connected (not connecting) and has an info with that address.
///
/// Only meaningful while no connection is being set up or torn down concurrently.
#[track_caller]
pub fn assert_consistent(node: &Node) {
    let addrs = node.connected_addrs();
    let infos = node.connection_infos();
    let n = node.num_connected();
    assert_eq!(n, addrs.len(), "num_connected != len(connected_addrs)");
    assert_eq!(n, infos.len(), "num_connected != len(connection_infos)");
    for addr in addrs {
        assert!(
            node.is_connected(addr),
            "{addr} is listed but not is_connected"
        );
        assert!(
            !node.is_connecting(addr),
            "{addr} is connected and is_connecting"
        );
        let info = node
            .connection_info(addr)
            .unwrap_or_else(|| panic!("{addr} is listed but has no connection_info"));
        assert_eq!(info.addr(), addr, "connection_info has the wrong address");
        assert!(
            infos.contains_key(&addr),
            "{addr} missing from connection_infos"
        );
    }
}

/// Drives `fut` by hand and drops it the moment it is pending and `cond` holds.
///
/// Returns `Some(output)` if the future completed first, `None` if it was dropped. This is how a
/// test cancels an operation (e.g. `connect`) at a precise stage: `cond` is checked right after
/// every poll that left the future pending, so the drop happens at the very next await point
/// after the observed state change.
pub async fn poll_until<F: Future>(fut: F, mut cond: impl FnMut() -> bool) -> Option<F::Output> {
    let mut fut = pin!(fut);
    // the state we wait for may change without waking `fut` (another task sets it), so a 1ms
    // ticker makes sure we are polled again soon
    let mut tick = pin!(tokio::time::sleep(Duration::from_millis(1)));
    poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending if cond() => Poll::Ready(None),
        Poll::Pending => {
            while tick.as_mut().poll(cx).is_ready() {
                let next = tokio::time::Instant::now() + Duration::from_millis(1);
                tick.as_mut().reset(next);
            }
            Poll::Pending
        }
    })
    .await
}
