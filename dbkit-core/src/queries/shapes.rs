//! Figures per statement shape, in shards so two connections recording
//! different statements rarely meet on a lock. Bounded: a shard that is
//! full drops its least-called eighth to make room.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

use super::{settings, Shape};

const SHARDS: usize = 16;

struct Figures {
    shape: Arc<Shape>,
    calls: u64,
    errors: u64,
    total_ns: u64,
    max_ns: u64,
}

type Shard = Mutex<HashMap<u64, Figures, foldhash::fast::RandomState>>;

static STORE: LazyLock<[Shard; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::new(HashMap::default())));
static DROPPED: AtomicU64 = AtomicU64::new(0);

fn shard(id: u64) -> &'static Shard {
    &STORE[(id >> 60) as usize % SHARDS]
}

pub(super) fn record(shape: &Arc<Shape>, elapsed: Duration, failed: bool) {
    let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    let mut map = shard(shape.id).lock();
    let figures = match map.get_mut(&shape.id) {
        Some(figures) => figures,
        None => {
            let cap = settings::max_shapes().div_ceil(SHARDS).max(1);
            if map.len() >= cap {
                drop_least_called(&mut map, cap);
            }
            map.entry(shape.id).or_insert(Figures {
                shape: Arc::clone(shape),
                calls: 0,
                errors: 0,
                total_ns: 0,
                max_ns: 0,
            })
        }
    };
    figures.calls += 1;
    figures.errors += u64::from(failed);
    figures.total_ns = figures.total_ns.saturating_add(ns);
    figures.max_ns = figures.max_ns.max(ns);
}

/// Drops an eighth of the shard (at least one shape), least called first,
/// so a stream of one-off statements does not rescan the shard every time.
#[cold]
fn drop_least_called(map: &mut HashMap<u64, Figures, foldhash::fast::RandomState>, cap: usize) {
    let mut calls: Vec<(u64, u64)> = map.iter().map(|(id, f)| (f.calls, *id)).collect();
    calls.sort_unstable();
    let keep_below = cap - (cap / 8).max(1);
    let excess = map.len().saturating_sub(keep_below);
    for (_, id) in calls.into_iter().take(excess) {
        map.remove(&id);
    }
    DROPPED.fetch_add(excess as u64, Ordering::Relaxed);
    tracing::debug!(
        dropped = excess,
        "query statistics full: dropped the least-called statement shapes"
    );
}

/// The figures of one statement shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct QueryStats {
    /// The shape's stable id, 16 hex digits.
    pub id: String,
    /// The SQL with literals and bind parameters as `?`.
    pub shape: String,
    /// Whether the statement only reads.
    pub select: bool,
    /// Executions.
    pub calls: u64,
    /// Executions that returned an error.
    pub errors: u64,
    /// Time in the database summed over all executions, in microseconds.
    pub total_us: u64,
    /// Mean time of one execution, in microseconds.
    pub mean_us: u64,
    /// Longest execution, in microseconds.
    pub max_us: u64,
}

/// Every shape recorded, most total time first, and how many shapes were
/// dropped to stay within [`QuerySettings::max_shapes`](super::QuerySettings::max_shapes).
pub fn query_stats() -> (Vec<QueryStats>, u64) {
    let mut all = Vec::new();
    for shard in STORE.iter() {
        let map = shard.lock();
        all.extend(map.values().map(|f| QueryStats {
            id: format!("{:016x}", f.shape.id),
            shape: f.shape.text().to_owned(),
            select: f.shape.is_select(),
            calls: f.calls,
            errors: f.errors,
            total_us: f.total_ns / 1000,
            mean_us: f.total_ns / f.calls.max(1) / 1000,
            max_us: f.max_ns / 1000,
        }));
    }
    all.sort_by(|a, b| b.total_us.cmp(&a.total_us).then(b.calls.cmp(&a.calls)));
    (all, DROPPED.load(Ordering::Relaxed))
}

/// Forgets every shape's figures (for a fresh measurement window).
pub fn reset_query_stats() {
    for shard in STORE.iter() {
        shard.lock().clear();
    }
    DROPPED.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_called_shapes_make_room() {
        let cap = settings::max_shapes().div_ceil(SHARDS);
        let mut map = HashMap::default();
        for i in 0..cap as u64 {
            let shape = Arc::new(Shape::new(format!("SELECT {i}"), true));
            map.insert(
                i,
                Figures {
                    shape,
                    calls: i + 1,
                    errors: 0,
                    total_ns: 0,
                    max_ns: 0,
                },
            );
        }
        drop_least_called(&mut map, cap);
        assert!(map.len() < cap);
        assert!(!map.contains_key(&0), "the least called goes first");
        assert!(map.contains_key(&(cap as u64 - 1)), "the most called stays");
    }
}
