//! A cache hit, side by side with what a user would write by hand.
//!
//! Same workload for both: key `(u64, String)` built from `(id, &str)`
//! arguments, value a ~100-byte struct holding a `String`, 1 000 warm keys
//! visited in turn. The dbkit hit also checks the entry's TTL and the
//! freshness of its table; the bare LRU checks nothing. A third variant gives
//! the bare LRU its keys ready-made: the floor of a mutex-guarded LRU hit.
//!
//! Run: `cargo bench --bench hit`.

use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{criterion_group, criterion_main, Criterion};
use dbkit::cached_query;
use lru::LruCache;
use parking_lot::Mutex;

const KEYS: u64 = 1_000;

#[derive(Clone)]
#[allow(dead_code)] // fields are only carried, as a real row would be
struct Profile {
    id: u64,
    name: String,
    karma: i64,
    flags: [u8; 16],
}

fn load_profile(id: u64, name: &str) -> Profile {
    Profile {
        id,
        // ~72 bytes of heap text + the struct itself: ~100 bytes to clone.
        name: format!("{name:-<72}"),
        karma: id as i64 * 7,
        flags: [1; 16],
    }
}

#[cached_query(ttl = 300, tables = "bench_profiles")]
fn profile(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

fn names() -> Vec<String> {
    (0..KEYS).map(|i| format!("user-{i}")).collect()
}

fn hit(c: &mut Criterion) {
    let names = names();
    let mut group = c.benchmark_group("hit");

    for (i, name) in names.iter().enumerate() {
        profile(i as u64, name);
    }
    let mut i = 0u64;
    group.bench_function("dbkit #[cached_query]", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(profile(black_box(i), black_box(&names[i as usize])))
        })
    });

    let lru: Mutex<LruCache<(u64, String), Profile>> =
        Mutex::new(LruCache::new(NonZeroUsize::new(10_000).unwrap()));
    for (i, name) in names.iter().enumerate() {
        lru.lock()
            .put((i as u64, name.clone()), load_profile(i as u64, name));
    }
    let mut i = 0u64;
    group.bench_function("lru::LruCache + parking_lot::Mutex", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            let (id, name) = (black_box(i), black_box(&names[i as usize]));
            let key = (id, name.to_owned());
            black_box(lru.lock().get(&key).cloned())
        })
    });

    // The floor: the same LRU with keys built before the loop, so the lookup
    // allocates nothing either. dbkit's distance to this is the price of its
    // TTL and table-freshness checks and of hashing the arguments.
    let keys: Vec<(u64, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u64, n.clone()))
        .collect();
    let mut i = 0u64;
    group.bench_function("lru::LruCache + parking_lot::Mutex, key prebuilt", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(lru.lock().get(black_box(&keys[i as usize])).cloned())
        })
    });
    group.finish();

    let stats = dbkit::cache_stats();
    let misses: u64 = stats.iter().map(|s| s.misses).sum();
    assert_eq!(misses, KEYS, "every measured dbkit call was a hit");
}

criterion_group!(benches, hit);
criterion_main!(benches);
