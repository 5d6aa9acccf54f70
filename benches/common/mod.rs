//! The workload every cache benchmark shares, so their figures compare:
//! key `(u64, String)` built from `(id, &str)` arguments, value a ~100-byte
//! struct holding a `String`, 1 000 warm keys.
#![allow(dead_code)] // each benchmark uses part of it

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use lru::LruCache;
use parking_lot::{Mutex, RwLock};

pub const KEYS: u64 = 1_000;
/// The bound every bounded cache gets.
pub const CAPACITY: usize = 10_000;
pub const TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
#[allow(dead_code)] // fields are only carried, as a real row would be
pub struct Profile {
    id: u64,
    name: String,
    karma: i64,
    flags: [u8; 16],
}

/// What the "query" returns.
pub fn load_profile(id: u64, name: &str) -> Profile {
    Profile {
        id,
        // ~72 bytes of heap text + the struct itself: ~100 bytes to clone.
        name: format!("{name:-<72}"),
        karma: id as i64 * 7,
        flags: [1; 16],
    }
}

pub fn names(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("user-{i}")).collect()
}

/// dbkit: the function a user writes.
#[dbkit::cached_query(ttl = 300, tables = "bench_profiles")]
pub fn dbkit_profile(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

/// The same function as a service writes it: it is handed a connection
/// (instrumented, outside any transaction), which a hit asks whether it is
/// inside a transaction, and which the query would use.
#[dbkit::cached_query(ttl = 300, tables = "bench_profiles")]
pub fn dbkit_profile_on(
    conn: &mut diesel::SqliteConnection,
    id: u64,
    name: &str,
) -> diesel::QueryResult<Profile> {
    let _ = conn;
    Ok(load_profile(id, name))
}

/// An instrumented in-memory SQLite connection for [`dbkit_profile_on`].
pub fn instrumented_connection() -> diesel::SqliteConnection {
    use diesel::Connection;
    let mut conn = diesel::SqliteConnection::establish(":memory:").expect("in-memory SQLite");
    dbkit::instrument(&mut conn);
    conn
}

/// A second dbkit function, to put each thread on a cache of its own.
#[dbkit::cached_query(ttl = 300, tables = "bench_profiles")]
pub fn dbkit_profile_b(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

/// The `cached` crate, LRU-bounded: what its README suggests for this.
#[cached::cached(
    max_size = 10_000,
    key = "(u64, String)",
    convert = r#"{ (id, name.to_owned()) }"#
)]
pub fn cached_lru_profile(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

/// The `cached` crate, LRU-bounded with a TTL: the same guarantees as
/// dbkit's entries minus table freshness.
#[cached::cached(
    max_size = 10_000,
    ttl = 300,
    key = "(u64, String)",
    convert = r#"{ (id, name.to_owned()) }"#
)]
pub fn cached_ttl_profile(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

/// `moka::sync::Cache` with a capacity and a TTL.
pub fn moka_cache() -> moka::sync::Cache<(u64, String), Profile> {
    moka::sync::Cache::builder()
        .max_capacity(CAPACITY as u64)
        .time_to_live(TTL)
        .build()
}

/// What one writes by hand.
pub fn lru_cache() -> Mutex<LruCache<(u64, String), Profile>> {
    Mutex::new(LruCache::new(NonZeroUsize::new(CAPACITY).unwrap()))
}

/// The floor: a map read under a read lock, nothing evicted, nothing checked.
pub fn hash_map() -> RwLock<HashMap<(u64, String), Profile>> {
    RwLock::new(HashMap::with_capacity(CAPACITY))
}
