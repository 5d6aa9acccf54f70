//! The slow-query log: statements at or over the threshold are logged at
//! warn with their shape (never their values) and kept, the last N, for the
//! report.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

use super::{settings, SessionScope, Shape};

/// One statement that took at least the slow threshold.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct SlowQuery {
    /// The shape's id, as in [`QueryStats::id`](super::QueryStats::id).
    pub id: String,
    /// The SQL with literals and bind parameters as `?`.
    pub shape: String,
    /// How long it took, in microseconds.
    pub duration_us: u64,
    /// Whether it returned an error.
    pub failed: bool,
    /// The pool of the session that ran it, if it ran in one.
    pub pool: Option<String>,
    /// The session's label (its function, or its call site).
    pub session: Option<String>,
    /// When it finished, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

static LOG: Mutex<VecDeque<SlowQuery>> = Mutex::new(VecDeque::new());
static TOTAL: AtomicU64 = AtomicU64::new(0);

/// Slow queries seen so far, including those no longer kept.
pub fn slow_query_count() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

#[cold]
pub(super) fn record(
    shape: &Arc<Shape>,
    elapsed: Duration,
    failed: bool,
    session: Option<&SessionScope>,
) {
    let query = SlowQuery {
        id: format!("{:016x}", shape.id()),
        shape: shape.text().to_owned(),
        duration_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        failed,
        pool: session.map(|s| s.pool.to_string()),
        session: session.map(SessionScope::label),
        at_unix_ms: unix_ms(),
    };
    tracing::warn!(
        shape = %query.shape,
        duration_ms = elapsed.as_secs_f64() * 1e3,
        failed,
        pool = query.pool.as_deref().unwrap_or(""),
        session = query.session.as_deref().unwrap_or(""),
        "slow query: {:.1?}",
        elapsed
    );
    TOTAL.fetch_add(1, Ordering::Relaxed);
    let keep = settings::slow_log_len();
    let mut log = LOG.lock();
    log.push_back(query);
    while log.len() > keep {
        log.pop_front();
    }
}

/// The most recent slow queries, oldest first.
pub fn slow_queries() -> Vec<SlowQuery> {
    LOG.lock().iter().cloned().collect()
}

pub(super) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
