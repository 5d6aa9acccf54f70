//! The in-process (L1) cache of one `#[cached_query]` function.
//!
//! Layout, chosen for the hit path:
//! - entries are found by the 64-bit hash of the *borrowed* arguments and
//!   confirmed by comparing the stored owned key with them, so a hit builds no
//!   owned key and allocates nothing (two keys sharing a 64-bit hash just
//!   evict each other: a miss, never a wrong answer);
//! - the hash picks one of a power-of-two number of shards, each an LRU behind
//!   its own mutex, so hits on different keys from different threads do not
//!   serialize on one lock;
//! - statistics are plain counters inside the shard, bumped under the lock the
//!   hit already holds;
//! - recency is lazy: a hit moves its entry to the front of the LRU only if
//!   a quarter of the shard's capacity has been inserted or moved since it
//!   last was, so hot entries are not relinked on every hit (relinking
//!   writes neighbouring entries, whose cache lines then bounce between the
//!   cores hitting the shard). Eviction stays LRU to within that quarter:
//!   an entry hit within the last three quarters of the shard's turnover is
//!   never the one evicted;
//! - freshness is a few atomic loads on the table clock ([`crate::tables`]).

use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use lru::LruCache;
use parking_lot::Mutex;

use crate::flight::Flight;
#[cfg(debug_assertions)]
use crate::guard::{RunningGuard, RunningQuery};
use crate::keys::CacheValue;
use crate::registry;
use crate::stats::{CacheStats, Counters};
use crate::tables::{self, TableState};
use crate::time;

/// How a cached call may use the cache, as the connection it was given
/// tells (see `dbkit_core::tracker::WriteTracker::access`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Outside a transaction: served and stored.
    Full,
    /// Inside a transaction that did not write these tables: a fresh entry
    /// may be served, the result is not stored (its snapshot may be old).
    ReadOnly,
    /// The transaction wrote a table the call depends on (it must see its
    /// own writes), or caching is off: the query runs, the cache is not
    /// touched.
    Bypass,
    /// A connection dbkit does not track: it cannot say whether it is
    /// inside a transaction, so its results are never stored. Served like
    /// [`Access::ReadOnly`]; warned about once per function.
    Untracked,
}

/// Default bound on the entries of one function.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// What a cached function declared about its cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheSpec {
    /// The function's path, as shown in statistics.
    pub function: &'static str,
    /// Tables its results depend on.
    pub tables: &'static [&'static str],
    /// Time to live of an entry.
    pub ttl: Duration,
    /// Most entries held at once.
    pub max_entries: usize,
    /// Whether concurrent misses of one key run the query once.
    pub single_flight: bool,
}

impl CacheSpec {
    /// A spec with the defaults: 10 000 entries, single-flight on.
    pub const fn new(
        function: &'static str,
        tables: &'static [&'static str],
        ttl: Duration,
    ) -> Self {
        CacheSpec {
            function,
            tables,
            ttl,
            max_entries: DEFAULT_MAX_ENTRIES,
            single_flight: true,
        }
    }
}

struct Entry<K, V> {
    key: K,
    value: V,
    /// Table clock read before the query that produced `value` ran.
    stamp: u64,
    /// When it expires, and when it was last placed at the LRU's front.
    expiry: Expiry,
}

/// An entry's expiry time and its place in the shard's turnover, in one
/// word (8 bytes less per entry): the low 42 bits are the expiry in
/// milliseconds on the TTL clock (139 years), the high 22 bits the shard's
/// `turnover` when the entry was last placed, modulo 2^22.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expiry(u64);

const EXPIRES_BITS: u32 = 42;
const EXPIRES_MASK: u64 = (1 << EXPIRES_BITS) - 1;
const PLACED_MASK: u64 = (1 << (64 - EXPIRES_BITS)) - 1;
/// `promote_after` stays well inside what 22 bits of turnover can tell apart.
const MAX_PROMOTE_AFTER: u64 = PLACED_MASK / 4;

impl Expiry {
    #[inline]
    fn new(expires_ms: u64, placed: u64) -> Self {
        Expiry(expires_ms.min(EXPIRES_MASK) | (placed & PLACED_MASK) << EXPIRES_BITS)
    }

    #[inline]
    fn expires_ms(self) -> u64 {
        self.0 & EXPIRES_MASK
    }

    /// Turnovers since the entry was placed (modulo 2^22).
    #[inline]
    fn placed_since(self, turnover: u64) -> u64 {
        turnover.wrapping_sub(self.0 >> EXPIRES_BITS) & PLACED_MASK
    }
}

/// The hasher a call's key arguments are fed to (seeded per cache).
pub struct KeyHasher(foldhash::fast::FoldHasher<'static>);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.finish()
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
    }
}

/// The map's keys are already hashes: pass them through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// `repr(C)` with the counters first: they follow the mutex's lock word,
/// so the two writes of a hit (the lock, `hits`) land on one cache line.
#[repr(C)]
struct Shard<K, V> {
    counters: Counters,
    lru: LruCache<u64, Entry<K, V>, BuildHasherDefault<PassThrough>>,
    flights: Vec<(u64, Arc<Flight>)>,
    /// Entries inserted or moved to the front so far.
    turnover: u64,
    /// How far behind `turnover` an entry may fall before a hit moves it.
    promote_after: u64,
}

impl<K, V> Shard<K, V> {
    fn take_flight(&mut self, hash: u64, flight: &Arc<Flight>) {
        self.flights
            .retain(|(h, f)| !(*h == hash && Arc::ptr_eq(f, flight)));
    }
}

/// One shard's lock, alone on its cache lines (no false sharing between shards).
#[repr(align(128))]
struct PaddedShard<K, V>(Mutex<Shard<K, V>>);

/// The L1 cache of one function: sharded LRU, TTL, table freshness,
/// single-flight and statistics.
pub struct QueryCache<K, V> {
    spec: CacheSpec,
    deps: Arc<[&'static TableState]>,
    ttl_ms: u64,
    hasher: foldhash::fast::RandomState,
    shards: Box<[PaddedShard<K, V>]>,
    shard_mask: usize,
    /// Whether the untracked-connection warning was logged.
    warned_untracked: AtomicBool,
}

impl<K, V> std::fmt::Debug for QueryCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache")
            .field("function", &self.spec.function)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// Shards: enough for the cores to rarely meet on one lock, few enough that
/// each still holds a meaningful LRU (at least 64 entries), a power of two.
fn shard_count(max_entries: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, NonZeroUsize::get);
    let wanted = (cores * 4).next_power_of_two().min(64);
    let affordable = (max_entries / 64).max(1);
    let mut n = 1;
    while n * 2 <= wanted && n * 2 <= affordable {
        n *= 2;
    }
    n
}

impl<K, V> QueryCache<K, V> {
    #[inline]
    fn shard(&self, hash: u64) -> &Mutex<Shard<K, V>> {
        // Bits 40..: neither the low bits the map indexes buckets with nor the
        // top seven it keeps as tags, so a shard's keys stay well spread.
        &self.shards[(hash >> 40) as usize & self.shard_mask].0
    }
}

impl<K: Eq, V: CacheValue> QueryCache<K, V> {
    /// A cache as `spec` describes it. A `max_entries` of 0 is taken as 1.
    pub fn new(spec: &CacheSpec) -> Self {
        let max_entries = spec.max_entries.max(1);
        let shards = shard_count(max_entries);
        let per_shard = NonZeroUsize::new(max_entries / shards).unwrap_or(NonZeroUsize::MIN);
        QueryCache {
            spec: *spec,
            deps: spec.tables.iter().map(|t| tables::table(t)).collect(),
            ttl_ms: u64::try_from(spec.ttl.as_millis()).unwrap_or(u64::MAX / 2),
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..shards)
                .map(|_| {
                    PaddedShard(Mutex::new(Shard {
                        lru: LruCache::with_hasher(per_shard, BuildHasherDefault::default()),
                        flights: Vec::new(),
                        counters: Counters::default(),
                        turnover: 0,
                        promote_after: (per_shard.get() as u64 / 4).clamp(1, MAX_PROMOTE_AFTER),
                    }))
                })
                .collect(),
            shard_mask: shards - 1,
            warned_untracked: AtomicBool::new(false),
        }
    }

    /// Looks a call up: `Ok(value)` on a fresh hit, otherwise a [`Ticket`]
    /// to run the query under and [`store`](Ticket::store) its result with.
    ///
    /// `access` is what the call's connection allows; `probe` is the
    /// borrowed form of the key (hashed), `matches` confirms a stored owned
    /// key equals it, `make_key` builds the owned key on a miss. The ticket
    /// carries the table-clock stamp taken here, before the query.
    ///
    /// ```
    /// use std::time::Duration;
    /// use dbkit_core::cache::{Access, CacheSpec, QueryCache};
    ///
    /// let cache: QueryCache<String, u32> =
    ///     QueryCache::new(&CacheSpec::new("doc::len", &["doc_words"], Duration::from_secs(60)));
    /// let word = "hello";
    /// let is_word = |k: &String| k == word;
    /// match cache.get_or_begin(Access::Full, &word, is_word, || word.to_owned()) {
    ///     Ok(_) => unreachable!("empty cache"),
    ///     Err(ticket) => ticket.store(word.len() as u32), // run the query, store its result
    /// }
    /// let again = cache.get_or_begin(Access::Full, &word, is_word, || word.to_owned());
    /// assert_eq!(again.ok(), Some(5));
    /// ```
    #[inline]
    pub fn get_or_begin<Q: Hash + ?Sized>(
        &self,
        access: Access,
        probe: &Q,
        matches: impl Fn(&K) -> bool,
        make_key: impl FnOnce() -> K,
    ) -> Result<V, Ticket<'_, K, V>> {
        self.get_or_begin_with(|_| access, |hasher| probe.hash(hasher), matches, make_key)
    }

    /// [`get_or_begin`](Self::get_or_begin) with the access asked of the
    /// call's connection for this cache's tables, and the key's borrowed
    /// form fed to the hasher by `hash_key` (what `#[cached_query]`
    /// expansions use, one argument at a time).
    #[inline]
    pub fn get_or_begin_with(
        &self,
        access: impl FnOnce(&[&'static TableState]) -> Access,
        hash_key: impl FnOnce(&mut KeyHasher),
        matches: impl Fn(&K) -> bool,
        make_key: impl FnOnce() -> K,
    ) -> Result<V, Ticket<'_, K, V>> {
        let access = if registry::caching() {
            match access(&self.deps) {
                Access::Untracked => {
                    self.warn_untracked();
                    Access::ReadOnly
                }
                access => access,
            }
        } else {
            Access::Bypass
        };
        let mut hasher = KeyHasher(self.hasher.build_hasher());
        hash_key(&mut hasher);
        let hash = hasher.finish();
        let shard = self.shard(hash);
        if access == Access::Bypass {
            // The connection's open transaction wrote a table we depend on,
            // or caching is off.
            shard.lock().counters.bypasses += 1;
            return Err(self.bypass_ticket());
        }
        let now_ms = time::now_ms();
        let mut waited = false;
        loop {
            let mut guard = shard.lock();
            let s = &mut *guard;
            if let Some(entry) = s.lru.peek_mut(&hash) {
                if matches(&entry.key) {
                    if entry.expiry.expires_ms() <= now_ms {
                        s.counters.expired += 1;
                        s.lru.pop(&hash);
                    } else if tables::fresh(&self.deps, entry.stamp) {
                        let value = entry.value.clone();
                        s.counters.hits += 1;
                        if entry.expiry.placed_since(s.turnover) > s.promote_after {
                            entry.expiry = Expiry::new(entry.expiry.expires_ms(), s.turnover);
                            s.turnover += 1;
                            s.lru.promote(&hash);
                        }
                        drop(guard);
                        let _hit = tracing::debug_span!(
                            "cached_query",
                            function = self.spec.function,
                            cache = "hit"
                        )
                        .entered();
                        return Ok(value);
                    } else {
                        s.counters.stale += 1;
                        s.lru.pop(&hash);
                    }
                }
            }
            if access == Access::ReadOnly {
                // Inside a transaction: its snapshot may be old, never store.
                s.counters.bypasses += 1;
                drop(guard);
                return Err(self.bypass_ticket());
            }
            if !self.spec.single_flight {
                s.counters.misses += 1;
                drop(guard);
                return Err(self.ticket(hash, make_key(), now_ms, None));
            }
            if let Some((_, flight)) = s.flights.iter().find(|(h, _)| *h == hash) {
                if flight.led_by_current_thread() {
                    // The query reached its own function again with the same
                    // key: waiting would deadlock, so run it uncached.
                    s.counters.bypasses += 1;
                    drop(guard);
                    tracing::debug!(
                        function = self.spec.function,
                        "re-entrant miss runs uncached"
                    );
                    return Err(self.bypass_ticket());
                }
                let flight = Arc::clone(flight);
                if !waited {
                    s.counters.coalesced += 1;
                    waited = true;
                }
                drop(guard);
                flight.wait();
                continue;
            }
            let flight = Arc::new(Flight::new());
            s.flights.push((hash, Arc::clone(&flight)));
            s.counters.misses += 1;
            drop(guard);
            return Err(self.ticket(hash, make_key(), now_ms, Some(flight)));
        }
    }

    fn ticket(
        &self,
        hash: u64,
        key: K,
        now_ms: u64,
        flight: Option<Arc<Flight>>,
    ) -> Ticket<'_, K, V> {
        Ticket {
            function: self.spec.function,
            #[cfg(debug_assertions)]
            _running: self.running(),
            cache: Some(self),
            hash,
            key: Some(key),
            // Read after the lookup and before the query runs: a write that
            // commits from here on bumps past this stamp.
            stamp: tables::now(),
            expires_ms: now_ms.saturating_add(self.ttl_ms),
            flight,
        }
    }

    #[cold]
    fn warn_untracked(&self) {
        if !self.warned_untracked.swap(true, Relaxed) {
            tracing::warn!(
                function = self.spec.function,
                "cached function called with a connection dbkit does not track: it cannot tell whether the connection is inside a transaction, so results read through it are never stored (hits are still served); check the connection out of a `dbkit::Pool`, call `dbkit::instrument(&mut conn)` once after establishing it, or give your r2d2 pool `dbkit::InstrumentConnections` as its connection customizer"
            );
        }
    }

    /// Whether a call of this function ran on a connection dbkit does not
    /// track (see [`Access::Untracked`]).
    pub fn saw_untracked_connection(&self) -> bool {
        self.warned_untracked.load(Relaxed)
    }

    /// The tables the function's results depend on.
    pub fn deps(&self) -> &[&'static TableState] {
        &self.deps
    }

    /// A ticket that runs the query without touching the cache, counted as a
    /// bypass (for calls whose result must not be shared).
    pub fn bypass(&self) -> Ticket<'_, K, V> {
        self.shards[0].0.lock().counters.bypasses += 1;
        self.bypass_ticket()
    }

    fn bypass_ticket(&self) -> Ticket<'_, K, V> {
        Ticket {
            function: self.spec.function,
            #[cfg(debug_assertions)]
            _running: self.running(),
            cache: None,
            hash: 0,
            key: None,
            stamp: 0,
            expires_ms: 0,
            flight: None,
        }
    }

    /// Debug builds check what the query reads against `tables`.
    #[cfg(debug_assertions)]
    fn running(&self) -> RunningGuard {
        RunningGuard::enter(RunningQuery {
            function: self.spec.function,
            declared: Arc::clone(&self.deps),
        })
    }

    /// Drops every entry (statistics are kept).
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.0.lock().lru.clear();
        }
    }

    /// The function's figures now.
    pub fn stats(&self) -> CacheStats {
        let mut counters = Counters::default();
        let mut entries = 0;
        let mut max_entries = 0;
        for shard in self.shards.iter() {
            let s = shard.0.lock();
            counters.add(&s.counters);
            entries += s.lru.len();
            max_entries += s.lru.cap().get();
        }
        CacheStats {
            function: self.spec.function.to_owned(),
            tables: self.deps.iter().map(|t| t.name().to_owned()).collect(),
            ttl_ms: self.ttl_ms,
            max_entries,
            entries,
            hits: counters.hits,
            misses: counters.misses,
            stale_rejections: counters.stale,
            expired: counters.expired,
            stores: counters.stores,
            evictions: counters.evictions,
            bypasses: counters.bypasses,
            coalesced: counters.coalesced,
            redis: false,
            l2_hits: 0,
            l2_misses: 0,
            l2_stale: 0,
            l2_corrupt: 0,
            l2_errors: 0,
            l2_stores: 0,
            untracked_connection: self.saw_untracked_connection(),
        }
    }

    /// The spec this cache was built from.
    pub fn spec(&self) -> &CacheSpec {
        &self.spec
    }

    /// An entry's time to live, in milliseconds.
    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }
}

/// The right to store the result of one query run after a miss.
///
/// Dropping it without storing (the query failed, or panicked) wakes the
/// callers waiting on the same key; one of them runs the query next.
#[must_use = "a ticket wakes waiting callers only when stored or dropped"]
pub struct Ticket<'c, K, V> {
    /// The cached function's path, for its span.
    function: &'static str,
    /// Marks the query as running for the stale-read guard (debug builds).
    #[cfg(debug_assertions)]
    _running: RunningGuard,
    cache: Option<&'c QueryCache<K, V>>,
    hash: u64,
    key: Option<K>,
    stamp: u64,
    expires_ms: u64,
    flight: Option<Arc<Flight>>,
}

impl<K: Eq, V: CacheValue> Ticket<'_, K, V> {
    /// Whether storing through this ticket does anything.
    pub fn is_bypass(&self) -> bool {
        self.cache.is_none()
    }

    /// The key the result will be stored under (`None` for a bypass).
    pub fn key(&self) -> Option<&K> {
        self.key.as_ref()
    }

    /// The `cached_query` span the query runs in: `cache = "miss"`, or
    /// `"bypass"` when its result will not be stored.
    pub fn span(&self) -> tracing::Span {
        let cache = if self.is_bypass() { "bypass" } else { "miss" };
        tracing::debug_span!("cached_query", function = self.function, cache)
    }

    /// Whether nothing this ticket depends on was written since its stamp
    /// was taken (no write in flight, none committed).
    #[cfg(feature = "redis")]
    pub(crate) fn still_fresh(&self) -> bool {
        self.cache
            .is_some_and(|cache| tables::fresh(&cache.deps, self.stamp))
    }

    /// Lets the stored entry live at most `ms` from now (a value that came
    /// from L2 keeps the expiry of its first store).
    #[cfg(feature = "redis")]
    pub(crate) fn expire_within(&mut self, ms: u64) {
        self.expires_ms = self.expires_ms.min(time::now_ms().saturating_add(ms));
    }

    /// Stores the query's result, unless a table it depends on was written
    /// while the query ran, or a fresher result for the key is already there.
    pub fn store(mut self, value: V) {
        let (Some(cache), Some(key)) = (self.cache, self.key.take()) else {
            return;
        };
        let still_fresh = tables::fresh(&cache.deps, self.stamp);
        let flight = self.flight.take();
        let mut guard = cache.shard(self.hash).lock();
        let s = &mut *guard;
        if let Some(flight) = &flight {
            s.take_flight(self.hash, flight);
        }
        if !still_fresh {
            s.counters.stale += 1;
        } else if !s
            .lru
            .peek(&self.hash)
            .is_some_and(|e| e.stamp > self.stamp && e.key == key)
        {
            let entry = Entry {
                key,
                value,
                stamp: self.stamp,
                expiry: Expiry::new(self.expires_ms, s.turnover),
            };
            s.turnover += 1;
            if let Some((evicted, _)) = s.lru.push(self.hash, entry) {
                if evicted != self.hash {
                    s.counters.evictions += 1;
                }
            }
            s.counters.stores += 1;
        }
        drop(guard);
        if let Some(flight) = flight {
            flight.land();
        }
    }
}

impl<K, V> Drop for Ticket<'_, K, V> {
    fn drop(&mut self) {
        if let (Some(cache), Some(flight)) = (self.cache, self.flight.take()) {
            cache
                .shard(self.hash)
                .lock()
                .take_flight(self.hash, &flight);
            flight.land();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max_entries: usize) -> QueryCache<u64, u64> {
        let mut spec = CacheSpec::new("cache::tests", &["cache_tests"], Duration::from_secs(60));
        spec.max_entries = max_entries;
        QueryCache::new(&spec)
    }

    fn lookup(cache: &QueryCache<u64, u64>, key: u64) -> bool {
        match cache.get_or_begin(Access::Full, &key, |k| *k == key, || key) {
            Ok(_) => true,
            Err(ticket) => {
                ticket.store(key * 10);
                false
            }
        }
    }

    #[test]
    fn expiry_and_placement_share_a_word() {
        let expiry = Expiry::new(1_700_000_000_123, 5);
        assert_eq!(expiry.expires_ms(), 1_700_000_000_123);
        assert_eq!(expiry.placed_since(5), 0);
        assert_eq!(expiry.placed_since(105), 100);
        // Turnover past 2^22 wraps; distances stay right across the wrap.
        let late = Expiry::new(7, PLACED_MASK);
        assert_eq!(late.placed_since(PLACED_MASK + 10), 10);
        assert_eq!(late.expires_ms(), 7);
        // A ttl beyond 139 years saturates instead of spilling into placement.
        assert_eq!(Expiry::new(u64::MAX, 3).expires_ms(), EXPIRES_MASK);
        assert_eq!(Expiry::new(u64::MAX, 3).placed_since(3), 0);
    }

    #[test]
    fn eviction_spares_entries_hit_recently_even_when_not_moved() {
        // 64 entries: one shard, entries move on a hit once 16 others have
        // been placed since they were.
        let cache = cache(64);
        assert_eq!(cache.shards.len(), 1);
        for key in 0..64 {
            assert!(!lookup(&cache, key));
        }
        assert!(
            lookup(&cache, 0),
            "the oldest entry, hit: moved to the front"
        );
        assert!(lookup(&cache, 60), "a recent entry, hit: left where it is");
        for key in 100..103 {
            assert!(!lookup(&cache, key)); // evicts 1, 2, 3
        }
        assert!(lookup(&cache, 0), "kept: moved by its hit");
        assert!(lookup(&cache, 60), "kept: near the front all along");
        assert!(!lookup(&cache, 1), "evicted: the least recently used");
        assert_eq!(cache.stats().entries, 64);
    }
}
