//! A minimal `tracing` subscriber capturing ERROR events (ERR-06: user panics are logged at
//! ERROR level).

use std::{
    fmt::{self, Write as _},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tracing::{
    Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    span,
    subscriber::DefaultGuard,
};

/// Records the text of every ERROR-level event; everything else is disabled.
///
/// Install it with [`ErrorCapture::install`], which sets it as the *thread-local* default, so
/// use it from a current-thread runtime: all the engine's tasks then run (and log) on the test's
/// own thread, and tests running in parallel don't see each other's events.
#[derive(Clone, Default)]
pub struct ErrorCapture {
    events: Arc<Mutex<Vec<String>>>,
    next_span_id: Arc<AtomicU64>,
}

impl ErrorCapture {
    /// Creates a capture and sets it as the current thread's default subscriber until the
    /// returned guard is dropped.
    pub fn install() -> (Self, DefaultGuard) {
        let capture = Self::default();
        let guard = tracing::subscriber::set_default(capture.clone());
        (capture, guard)
    }

    /// The ERROR events recorded so far: the message followed by any other fields.
    pub fn errors(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    /// Whether any recorded ERROR event contains `needle` (case-insensitive).
    pub fn any_error_contains(&self, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        self.errors()
            .iter()
            .any(|e| e.to_lowercase().contains(&needle))
    }
}

/// Collects an event's fields into one line of text.
struct TextVisitor(String);

impl Visit for TextVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

impl Subscriber for ErrorCapture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // spans of any level are accepted so that ERROR events inside them are not lost
        metadata.is_span() || *metadata.level() == Level::ERROR
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        // ids must be non-zero and unique while the span lives; we never reuse them
        span::Id::from_u64(self.next_span_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        if *event.metadata().level() == Level::ERROR {
            let mut visitor = TextVisitor(String::new());
            event.record(&mut visitor);
            self.events.lock().unwrap().push(visitor.0);
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}
