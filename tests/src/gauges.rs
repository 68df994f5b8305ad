//! Resource gauges for the leak and chaos suites: open file descriptors, live tokio tasks and
//! live heap bytes.

/// The number of this process's open file descriptors (Linux; 0 where `/proc` is missing).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// The number of live tasks of the current tokio runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Live heap bytes according to a `stats_alloc` counting allocator. Its byte counts already
/// include what reallocations grew or shrank by (`bytes_reallocated` repeats those changes, so
/// adding it would count them twice).
pub fn live_bytes(stats: stats_alloc::Stats) -> isize {
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}
