//! The cache of one `#[cached_query(redis)]` function: its L1, then Redis.
//!
//! L1 → L2 → database. An L2 lookup happens only on an L1 miss that will be
//! stored (not for bypasses), by the one caller single-flight lets run the
//! query; an L2 hit fills L1 through that caller's ticket, so the usual
//! freshness checks apply to it too.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{self, Undecodable};
use super::tier::{self, Tier};
use crate::cache::{Access, CacheSpec, KeyHasher, QueryCache, Ticket};
use crate::keys::{CacheValue, Output};
use crate::registry::{self, CacheHandle};
use crate::stats::CacheStats;
use crate::tables::{self, TableState};
use crate::time;

/// An argument whose key form can be written into a Redis key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a `#[cached_query(redis)]` key",
    label = "this argument is part of the Redis key",
    note = "with `redis`, a key argument's owned form must implement `serde::Serialize` (derive it), or mark the argument `#[dbkit(skip)]` if it does not change the result"
)]
pub trait RemoteKey: Serialize {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + ?Sized> RemoteKey for T {}

/// A value that can be stored in Redis.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in Redis by `#[cached_query(redis)]`",
    label = "the value stored in Redis",
    note = "derive `serde::Serialize` and `serde::Deserialize` on it, or drop `redis` to keep it in the process only"
)]
pub trait RemoteValue: Serialize + DeserializeOwned {}

#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned> RemoteValue for T {}

/// What the function's macro knows about its code, so that changed code
/// never reads bytes stored by the old one.
#[derive(Debug, Clone, Copy)]
pub struct RemoteSpec {
    /// A hash of the function's signature and return type, as written.
    pub signature: u64,
    /// The version of the crate the function is in.
    pub version: &'static str,
}

#[derive(Debug, Default)]
struct L2Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    corrupt: AtomicU64,
    errors: AtomicU64,
    stores: AtomicU64,
}

/// L1 plus L2 for one function.
pub struct RemoteCache<K, V> {
    l1: QueryCache<K, V>,
    /// The tables the function depends on, `*` first: their marks and
    /// generations decide whether a value in Redis is fresh.
    clock: Vec<&'static TableState>,
    /// `<function>@<version>:<signature>:`, the key's middle.
    name: String,
    counters: L2Counters,
}

impl<K, V> std::fmt::Debug for RemoteCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteCache")
            .field("l1", &self.l1)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What the L2 lookup leaves for the ticket to do after the query.
enum After {
    /// Store the result under `key`, stamped with `generations`.
    Store { key: Vec<u8>, generations: Vec<u64> },
    /// Redis has no generation for a table yet: start them, store nothing.
    StartGenerations,
    /// Nothing (no tier, Redis down, a write in flight, a bypass).
    Nothing,
}

/// The right to store one query's result in L1 and L2.
#[must_use = "a ticket wakes waiting callers only when stored or dropped"]
pub struct RemoteTicket<'c, K, V> {
    l1: Ticket<'c, K, V>,
    cache: &'c RemoteCache<K, V>,
    tier: Option<Arc<Tier>>,
    after: After,
}

impl<K, V> RemoteCache<K, V>
where
    K: Eq + RemoteKey,
    V: CacheValue + RemoteValue,
{
    fn new(spec: &CacheSpec, remote: RemoteSpec) -> Self {
        let mut clock = vec![tables::table_all()];
        clock.extend(spec.tables.iter().map(|t| tables::table(t)));
        RemoteCache {
            l1: QueryCache::new(spec),
            clock,
            name: format!(
                "{}@{}:{:016x}:",
                spec.function, remote.version, remote.signature
            ),
            counters: L2Counters::default(),
        }
    }

    /// L1, then Redis: `Ok` on a hit in either, otherwise a ticket to run
    /// the query under. Arguments as [`QueryCache::get_or_begin_with`].
    #[inline]
    pub fn get_or_begin_with(
        &self,
        access: impl FnOnce(&[&'static TableState]) -> Access,
        hash_key: impl FnOnce(&mut KeyHasher),
        matches: impl Fn(&K) -> bool,
        make_key: impl FnOnce() -> K,
    ) -> Result<V, RemoteTicket<'_, K, V>> {
        match self
            .l1
            .get_or_begin_with(access, hash_key, matches, make_key)
        {
            Ok(hit) => Ok(hit),
            Err(l1) => self.miss(l1),
        }
    }

    /// An L1 miss: ask Redis. An L2 hit is stored in L1 and returned.
    #[cold]
    fn miss<'c>(&'c self, l1: Ticket<'c, K, V>) -> Result<V, RemoteTicket<'c, K, V>> {
        let tier = tier::current();
        let mut ticket = RemoteTicket {
            l1,
            cache: self,
            tier: None,
            after: After::Nothing,
        };
        let (Some(tier), Some(key)) = (tier, ticket.l1.key()) else {
            return Err(ticket);
        };
        let key = match self.redis_key(&tier, key) {
            Ok(key) => key,
            Err(e) => {
                self.counters.errors.fetch_add(1, Relaxed);
                tracing::debug!(
                    function = self.l1.spec().function,
                    "key not serializable for Redis: {e}"
                );
                return Err(ticket);
            }
        };
        let Some(seen) = tier.lookup(&self.clock, &key) else {
            self.counters.errors.fetch_add(1, Relaxed);
            return Err(ticket);
        };
        ticket.tier = Some(tier);
        if seen.marked {
            // A write is in flight somewhere: neither serve nor store.
            if seen.value.is_some() {
                self.counters.stale.fetch_add(1, Relaxed);
            } else {
                self.counters.misses.fetch_add(1, Relaxed);
            }
            return Err(ticket);
        }
        let Some(generations) = seen.generations else {
            self.counters.misses.fetch_add(1, Relaxed);
            ticket.after = After::StartGenerations;
            return Err(ticket);
        };
        let now_wall = time::wall_ms();
        match seen.value.as_deref().map(codec::open) {
            None => {
                self.counters.misses.fetch_add(1, Relaxed);
            }
            Some(Ok(opened)) if opened.expires_at_ms <= now_wall => {
                // Redis keeps it a little longer than its ttl allows.
                self.counters.misses.fetch_add(1, Relaxed);
            }
            Some(Ok(opened)) if !ticket.l1.still_fresh() => {
                // This process has a write in flight, or committed one that
                // Redis has not seen: neither serve nor store.
                let _ = opened;
                self.counters.stale.fetch_add(1, Relaxed);
                return Err(ticket);
            }
            Some(Ok(opened)) if opened.generations == generations => {
                match codec::decode::<V>(opened.payload) {
                    Ok(value) => {
                        self.counters.hits.fetch_add(1, Relaxed);
                        let _hit = tracing::debug_span!(
                            "cached_query",
                            function = self.l1.spec().function,
                            cache = "l2_hit"
                        )
                        .entered();
                        // L1 keeps it no longer than its first store allows.
                        ticket
                            .l1
                            .expire_within(opened.expires_at_ms.saturating_sub(now_wall));
                        ticket.l1.store(value.clone());
                        return Ok(value);
                    }
                    Err(why) => self.undecodable(ticket.tier.as_deref(), why),
                }
            }
            Some(Ok(_)) => {
                self.counters.stale.fetch_add(1, Relaxed);
            }
            Some(Err(why)) => self.undecodable(ticket.tier.as_deref(), why),
        }
        ticket.after = After::Store { key, generations };
        Err(ticket)
    }

    fn undecodable(&self, tier: Option<&Tier>, why: Undecodable) {
        self.counters.corrupt.fetch_add(1, Relaxed);
        let why = match why {
            Undecodable::Corrupt => {
                "not dbkit's framing, or its checksum does not match".to_owned()
            }
            Undecodable::Foreign(e) => format!("not this function's type: {e}"),
        };
        if let Some(tier) = tier {
            tier.corrupt(self.l1.spec().function, &why);
        }
    }

    /// `<prefix>:v:<function>@<version>:<signature>:<postcard of the key>`.
    fn redis_key(&self, tier: &Tier, key: &K) -> Result<Vec<u8>, postcard::Error> {
        let mut bytes = Vec::with_capacity(tier.prefix.len() + self.name.len() + 32);
        bytes.extend_from_slice(tier.prefix.as_bytes());
        bytes.extend_from_slice(b":v:");
        bytes.extend_from_slice(self.name.as_bytes());
        postcard::to_extend(key, bytes)
    }

    /// The L1 cache (its statistics, its spec).
    pub fn l1(&self) -> &QueryCache<K, V> {
        &self.l1
    }

    fn stats(&self) -> CacheStats {
        let mut stats = self.l1.stats();
        let c = &self.counters;
        stats.redis = true;
        stats.l2_hits = c.hits.load(Relaxed);
        stats.l2_misses = c.misses.load(Relaxed);
        stats.l2_stale = c.stale.load(Relaxed);
        stats.l2_corrupt = c.corrupt.load(Relaxed);
        stats.l2_errors = c.errors.load(Relaxed);
        stats.l2_stores = c.stores.load(Relaxed);
        stats
    }
}

impl<K, V> RemoteTicket<'_, K, V>
where
    K: Eq + RemoteKey,
    V: CacheValue + RemoteValue,
{
    /// The `cached_query` span the query runs in (see [`Ticket::span`]).
    pub fn span(&self) -> tracing::Span {
        self.l1.span()
    }

    /// Stores the query's result in L1 (see [`Ticket::store`]) and in Redis,
    /// stamped with the generations its tables had before it ran.
    pub fn store(self, value: V) {
        let RemoteTicket {
            l1,
            cache,
            tier,
            after,
        } = self;
        let expires_at_ms = time::wall_ms().saturating_add(cache.l1.ttl_ms());
        let frame = match &after {
            After::Store { generations, .. } => {
                match codec::encode(generations, expires_at_ms, &value) {
                    Ok(frame) => Some(frame),
                    Err(e) => {
                        cache.counters.errors.fetch_add(1, Relaxed);
                        tracing::debug!(
                            function = cache.l1.spec().function,
                            "value not serializable for Redis: {e}"
                        );
                        None
                    }
                }
            }
            _ => None,
        };
        l1.store(value);
        let Some(tier) = tier else { return };
        match (after, frame) {
            (After::Store { key, .. }, Some(frame)) => {
                if tier.store(&key, &frame, cache.l1.ttl_ms()) {
                    cache.counters.stores.fetch_add(1, Relaxed);
                } else {
                    cache.counters.errors.fetch_add(1, Relaxed);
                }
            }
            (After::StartGenerations, _) => tier.start_generations(&cache.clock),
            _ => {}
        }
    }
}

/// The cache of one `#[cached_query(redis)]` function, held in a `static`
/// and built on the first call; its value type is given at the first
/// [`get`](LazyRemoteCache::get), as for [`crate::registry::LazyCache`].
pub struct LazyRemoteCache<K> {
    spec: CacheSpec,
    remote: RemoteSpec,
    cell: OnceLock<Box<dyn Any + Send + Sync>>,
    _key: PhantomData<fn() -> K>,
}

impl<K> LazyRemoteCache<K> {
    /// A cache that will be built from `spec` on first use.
    pub const fn new(spec: CacheSpec, remote: RemoteSpec) -> Self {
        LazyRemoteCache {
            spec,
            remote,
            cell: OnceLock::new(),
            _key: PhantomData,
        }
    }
}

impl<K> LazyRemoteCache<K>
where
    K: Eq + Send + Sync + RemoteKey + 'static,
{
    /// The cache, built and registered on the first call.
    ///
    /// # Panics
    ///
    /// If called with two value types for one static, which the macro never
    /// does (one function, one output type).
    #[inline]
    pub fn get<V: CacheValue + RemoteValue>(&'static self) -> &'static RemoteCache<K, V> {
        let cache: &'static (dyn Any + Send + Sync) = match self.cell.get() {
            Some(cache) => &**cache,
            None => self.init::<V>(),
        };
        cache
            .downcast_ref::<RemoteCache<K, V>>()
            .expect("one value type per cached function")
    }

    #[cold]
    fn init<V: CacheValue + RemoteValue>(&'static self) -> &'static (dyn Any + Send + Sync) {
        let mut built = false;
        let cache = self.cell.get_or_init(|| {
            built = true;
            Box::new(RemoteCache::<K, V>::new(&self.spec, self.remote))
        });
        if built {
            tracing::debug!(function = self.spec.function, tables = ?self.spec.tables, "cache created, with Redis");
            if let Some(cache) = cache.downcast_ref::<RemoteCache<K, V>>() {
                registry::register(cache);
            }
        }
        &**cache
    }
}

impl<K, V> CacheHandle for RemoteCache<K, V>
where
    K: Eq + Send + Sync + RemoteKey + 'static,
    V: CacheValue + RemoteValue,
{
    fn stats(&self) -> Option<CacheStats> {
        Some(RemoteCache::stats(self))
    }

    fn clear(&self) {
        self.l1.clear();
    }
}

/// The output is a `Result`: its `Ok` value goes to L1 and Redis (see
/// [`crate::keys::Output`]).
pub trait RemoteResultOutput {
    /// What is stored.
    type Value;
    /// The function's L1+L2 cache, its value type this output's.
    fn dbkit_remote_cache<K>(
        &self,
        lazy: &'static LazyRemoteCache<K>,
    ) -> &'static RemoteCache<K, Self::Value>
    where
        K: Eq + Send + Sync + RemoteKey + 'static,
        Self::Value: CacheValue + RemoteValue;
}

impl<T, E> RemoteResultOutput for &Output<Result<T, E>> {
    type Value = T;

    #[inline]
    fn dbkit_remote_cache<K>(&self, lazy: &'static LazyRemoteCache<K>) -> &'static RemoteCache<K, T>
    where
        K: Eq + Send + Sync + RemoteKey + 'static,
        T: CacheValue + RemoteValue,
    {
        lazy.get::<T>()
    }
}

/// The output is anything but a `Result`: stored whole in L1 and Redis.
pub trait RemoteValueOutput {
    /// What is stored.
    type Value;
    /// The function's L1+L2 cache, its value type this output's.
    fn dbkit_remote_cache<K>(
        &self,
        lazy: &'static LazyRemoteCache<K>,
    ) -> &'static RemoteCache<K, Self::Value>
    where
        K: Eq + Send + Sync + RemoteKey + 'static,
        Self::Value: CacheValue + RemoteValue;
}

impl<R> RemoteValueOutput for Output<R> {
    type Value = R;

    #[inline]
    fn dbkit_remote_cache<K>(&self, lazy: &'static LazyRemoteCache<K>) -> &'static RemoteCache<K, R>
    where
        K: Eq + Send + Sync + RemoteKey + 'static,
        R: CacheValue + RemoteValue,
    {
        lazy.get::<R>()
    }
}
