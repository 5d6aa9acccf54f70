//! What the statements cost: statistics per statement shape, the slow-query
//! log and N+1 detection per session.
//!
//! The diesel instrumentation turns each statement into a [`Shape`] once per
//! connection (literals and bind parameters become `?`, as
//! pg_stat_statements does), then reports each execution with [`record`]:
//! one lock of one shard, no allocation. Bind values are never seen here.

mod n_plus_one;
mod settings;
mod shapes;
mod slow;

use std::sync::Arc;
use std::time::Duration;

pub use n_plus_one::{n_plus_one, n_plus_one_count, NPlusOne, SessionQueries, SessionScope};
pub use settings::{query_settings, set_query_settings, QuerySettings};
pub use shapes::{query_stats, reset_query_stats, QueryStats};
pub use slow::{slow_queries, slow_query_count, SlowQuery};

/// One statement shape: the SQL with its values taken out.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    id: u64,
    text: Box<str>,
    is_select: bool,
}

impl Shape {
    /// A shape from its normalized text. `is_select` marks statements that
    /// only read, the ones N+1 detection counts.
    ///
    /// ```
    /// let shape = dbkit_core::queries::Shape::new("SELECT * FROM users WHERE id = ?", true);
    /// assert_eq!(shape.text(), "SELECT * FROM users WHERE id = ?");
    /// ```
    pub fn new(text: impl Into<Box<str>>, is_select: bool) -> Self {
        let text = text.into();
        Shape {
            id: shape_id(&text),
            text,
            is_select,
        }
    }

    /// A stable id: the same text gives the same id in every process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The normalized SQL.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the statement only reads.
    pub fn is_select(&self) -> bool {
        self.is_select
    }
}

/// A hash of the text with a fixed seed, so ids mean the same thing across
/// restarts (dashboards keep their series).
fn shape_id(text: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x6462_6b69_745f_7368).hash_one(text)
}

/// Records one execution of `shape`: its statistics, the slow-query log when
/// it took `elapsed` ≥ the threshold, attributed to `session` if any.
pub fn record(shape: &Arc<Shape>, elapsed: Duration, failed: bool, session: Option<&SessionScope>) {
    shapes::record(shape, elapsed, failed);
    if elapsed >= settings::slow_threshold() {
        slow::record(shape, elapsed, failed, session);
    }
}
