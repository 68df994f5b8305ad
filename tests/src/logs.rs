//! Log capture: the engine's events as a user's `tracing_subscriber::fmt` would print them at a
//! given level (ERR-06: user panics are logged at ERROR; ERR-08: warnings name the node).

use std::{
    io,
    sync::{Arc, Mutex},
};

use tracing::{Level, subscriber::DefaultGuard};

/// The lines a `tracing_subscriber::fmt` subscriber with a maximum level (as with
/// `RUST_LOG=warn`) printed, without timestamps or colours.
///
/// The level filter applies to spans as well as events, exactly as for a user: a span below
/// the level is not entered and its fields do not appear in the lines.
///
/// Install it with [`LogCapture::install`], which sets it as the *thread-local* default, so
/// use it from a current-thread runtime: all the engine's tasks then run (and log) on the test's
/// own thread, and tests running in parallel don't see each other's events.
#[derive(Clone, Default)]
pub struct LogCapture {
    out: Arc<Mutex<Vec<u8>>>,
}

impl LogCapture {
    /// Creates a capture of the events at `max_level` and above, and sets it as the current
    /// thread's default subscriber until the returned guard is dropped.
    pub fn install(max_level: Level) -> (Self, DefaultGuard) {
        let capture = Self::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(max_level)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (capture, guard)
    }

    /// The lines printed so far, e.g. `WARN node{name=a}:conn{addr=..}: target: message`.
    pub fn lines(&self) -> Vec<String> {
        let out = self.out.lock().unwrap();
        String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines of events at exactly `level`.
    pub fn lines_at(&self, level: Level) -> Vec<String> {
        let prefix = level.as_str();
        let lines = self.lines();
        lines
            .into_iter()
            .filter(|line| line.trim_start().starts_with(prefix))
            .collect()
    }

    /// Whether any line at `level` contains `needle` (case-insensitive).
    pub fn any_line_contains(&self, level: Level, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.lines_at(level)
            .iter()
            .any(|line| line.to_lowercase().contains(&needle))
    }
}

impl io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
