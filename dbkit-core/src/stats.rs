//! Per-function cache statistics.
//!
//! Counters live inside each shard and are bumped while the shard lock is
//! already held, so a hit touches no shared atomic (a counter shared by all
//! threads costs more than the lookup itself once two cores hit).

use serde::Serialize;

/// Counters of one shard; summed into [`CacheStats`] on demand. `hits`
/// first: a hit writes only it (see the shard's layout).
#[derive(Debug, Default, Clone, Copy)]
#[repr(C)]
pub(crate) struct Counters {
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub expired: u64,
    pub stores: u64,
    pub evictions: u64,
    pub bypasses: u64,
    pub coalesced: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, other: &Counters) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.stale += other.stale;
        self.expired += other.expired;
        self.stores += other.stores;
        self.evictions += other.evictions;
        self.bypasses += other.bypasses;
        self.coalesced += other.coalesced;
    }
}

/// A snapshot of one cached function's figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct CacheStats {
    /// The function's path (`my_app::users::by_email`).
    pub function: String,
    /// Tables its results depend on, normalized.
    pub tables: Vec<String>,
    /// Time to live of an entry, in milliseconds.
    pub ttl_ms: u64,
    /// Most entries the function may hold.
    pub max_entries: usize,
    /// Entries held now (stale ones included until they are met or evicted).
    pub entries: usize,
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls that ran the query.
    pub misses: u64,
    /// Entries refused because a table they depend on was written since.
    pub stale_rejections: u64,
    /// Entries refused because their TTL ran out.
    pub expired: u64,
    /// Results stored.
    pub stores: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Calls that ran the query without reading or writing the cache.
    pub bypasses: u64,
    /// Calls that waited for another caller's identical query (single-flight).
    pub coalesced: u64,
    /// Whether the function uses the Redis tier (`#[cached_query(redis)]`).
    pub redis: bool,
    /// L1 misses answered by Redis.
    pub l2_hits: u64,
    /// L1 misses Redis had no value for.
    pub l2_misses: u64,
    /// Values in Redis refused: a table's generation moved, or a write to
    /// one was in flight.
    pub l2_stale: u64,
    /// Values in Redis that did not decode (corrupt, or another type): misses.
    pub l2_corrupt: u64,
    /// L2 lookups and stores that fell back because Redis did not answer.
    pub l2_errors: u64,
    /// Results stored in Redis.
    pub l2_stores: u64,
    /// Whether a call was given a connection dbkit does not track: what it
    /// reads through such a connection is never stored.
    pub untracked_connection: bool,
}

impl CacheStats {
    /// Hits divided by calls that consulted the cache, 0.0 when none did.
    pub fn hit_rate(&self) -> f64 {
        let calls = self.hits + self.misses;
        if calls == 0 {
            0.0
        } else {
            self.hits as f64 / calls as f64
        }
    }
}
