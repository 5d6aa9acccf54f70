//! One serializable snapshot of what dbkit knows, and its export as
//! Prometheus text or through the `metrics` facade.

mod families;
#[cfg(feature = "metrics")]
mod metrics;
mod prometheus;
mod warnings;

use serde::Serialize;

use crate::guard;
use crate::pool::{self, Advice, PoolReport, SessionInfo};
use crate::queries::{self, NPlusOne, QueryStats, SlowQuery};
use crate::registry;
use crate::remote::{self, RedisReport};
use crate::stats::CacheStats;
use crate::tables::{self, TableStats};

/// A snapshot of the caches, the table clock, the pools and their sessions,
/// the statements and what looks wrong.
///
/// ```
/// let report = dbkit_core::report::report();
/// assert!(report.tables.iter().any(|t| t.table == "*"));
/// let json = serde_json::to_string(&report).unwrap();
/// assert!(json.contains("\"caches\""));
/// assert!(report.to_prometheus().contains("# TYPE dbkit_table_invalidations_total counter"));
/// ```
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// Every cached function called so far.
    pub caches: Vec<CacheStats>,
    /// Every table seen, with its invalidation count.
    pub tables: Vec<TableStats>,
    /// Every pool alive, with its figures and open sessions.
    pub pools: Vec<PoolReport>,
    /// Sessions open now in every pool, longest held first.
    pub sessions: Vec<SessionInfo>,
    /// Statement shapes, most total time first.
    pub queries: Vec<QueryStats>,
    /// Shapes dropped to keep the statistics within their bound.
    pub query_shapes_dropped: u64,
    /// The most recent slow statements, oldest first.
    pub slow_queries: Vec<SlowQuery>,
    /// Slow statements seen so far, including those no longer kept.
    pub slow_queries_total: u64,
    /// The most recent N+1 findings, oldest first.
    pub n_plus_one: Vec<NPlusOne>,
    /// N+1 findings so far, including those no longer kept.
    pub n_plus_one_total: u64,
    /// What looks wrong now, in words: leaked sessions, an open breaker,
    /// cached functions reading tables they do not declare.
    pub warnings: Vec<String>,
    /// What the pool figures say about their size, in words.
    pub advice: Vec<Advice>,
    /// The Redis tier, if one is installed (feature `redis`).
    pub redis: Option<RedisReport>,
}

/// Takes the snapshot.
pub fn report() -> Report {
    let pools: Vec<PoolReport> = pool::pools().iter().map(|p| p.report()).collect();
    let mut sessions: Vec<SessionInfo> = pools.iter().flat_map(|p| p.sessions.clone()).collect();
    sessions.sort_by_key(|s| std::cmp::Reverse(s.held_ms));
    let (queries, query_shapes_dropped) = queries::query_stats();
    let advice = pools.iter().flat_map(pool::advise).collect();
    let redis = remote::report();
    let caches = registry::cache_stats();
    let warnings = warnings::warnings(
        &pools,
        &caches,
        &guard::undeclared_reads(),
        query_shapes_dropped,
        redis.as_ref(),
    );
    Report {
        caches,
        tables: tables::table_stats(),
        pools,
        sessions,
        queries,
        query_shapes_dropped,
        slow_queries: queries::slow_queries(),
        slow_queries_total: queries::slow_query_count(),
        n_plus_one: queries::n_plus_one(),
        n_plus_one_total: queries::n_plus_one_count(),
        warnings,
        advice,
        redis,
    }
}

impl Report {
    /// The figures in Prometheus' text exposition format (version 0.0.4),
    /// ready to serve on `/metrics`. Names follow Prometheus' conventions:
    /// `dbkit_` prefix, base units (seconds), counters ending in `_total`.
    pub fn to_prometheus(&self) -> String {
        prometheus::render(&families::families(self))
    }

    /// Emits the same figures as [`to_prometheus`](Self::to_prometheus)
    /// through the `metrics` facade, to whatever recorder the application
    /// installed: counters with `absolute`, gauges with `set`. Call it
    /// periodically, or before each scrape.
    #[cfg(feature = "metrics")]
    pub fn emit_metrics(&self) {
        metrics::emit(&families::families(self));
    }
}
