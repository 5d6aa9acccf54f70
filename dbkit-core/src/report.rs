//! One serializable snapshot of what dbkit knows.

use serde::Serialize;

use crate::registry;
use crate::stats::CacheStats;
use crate::tables::{self, TableStats};

/// A snapshot of the caches and the table clock.
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
}

/// Takes the snapshot.
pub fn report() -> Report {
    Report {
        caches: registry::cache_stats(),
        tables: tables::table_stats(),
    }
}
