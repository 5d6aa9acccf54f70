//! Invalidating a table while its cached function holds 1 000, 100 000 and
//! 1 000 000 entries: dbkit bumps the table's clock and leaves entries to be
//! refused when met, so the cost must not grow with the cache. Side by side,
//! what a hand-written cache does to invalidate: clear its map.
//!
//! Run: `cargo bench --bench invalidate` (fills a million entries of each:
//! ~1 GB of memory, ~30 s of setup).

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use lru::LruCache;

const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];

#[derive(Clone)]
#[allow(dead_code)]
struct Row {
    id: u64,
    name: String,
}

fn row(id: u64) -> Row {
    Row {
        id,
        name: format!("row {id}"),
    }
}

#[dbkit::cached_query(ttl = 300, tables = "bench_invalidate", max_entries = 1_000_000)]
fn cached_row(id: u64) -> Row {
    row(id)
}

fn invalidate(c: &mut Criterion) {
    let mut group = c.benchmark_group("invalidate");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let mut filled = 0;
    for size in SIZES {
        // Fill with fresh entries (earlier ones are stale after the previous
        // size's invalidations, and stay held until met or evicted).
        for id in filled..size {
            cached_row(id);
        }
        filled = size;
        let held: usize = dbkit::cache_stats()
            .iter()
            .find(|s| s.function.ends_with("cached_row"))
            .map_or(0, |s| s.entries);
        // At the bound, shards that hashing gives more than their share
        // have evicted a few.
        assert!(
            held as u64 >= size * 99 / 100,
            "{held} entries held for {size}"
        );
        group.bench_function(format!("dbkit invalidate_table, {size} entries"), |b| {
            b.iter(|| dbkit::invalidate_table(black_box("bench_invalidate")))
        });

        // A hand-written cache of the same entries, emptied to invalidate:
        // the setup rebuilds it, only the clear is timed.
        group.bench_function(format!("LruCache::clear, {size} entries"), |b| {
            b.iter_batched_ref(
                || {
                    let mut lru = LruCache::new(NonZeroUsize::new(size as usize).unwrap());
                    for id in 0..size {
                        lru.put(id, row(id));
                    }
                    lru
                },
                |lru| lru.clear(),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = invalidate
}
criterion_main!(benches);
