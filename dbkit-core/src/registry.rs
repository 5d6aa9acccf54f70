//! Every cached function of the process, registered on its first call, so
//! statistics and clearing reach them all.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

use crate::cache::{CacheSpec, QueryCache};
use crate::keys::CacheValue;
use crate::stats::CacheStats;

/// What the registry needs of a cached function.
pub trait CacheHandle: Send + Sync {
    /// The function's figures now.
    fn stats(&self) -> Option<CacheStats>;
    /// Drops every entry.
    fn clear(&self);
}

fn handles() -> &'static Mutex<Vec<&'static dyn CacheHandle>> {
    static HANDLES: Mutex<Vec<&'static dyn CacheHandle>> = Mutex::new(Vec::new());
    &HANDLES
}

/// Adds a cached function to the registry (on its first call).
pub(crate) fn register(handle: &'static dyn CacheHandle) {
    handles().lock().push(handle);
}

/// Figures of every cached function called so far, by function path.
pub fn cache_stats() -> Vec<CacheStats> {
    let handles: Vec<_> = handles().lock().clone();
    let mut all: Vec<CacheStats> = handles.iter().filter_map(|h| h.stats()).collect();
    all.sort_by(|a, b| a.function.cmp(&b.function));
    all
}

/// Drops every entry of every cached function (statistics are kept).
pub fn clear_all() {
    let handles: Vec<_> = handles().lock().clone();
    for h in handles {
        h.clear();
    }
}

static CACHING: AtomicBool = AtomicBool::new(true);

/// Turns caching on or off for every cached function of the process. Off,
/// every call runs its query and counts as a bypass; entries are kept (and
/// still invalidated by writes), so turning it back on serves only fresh
/// ones. For incidents and for measuring what the cache saves.
///
/// ```
/// dbkit_core::registry::set_caching(false);
/// assert!(!dbkit_core::registry::caching());
/// dbkit_core::registry::set_caching(true);
/// ```
pub fn set_caching(enabled: bool) {
    CACHING.store(enabled, Ordering::Relaxed);
}

/// Whether caching is on (see [`set_caching`]).
#[inline]
pub fn caching() -> bool {
    CACHING.load(Ordering::Relaxed)
}

/// The cache of one `#[cached_query]` function, held in a `static` and built
/// on the first call. The static names only the key type: the value type is
/// what the type checker finds for the function's output (the `Ok` type of
/// any `Result`, whatever its alias; see `dbkit_core::keys::Output`), given
/// at the first [`get`](LazyCache::get).
pub struct LazyCache<K> {
    spec: CacheSpec,
    cell: OnceLock<Box<dyn Any + Send + Sync>>,
    _key: PhantomData<fn() -> K>,
}

impl<K> LazyCache<K> {
    /// A cache that will be built from `spec` on first use.
    pub const fn new(spec: CacheSpec) -> Self {
        LazyCache {
            spec,
            cell: OnceLock::new(),
            _key: PhantomData,
        }
    }
}

impl<K: Eq + Send + Sync + 'static> LazyCache<K> {
    /// The cache, built and registered on the first call.
    ///
    /// # Panics
    ///
    /// If called with two value types for one static, which the macro never
    /// does (one function, one output type).
    #[inline]
    pub fn get<V: CacheValue>(&'static self) -> &'static QueryCache<K, V> {
        let cache: &'static (dyn Any + Send + Sync) = match self.cell.get() {
            Some(cache) => &**cache,
            None => self.init::<V>(),
        };
        cache
            .downcast_ref::<QueryCache<K, V>>()
            .expect("one value type per cached function")
    }

    #[cold]
    fn init<V: CacheValue>(&'static self) -> &'static (dyn Any + Send + Sync) {
        let mut built = false;
        let cache = self.cell.get_or_init(|| {
            built = true;
            Box::new(QueryCache::<K, V>::new(&self.spec))
        });
        if built {
            tracing::debug!(function = self.spec.function, tables = ?self.spec.tables, "cache created");
            if let Some(cache) = cache.downcast_ref::<QueryCache<K, V>>() {
                register(cache);
            }
        }
        &**cache
    }
}

impl<K, V> CacheHandle for QueryCache<K, V>
where
    K: Eq + Send + Sync + 'static,
    V: CacheValue,
{
    fn stats(&self) -> Option<CacheStats> {
        Some(QueryCache::stats(self))
    }

    fn clear(&self) {
        QueryCache::clear(self);
    }
}
