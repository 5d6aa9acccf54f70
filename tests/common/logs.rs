//! Captures what dbkit logs through `tracing`, for tests that check a
//! warning was given or a span opened: a process-wide subscriber (dbkit's
//! leak watchdog logs from its own thread) that keeps each event's level and
//! text, and each span's name and fields.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

static EVENTS: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());
static SPANS: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());

/// Starts capturing (once per test binary).
pub fn capture() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Recorder).expect("no other subscriber");
    });
}

/// Every event logged so far at `level` whose text contains `needle`.
pub fn events(level: Level, needle: &str) -> Vec<String> {
    EVENTS
        .lock()
        .unwrap()
        .iter()
        .filter(|(l, text)| *l == level && text.contains(needle))
        .map(|(_, text)| text.clone())
        .collect()
}

/// Every span opened so far named `name` whose fields contain `needle`.
pub fn spans(name: &str, needle: &str) -> Vec<String> {
    SPANS
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, fields)| *n == name && fields.contains(needle))
        .map(|(_, fields)| fields.clone())
        .collect()
}

struct Recorder;

/// An event as one line: its message, then `field=value` pairs.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut fields = Line::default();
        span.record(&mut fields);
        SPANS
            .lock()
            .unwrap()
            .push((span.metadata().name(), fields.0));
        Id::from_u64(NEXT.fetch_add(1, Ordering::Relaxed))
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        EVENTS
            .lock()
            .unwrap()
            .push((*event.metadata().level(), line.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
