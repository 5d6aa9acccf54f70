//! The circuit breaker of a pool or of the Redis tier: after a run of
//! failures, calls fail at once instead of each waiting out the timeout.
//!
//! Closed → (threshold failures in a row) → open → (cool-down passed) →
//! half-open: one call is let through to try; a success closes the breaker,
//! another failure opens it again. The call path reads one atomic while the
//! breaker is closed.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// When the breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive failed connection attempts that open the breaker; `0`
    /// turns the breaker off.
    pub threshold: u32,
    /// How long checkouts fail at once before one is let through to try.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    /// Opens after 5 failures in a row, for 5 seconds.
    fn default() -> Self {
        BreakerConfig {
            threshold: 5,
            cool_down: Duration::from_secs(5),
        }
    }
}

impl BreakerConfig {
    /// A breaker that opens after `threshold` failures in a row and stays
    /// open for `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        BreakerConfig {
            threshold,
            cool_down,
        }
    }

    /// A breaker that never opens.
    pub fn off() -> Self {
        BreakerConfig::new(0, Duration::ZERO)
    }
}

/// The breaker's state, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreakerState {
    /// Checkouts go through.
    Closed {
        /// Failed attempts since the last success.
        failures: u32,
    },
    /// Checkouts fail at once.
    Open {
        /// Failed attempts in a row.
        failures: u32,
        /// Milliseconds until a checkout is let through to try.
        retry_in_ms: u64,
        /// The last connection error.
        last_error: String,
    },
    /// One checkout is trying the database.
    HalfOpen {
        /// Failed attempts in a row.
        failures: u32,
    },
}

/// Why a checkout was refused.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) failures: u32,
    pub(crate) retry_in: Duration,
    pub(crate) last_error: String,
}

/// Whether the checkout that was let through is the half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Permit {
    Normal,
    Probe,
}

#[derive(Debug, Default)]
struct Inner {
    failures: u32,
    opened_at: Option<Instant>,
    last_error: String,
}

/// What a breaker guards, for its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guarded {
    /// A connection pool's database: calls are checkouts.
    Database,
    /// The Redis tier: calls are cache lookups and clock updates.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Redis,
}

impl Guarded {
    fn calls(self) -> &'static str {
        match self {
            Guarded::Database => "checkouts",
            Guarded::Redis => "Redis calls",
        }
    }

    fn server(self) -> &'static str {
        match self {
            Guarded::Database => "the database",
            Guarded::Redis => "Redis",
        }
    }
}

#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    /// The pool's name or the Redis address, as logged.
    name: String,
    guarded: Guarded,
    state: AtomicU8,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub(crate) fn new(name: &str, guarded: Guarded, config: BreakerConfig) -> Self {
        Breaker {
            config,
            name: name.to_owned(),
            guarded,
            state: AtomicU8::new(CLOSED),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether a checkout may go to the pool now.
    pub(crate) fn admit(&self) -> Result<Permit, Refusal> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return Ok(Permit::Normal);
        }
        let inner = self.inner.lock();
        match self.state.load(Ordering::Acquire) {
            CLOSED => Ok(Permit::Normal),
            OPEN => {
                let since = inner.opened_at.map_or(Duration::MAX, |t| t.elapsed());
                if since >= self.config.cool_down {
                    self.state.store(HALF_OPEN, Ordering::Release);
                    tracing::info!(breaker = %self.name, "circuit half-open: letting one call try {}", self.guarded.server());
                    Ok(Permit::Probe)
                } else {
                    Err(Refusal {
                        failures: inner.failures,
                        retry_in: self.config.cool_down - since,
                        last_error: inner.last_error.clone(),
                    })
                }
            }
            _ => Err(Refusal {
                failures: inner.failures,
                retry_in: Duration::ZERO,
                last_error: inner.last_error.clone(),
            }),
        }
    }

    /// A connection attempt (or the check of an idle connection) failed.
    pub(crate) fn failure(&self, error: &str) {
        if self.config.threshold == 0 {
            return;
        }
        let mut inner = self.inner.lock();
        inner.failures = inner.failures.saturating_add(1);
        inner.last_error.clear();
        inner.last_error.push_str(error);
        let state = self.state.load(Ordering::Acquire);
        let trips = match state {
            CLOSED => inner.failures >= self.config.threshold,
            HALF_OPEN => true,
            _ => false,
        };
        if trips {
            inner.opened_at = Some(Instant::now());
            self.state.store(OPEN, Ordering::Release);
            tracing::warn!(
                breaker = %self.name,
                failures = inner.failures,
                cool_down_ms = self.config.cool_down.as_millis() as u64,
                "circuit open: {} attempts in a row failed (last: {error}); {} fail at once for {:.1?}",
                inner.failures,
                self.guarded.calls(),
                self.config.cool_down,
            );
        } else if state == OPEN {
            // The pool keeps retrying in the background: keep the cool-down
            // running from the latest failure.
            inner.opened_at = Some(Instant::now());
        }
    }

    /// The half-open probe gave up without a connection.
    pub(crate) fn probe_failed(&self, error: &str) {
        if self.state.load(Ordering::Acquire) == HALF_OPEN {
            self.failure(error);
        }
    }

    /// A connection was opened: the database is back.
    pub(crate) fn success(&self) {
        let mut inner = self.inner.lock();
        let was = self.state.swap(CLOSED, Ordering::AcqRel);
        if was != CLOSED {
            tracing::info!(breaker = %self.name, failures = inner.failures, "circuit closed: {} answers again", self.guarded.server());
        }
        inner.failures = 0;
        inner.opened_at = None;
    }

    pub(crate) fn state(&self) -> BreakerState {
        let inner = self.inner.lock();
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed {
                failures: inner.failures,
            },
            OPEN => BreakerState::Open {
                failures: inner.failures,
                retry_in_ms: inner.opened_at.map_or(0, |t| {
                    self.config
                        .cool_down
                        .saturating_sub(t.elapsed())
                        .as_millis() as u64
                }),
                last_error: inner.last_error.clone(),
            },
            _ => BreakerState::HalfOpen {
                failures: inner.failures,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, cool_down_ms: u64) -> Breaker {
        Breaker::new(
            "test",
            Guarded::Database,
            BreakerConfig::new(threshold, Duration::from_millis(cool_down_ms)),
        )
    }

    #[test]
    fn opens_after_threshold_failures_in_a_row() {
        let b = breaker(3, 60_000);
        b.failure("refused");
        b.failure("refused");
        assert_eq!(b.admit().unwrap(), Permit::Normal);
        b.failure("refused");
        let refusal = b.admit().unwrap_err();
        assert_eq!(refusal.failures, 3);
        assert_eq!(refusal.last_error, "refused");
        assert!(matches!(b.state(), BreakerState::Open { failures: 3, .. }));
    }

    #[test]
    fn a_success_resets_the_run() {
        let b = breaker(2, 60_000);
        b.failure("x");
        b.success();
        b.failure("x");
        assert_eq!(b.admit().unwrap(), Permit::Normal);
    }

    #[test]
    fn half_opens_after_cool_down_lets_one_probe_and_closes_on_success() {
        let b = breaker(1, 0);
        b.failure("x");
        assert_eq!(b.admit().unwrap(), Permit::Probe);
        // While the probe runs, others still fail at once.
        assert!(b.admit().is_err());
        b.success();
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert_eq!(b.admit().unwrap(), Permit::Normal);
    }

    #[test]
    fn failed_probe_opens_again() {
        let b = breaker(1, 0);
        b.failure("x");
        assert_eq!(b.admit().unwrap(), Permit::Probe);
        b.probe_failed("still down");
        assert!(matches!(b.state(), BreakerState::Open { .. }));
    }

    #[test]
    fn threshold_zero_never_opens() {
        let b = breaker(0, 60_000);
        for _ in 0..100 {
            b.failure("x");
        }
        assert_eq!(b.admit().unwrap(), Permit::Normal);
    }
}
