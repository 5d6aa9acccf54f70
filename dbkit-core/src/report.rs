//! One serializable snapshot of what dbkit knows.

use serde::Serialize;

use crate::pool::{self, PoolReport, SessionInfo};
use crate::registry;
use crate::stats::CacheStats;
use crate::tables::{self, TableStats};

/// A snapshot of the caches, the table clock, the pools and their sessions.
///
/// ```
/// let report = dbkit_core::report::report();
/// assert!(report.tables.iter().any(|t| t.table == "*"));
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
}

/// Takes the snapshot.
pub fn report() -> Report {
    let pools: Vec<PoolReport> = pool::pools().iter().map(|p| p.report()).collect();
    let mut sessions: Vec<SessionInfo> = pools.iter().flat_map(|p| p.sessions.clone()).collect();
    sessions.sort_by_key(|s| std::cmp::Reverse(s.held_ms));
    Report {
        caches: registry::cache_stats(),
        tables: tables::table_stats(),
        pools,
        sessions,
    }
}
