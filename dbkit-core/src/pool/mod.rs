//! Accounting for pooled connections (Contract 2), free of any pool crate:
//! every checkout is a registered session with a label, a call site, a
//! thread and a time; leaks, nested checkouts and exhausted pools are
//! reported from that registry. `dbkit-diesel` drives it from its r2d2 pool.
//!
//! The checkout protocol, for a pool implementation:
//! [`PoolTracker::admit`] (breaker and nested-checkout check), then the
//! pool's own checkout, then [`Admission::checked_out`] (registers the
//! session) or [`Admission::timed_out`] (builds the error naming the
//! holders). The pool's events go to [`PoolTracker::connection_opened`],
//! [`connection_closed`](PoolTracker::connection_closed),
//! [`connect_failed`](PoolTracker::connect_failed) and
//! [`record_wait`](PoolTracker::record_wait).

mod advice;
mod config;
mod leak;
mod sessions;

use std::cell::Cell;
use std::panic::Location;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

pub use crate::breaker::{BreakerConfig, BreakerState};
pub use advice::{advise, Advice, Verdict};
pub use config::PoolConfig;
pub use sessions::{SessionInfo, SessionToken};

use crate::breaker::{Breaker, Guarded, Permit};
use crate::error::{Error, NestedCheckout, PoolTimeout};
use sessions::Slab;

/// What a [`PoolTracker`] needs to know of its pool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TrackerConfig {
    /// Shown in reports and errors.
    pub name: String,
    /// The most connections the pool opens.
    pub max_size: u32,
    /// Connections kept open when idle.
    pub min_idle: u32,
    /// Sessions held longer are reported as possible leaks.
    pub leak_threshold: Option<Duration>,
    /// Capture a backtrace at each checkout (costly; for hunting leaks).
    pub capture_backtraces: bool,
    /// When checkouts start failing at once.
    pub breaker: BreakerConfig,
}

impl TrackerConfig {
    /// A configuration for a pool named `name` of at most `max_size`
    /// connections, with no leak threshold and the default breaker.
    pub fn new(name: impl Into<String>, max_size: u32) -> Self {
        TrackerConfig {
            name: name.into(),
            max_size,
            min_idle: max_size,
            leak_threshold: None,
            capture_backtraces: false,
            breaker: BreakerConfig::default(),
        }
    }
}

/// The registry and figures of one pool.
pub struct PoolTracker {
    id: u64,
    /// Shared with each session's statements (slow-query log, N+1).
    name: Arc<str>,
    max_size: u32,
    min_idle: u32,
    leak_threshold: Option<Duration>,
    capture_backtraces: bool,
    sessions: Mutex<Slab>,
    breaker: Breaker,
    connections: AtomicU32,
    waiters: AtomicU32,
    timeouts: AtomicU64,
    nested: AtomicU64,
    refused: AtomicU64,
    warned_sites: Mutex<Vec<&'static Location<'static>>>,
}

impl std::fmt::Debug for PoolTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolTracker")
            .field("name", &self.name)
            .field("max_size", &self.max_size)
            .finish_non_exhaustive()
    }
}

fn trackers() -> &'static Mutex<Vec<Weak<PoolTracker>>> {
    static TRACKERS: Mutex<Vec<Weak<PoolTracker>>> = Mutex::new(Vec::new());
    &TRACKERS
}

/// Every pool alive in the process.
pub fn pools() -> Vec<Arc<PoolTracker>> {
    let mut list = trackers().lock();
    list.retain(|w| w.strong_count() > 0);
    list.iter().filter_map(Weak::upgrade).collect()
}

thread_local! {
    /// How long this thread's last checkout waited, as the pool reported it
    /// to its event handler just before handing the connection over.
    static LAST_WAIT: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

impl PoolTracker {
    /// A tracker for a new pool, listed in the report from now on.
    pub fn new(config: TrackerConfig) -> Arc<Self> {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let tracker = Arc::new(PoolTracker {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            breaker: Breaker::new(&config.name, Guarded::Database, config.breaker),
            name: config.name.into(),
            max_size: config.max_size,
            min_idle: config.min_idle,
            leak_threshold: config.leak_threshold,
            capture_backtraces: config.capture_backtraces,
            sessions: Mutex::new(Slab::default()),
            connections: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            timeouts: AtomicU64::new(0),
            nested: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            warned_sites: Mutex::new(Vec::new()),
        });
        trackers().lock().push(Arc::downgrade(&tracker));
        if tracker.leak_threshold.is_some() {
            leak::watch(&tracker);
        }
        tracker
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared: what a session hands its connection's statements.
    pub fn shared_name(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    /// The first step of a checkout: fails at once when the breaker is open,
    /// or when this thread already holds a connection of the pool and
    /// `has_room()` says none is free (the checkout would wait for itself).
    /// With room, a nested checkout is allowed and warned about once per
    /// call site.
    ///
    /// # Errors
    ///
    /// [`Error::CircuitOpen`], [`Error::NestedCheckout`].
    pub fn admit(
        self: &Arc<Self>,
        label: Option<&'static str>,
        location: &'static Location<'static>,
        has_room: impl FnOnce() -> bool,
    ) -> Result<Admission<'_>, Error> {
        let permit = self.breaker.admit().map_err(|refusal| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Error::CircuitOpen {
                pool: self.name.to_string(),
                failures: refusal.failures,
                retry_in: refusal.retry_in,
                last_error: refusal.last_error,
            }
        })?;
        if let Some(held) = sessions::held_by_current_thread(self) {
            self.nested.fetch_add(1, Ordering::Relaxed);
            let nested = NestedCheckout {
                pool: self.name.to_string(),
                held,
                requested_at: location.to_string(),
                requested_by: label.map_or_else(|| location.to_string(), str::to_owned),
            };
            if !has_room() {
                if permit == Permit::Probe {
                    self.breaker
                        .probe_failed("probe abandoned (nested checkout)");
                }
                return Err(Error::NestedCheckout(Box::new(nested)));
            }
            let mut warned = self.warned_sites.lock();
            if !warned.contains(&location) {
                warned.push(location);
                drop(warned);
                tracing::warn!(
                    pool = %self.name,
                    location = %location,
                    "{nested} (this time the pool had a free connection, so it went ahead)"
                );
            }
        }
        LAST_WAIT.with(|w| w.set(Duration::ZERO));
        Ok(Admission {
            tracker: self,
            permit,
            label,
            location,
            waiting: false,
        })
    }

    /// The pool handed a checkout its connection after waiting `wait`.
    /// Call it from the pool's checkout event, on the checking-out thread.
    pub fn record_wait(wait: Duration) {
        LAST_WAIT.with(|w| w.set(wait));
    }

    /// The pool opened a connection: the database is reachable.
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.breaker.success();
    }

    /// The pool closed a connection.
    pub fn connection_closed(&self) {
        let _ = self
            .connections
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The pool failed to open a connection, or found an idle one broken.
    pub fn connect_failed(&self, error: &str) {
        self.breaker.failure(error);
    }

    /// The sessions open now, longest held first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let now = crate::time::monotonic_ms();
        let slab = self.sessions.lock();
        let mut all: Vec<SessionInfo> = slab.records().map(|r| r.info(&self.name, now)).collect();
        drop(slab);
        all.sort_by(|a, b| b.held_ms.cmp(&a.held_ms).then(a.id.cmp(&b.id)));
        all
    }

    /// The breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Checkouts waiting for a connection now.
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }

    /// The pool's figures and open sessions now.
    pub fn report(&self) -> PoolReport {
        let (in_use, peak_in_use, checkouts, waited, wait_total, wait_max, leaks) = {
            let slab = self.sessions.lock();
            (
                slab.open as u32,
                slab.peak_open as u32,
                slab.checkouts,
                slab.waited,
                slab.wait_total,
                slab.wait_max,
                slab.leaks,
            )
        };
        let connections = self.connections.load(Ordering::Relaxed);
        PoolReport {
            name: self.name.to_string(),
            max_size: self.max_size,
            min_idle: self.min_idle,
            connections,
            idle: connections.saturating_sub(in_use),
            in_use,
            peak_in_use,
            waiters: self.waiters(),
            checkouts,
            waited,
            timeouts: self.timeouts.load(Ordering::Relaxed),
            refused_by_breaker: self.refused.load(Ordering::Relaxed),
            nested_checkouts: self.nested.load(Ordering::Relaxed),
            leaks,
            wait_mean_us: if checkouts == 0 {
                0
            } else {
                (wait_total.as_micros() / u128::from(checkouts)) as u64
            },
            wait_max_us: wait_max.as_micros() as u64,
            leak_threshold_ms: self.leak_threshold.map(|t| t.as_millis() as u64),
            breaker: self.breaker.state(),
            sessions: self.sessions(),
        }
    }

    /// Reports sessions held past the leak threshold now, instead of
    /// waiting for the watchdog. Returns how many were newly reported.
    pub fn check_leaks(&self) -> u64 {
        let Some(threshold) = self.leak_threshold else {
            return 0;
        };
        let before = self.sessions.lock().leaks;
        leak::report_leaks(self, threshold);
        self.sessions.lock().leaks - before
    }
}

/// A checkout the tracker let through; finish it with
/// [`checked_out`](Self::checked_out) or [`timed_out`](Self::timed_out).
#[must_use]
#[derive(Debug)]
pub struct Admission<'a> {
    tracker: &'a Arc<PoolTracker>,
    permit: Permit,
    label: Option<&'static str>,
    location: &'static Location<'static>,
    waiting: bool,
}

impl Admission<'_> {
    /// No connection was free at once: the checkout now waits for one and
    /// counts as a waiter until it ends.
    pub fn waiting(mut self) -> Self {
        if !self.waiting {
            self.waiting = true;
            self.tracker.waiters.fetch_add(1, Ordering::Relaxed);
        }
        self
    }

    /// The pool handed over a connection: registers the session.
    pub fn checked_out(self) -> SessionToken {
        if self.permit == Permit::Probe {
            self.tracker.breaker.success();
        }
        let wait = LAST_WAIT.with(Cell::get);
        SessionToken::open(self.tracker, self.label, self.location, wait, self.waiting)
    }

    /// The pool gave up after `waited`; `connect_error` is its last error
    /// opening a connection, if any. Returns the error naming the holders.
    pub fn timed_out(self, waited: Duration, connect_error: Option<String>) -> Error {
        let tracker = self.tracker;
        tracker.timeouts.fetch_add(1, Ordering::Relaxed);
        if self.permit == Permit::Probe {
            tracker
                .breaker
                .probe_failed(connect_error.as_deref().unwrap_or("no connection in time"));
        }
        let timeout = PoolTimeout {
            pool: tracker.name.to_string(),
            waited,
            max_size: tracker.max_size,
            requested_at: self.location.to_string(),
            holders: tracker.sessions(),
            connect_error,
        };
        tracing::warn!(pool = %tracker.name, "{timeout}");
        Error::PoolTimeout(Box::new(timeout))
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.waiting {
            self.tracker.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// One pool in the report.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PoolReport {
    /// The pool's name.
    pub name: String,
    /// The most connections it opens.
    pub max_size: u32,
    /// Connections it keeps open when idle.
    pub min_idle: u32,
    /// Connections open now.
    pub connections: u32,
    /// Open and not checked out.
    pub idle: u32,
    /// Checked out now.
    pub in_use: u32,
    /// Most connections checked out at once so far.
    pub peak_in_use: u32,
    /// Checkouts waiting for a connection now.
    pub waiters: u32,
    /// Checkouts so far.
    pub checkouts: u64,
    /// Checkouts that found no idle connection and had to wait.
    pub waited: u64,
    /// Checkouts that timed out.
    pub timeouts: u64,
    /// Checkouts refused at once by the open breaker.
    pub refused_by_breaker: u64,
    /// Checkouts made while the thread already held a connection of the pool.
    pub nested_checkouts: u64,
    /// Sessions reported as possible leaks.
    pub leaks: u64,
    /// Mean wait for a connection, in microseconds.
    pub wait_mean_us: u64,
    /// Longest wait for a connection, in microseconds.
    pub wait_max_us: u64,
    /// The leak threshold, if set.
    pub leak_threshold_ms: Option<u64>,
    /// The circuit breaker.
    pub breaker: BreakerState,
    /// Sessions open now, longest held first.
    pub sessions: Vec<SessionInfo>,
}
