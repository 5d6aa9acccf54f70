//! A cache hit, side by side with what a user would pick instead, in one
//! run: the `cached` crate (LRU, and LRU with TTL), `moka::sync::Cache`, a
//! hand-written `lru::LruCache` behind a `parking_lot::Mutex`, and the floor,
//! a `HashMap` read under an `RwLock` with ready-made keys.
//!
//! Workload in `common`: key `(u64, String)` from `(id, &str)` arguments,
//! value a ~100-byte struct, 1 000 warm keys visited in turn, value cloned
//! out. The dbkit hit also checks the entry's TTL and its table's freshness,
//! and, given a connection, asks it whether it is inside a transaction.
//!
//! Run: `cargo bench --bench hit`.

mod common;

use std::hint::black_box;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};

fn hit(c: &mut Criterion) {
    let names = names(KEYS);
    let keys: Vec<(u64, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u64, n.clone()))
        .collect();
    let mut conn = instrumented_connection();
    let moka = moka_cache();
    let lru = lru_cache();
    let map = hash_map();
    for (id, name) in &keys {
        dbkit_profile(*id, name);
        dbkit_profile_on(&mut conn, *id, name).unwrap();
        cached_lru_profile(*id, name);
        cached_ttl_profile(*id, name);
        moka.insert((*id, name.clone()), load_profile(*id, name));
        lru.lock().put((*id, name.clone()), load_profile(*id, name));
        map.write()
            .insert((*id, name.clone()), load_profile(*id, name));
    }

    let mut group = c.benchmark_group("hit");
    let mut i = 0u64;
    let mut next = || {
        i = (i + 1) % KEYS;
        (black_box(i), black_box(names[i as usize].as_str()))
    };
    group.bench_function("dbkit #[cached_query]", |b| {
        b.iter(|| {
            let (id, name) = next();
            black_box(dbkit_profile(id, name))
        })
    });
    group.bench_function("dbkit #[cached_query], given a connection", |b| {
        b.iter(|| {
            let (id, name) = next();
            black_box(dbkit_profile_on(&mut conn, id, name).unwrap())
        })
    });
    group.bench_function("cached #[cached(max_size)]", |b| {
        b.iter(|| {
            let (id, name) = next();
            black_box(cached_lru_profile(id, name))
        })
    });
    group.bench_function("cached #[cached(max_size, ttl)]", |b| {
        b.iter(|| {
            let (id, name) = next();
            black_box(cached_ttl_profile(id, name))
        })
    });
    group.bench_function("moka::sync::Cache", |b| {
        b.iter(|| {
            let (id, name) = next();
            black_box(moka.get(&(id, name.to_owned())))
        })
    });
    group.bench_function("lru::LruCache + Mutex", |b| {
        b.iter(|| {
            let (id, name) = next();
            black_box(lru.lock().get(&(id, name.to_owned())).cloned())
        })
    });
    // Floors: ready-made keys, so the lookup allocates nothing either.
    // dbkit's distance to these is the price of its TTL and freshness checks
    // and of hashing the arguments.
    group.bench_function("lru::LruCache + Mutex, key prebuilt", |b| {
        b.iter(|| {
            let (id, _) = next();
            black_box(lru.lock().get(&keys[id as usize]).cloned())
        })
    });
    group.bench_function("HashMap + RwLock read, key prebuilt", |b| {
        b.iter(|| {
            let (id, _) = next();
            black_box(map.read().get(&keys[id as usize]).cloned())
        })
    });
    group.finish();

    let stats = dbkit::cache_stats();
    let misses: u64 = stats.iter().map(|s| s.misses).sum();
    assert_eq!(misses, KEYS, "every measured dbkit call was a hit");
}

criterion_group!(benches, hit);
criterion_main!(benches);
