//! Leak detection: one watchdog thread for the whole process scans the
//! pools that have a leak threshold and reports each session held past it,
//! once. No thread or timer per session: the checkout path only records the
//! time.

use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

use super::PoolTracker;
use crate::time;

fn watched() -> &'static Mutex<Vec<Weak<PoolTracker>>> {
    static WATCHED: Mutex<Vec<Weak<PoolTracker>>> = Mutex::new(Vec::new());
    &WATCHED
}

/// Starts watching `tracker`'s sessions (and the watchdog, on first use).
pub(crate) fn watch(tracker: &Arc<PoolTracker>) {
    let mut list = watched().lock().unwrap_or_else(|e| e.into_inner());
    let first = list.is_empty();
    list.push(Arc::downgrade(tracker));
    drop(list);
    if first {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            let spawned = thread::Builder::new()
                .name("dbkit-leak-watchdog".into())
                .spawn(watchdog);
            if let Err(e) = spawned {
                tracing::error!(
                    "could not start dbkit's leak watchdog thread: {e}; leaks will not be reported"
                );
            }
        });
    }
}

fn watchdog() {
    loop {
        let trackers: Vec<Arc<PoolTracker>> = {
            let mut list = watched().lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        let mut pause = Duration::from_secs(1);
        for tracker in &trackers {
            if let Some(threshold) = tracker.leak_threshold {
                report_leaks(tracker, threshold);
                // A quarter of the threshold: a leak is reported at most
                // 25 % late.
                pause = pause.min(threshold / 4).max(Duration::from_millis(5));
            }
        }
        drop(trackers);
        thread::sleep(pause);
    }
}

/// Logs every session of `tracker` held longer than `threshold` and not yet
/// reported.
pub(crate) fn report_leaks(tracker: &PoolTracker, threshold: Duration) {
    let now = time::monotonic_ms();
    let threshold_ms = threshold.as_millis() as u64;
    let mut leaked = Vec::new();
    {
        let mut slab = tracker.sessions.lock();
        for record in slab.records_mut() {
            if !record.leak_reported && record.held_ms(now) >= threshold_ms {
                record.leak_reported = true;
                leaked.push(record.info(&tracker.name, now));
            }
        }
        slab.leaks += leaked.len() as u64;
    }
    for info in leaked {
        tracing::warn!(
            pool = %info.pool,
            session = info.id,
            label = %info.label,
            location = %info.location,
            thread = %info.thread,
            held_ms = info.held_ms,
            backtrace = info.backtrace.as_deref().unwrap_or(""),
            "possible connection leak: `{}` checked out a connection at {} {:.1?} ago (leak threshold {:.1?}) and still holds it",
            info.label,
            info.location,
            info.held(),
            threshold,
        );
    }
}
