//! The process-wide settings of query statistics, read with relaxed loads on
//! every statement.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Thresholds and bounds of query statistics, for the whole process.
///
/// ```
/// use std::time::Duration;
/// use dbkit_core::queries::{set_query_settings, QuerySettings};
///
/// set_query_settings(
///     QuerySettings::default()
///         .slow_threshold(Duration::from_millis(200))
///         .n_plus_one_threshold(5),
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuerySettings {
    /// Statements taking at least this long are slow.
    pub slow_threshold: Duration,
    /// A SELECT shape run more than this many times in one session is an
    /// N+1 finding; 0 turns detection off.
    pub n_plus_one_threshold: u32,
    /// Most statement shapes kept.
    pub max_shapes: usize,
    /// Recent slow queries kept.
    pub slow_log_len: usize,
}

impl Default for QuerySettings {
    /// Slow from 1 s, N+1 above 10 runs of one SELECT in a session, 1 000
    /// shapes, the last 100 slow queries.
    fn default() -> Self {
        QuerySettings {
            slow_threshold: Duration::from_secs(1),
            n_plus_one_threshold: 10,
            max_shapes: 1000,
            slow_log_len: 100,
        }
    }
}

impl QuerySettings {
    /// Statements taking at least this long are logged and kept as slow.
    pub fn slow_threshold(mut self, threshold: Duration) -> Self {
        self.slow_threshold = threshold;
        self
    }

    /// One SELECT shape run more than this many times in one session is an
    /// N+1 finding.
    pub fn n_plus_one_threshold(mut self, runs: u32) -> Self {
        self.n_plus_one_threshold = runs;
        self
    }

    /// Most shapes kept; when full, the least-called ones are dropped.
    pub fn max_shapes(mut self, shapes: usize) -> Self {
        self.max_shapes = shapes.max(1);
        self
    }

    /// How many recent slow queries the report keeps.
    pub fn slow_log_len(mut self, len: usize) -> Self {
        self.slow_log_len = len;
        self
    }
}

static SLOW_US: AtomicU64 = AtomicU64::new(1_000_000);
static N_PLUS_ONE: AtomicU32 = AtomicU32::new(10);
static MAX_SHAPES: AtomicUsize = AtomicUsize::new(1000);
static SLOW_LOG_LEN: AtomicUsize = AtomicUsize::new(100);

/// Replaces the settings; statements already recorded keep their figures.
pub fn set_query_settings(settings: QuerySettings) {
    let slow_us = u64::try_from(settings.slow_threshold.as_micros()).unwrap_or(u64::MAX);
    SLOW_US.store(slow_us, Ordering::Relaxed);
    N_PLUS_ONE.store(settings.n_plus_one_threshold, Ordering::Relaxed);
    MAX_SHAPES.store(settings.max_shapes, Ordering::Relaxed);
    SLOW_LOG_LEN.store(settings.slow_log_len, Ordering::Relaxed);
}

/// The settings in force.
pub fn query_settings() -> QuerySettings {
    QuerySettings {
        slow_threshold: slow_threshold(),
        n_plus_one_threshold: n_plus_one_threshold(),
        max_shapes: max_shapes(),
        slow_log_len: slow_log_len(),
    }
}

pub(super) fn slow_threshold() -> Duration {
    Duration::from_micros(SLOW_US.load(Ordering::Relaxed))
}

pub(super) fn n_plus_one_threshold() -> u32 {
    N_PLUS_ONE.load(Ordering::Relaxed)
}

pub(super) fn max_shapes() -> usize {
    MAX_SHAPES.load(Ordering::Relaxed)
}

pub(super) fn slow_log_len() -> usize {
    SLOW_LOG_LEN.load(Ordering::Relaxed)
}
