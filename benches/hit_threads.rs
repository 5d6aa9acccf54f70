//! Hit throughput on one thread and on two, side by side with the same
//! alternatives as `hit`: two threads on disjoint halves of the keys (what
//! sharding is for), and two threads on the same keys (both cores on the
//! same entries). Criterion reports elements per second: hits per second
//! summed over the threads. A control with no cache, only the clone each hit
//! ends with, shows how far two threads scale on the machine at all.
//!
//! Run: `cargo bench --bench hit_threads`.

mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Which keys each thread visits.
#[derive(Clone, Copy)]
enum Keys {
    /// One thread, all keys.
    Alone,
    /// Thread `t` of 2 visits its own half.
    Disjoint,
    /// Both threads visit all keys.
    Shared,
}

impl Keys {
    fn threads(self) -> usize {
        match self {
            Keys::Alone => 1,
            Keys::Disjoint | Keys::Shared => 2,
        }
    }

    fn range(self, thread: usize) -> (u64, u64) {
        match self {
            Keys::Alone | Keys::Shared => (0, KEYS),
            Keys::Disjoint => {
                let half = KEYS / 2;
                (thread as u64 * half, half)
            }
        }
    }

    fn label(self) -> &'static str {
        match self {
            Keys::Alone => "1 thread",
            Keys::Disjoint => "2 threads, disjoint keys",
            Keys::Shared => "2 threads, same keys",
        }
    }
}

/// One hit of one variant, given the key's arguments.
type Hit<'a> = &'a (dyn Fn(u64, &str) + Sync);

/// Each thread runs `iters` hits; returns the wall time of the slowest.
fn run(keys: Keys, iters: u64, names: &[String], hit: Hit<'_>) -> Duration {
    let threads = keys.threads();
    let start = Barrier::new(threads);
    let times: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                scope.spawn(move || {
                    let (first, len) = keys.range(t);
                    start.wait();
                    let began = Instant::now();
                    let mut i = 0;
                    for _ in 0..iters {
                        i = (i + 1) % len;
                        let id = first + i;
                        hit(black_box(id), black_box(&names[id as usize]));
                    }
                    began.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    times.into_iter().max().unwrap_or_default()
}

fn hit_threads(c: &mut Criterion) {
    let names = names(KEYS);
    let moka = moka_cache();
    let lru = lru_cache();
    let map = hash_map();
    for (i, name) in names.iter().enumerate() {
        let id = i as u64;
        dbkit_profile(id, name);
        cached_ttl_profile(id, name);
        moka.insert((id, name.clone()), load_profile(id, name));
        lru.lock().put((id, name.clone()), load_profile(id, name));
        map.write()
            .insert((id, name.clone()), load_profile(id, name));
    }
    let values: Vec<Profile> = names
        .iter()
        .enumerate()
        .map(|(i, n)| load_profile(i as u64, n))
        .collect();
    for (i, name) in names.iter().enumerate() {
        dbkit_profile_b(i as u64, name);
    }
    let variants: [(&str, Hit<'_>); 7] = [
        // The machine's own ceiling: the clone every hit ends with, and no
        // cache. No variant can scale better than this does.
        ("no cache: clone the value", &|id, _| {
            black_box(values[id as usize].clone());
        }),
        ("dbkit #[cached_query]", &|id, name| {
            black_box(dbkit_profile(id, name));
        }),
        // Disjoint keys then give each thread a cache of its own: what
        // is left of the cost of two threads is the machine's.
        (
            "dbkit, first half of the keys in another function",
            &|id, name| {
                if id < KEYS / 2 {
                    black_box(dbkit_profile(id, name));
                } else {
                    black_box(dbkit_profile_b(id, name));
                }
            },
        ),
        ("cached #[cached(max_size, ttl)]", &|id, name| {
            black_box(cached_ttl_profile(id, name));
        }),
        ("moka::sync::Cache", &|id, name| {
            black_box(moka.get(&(id, name.to_owned())));
        }),
        ("lru::LruCache + Mutex", &|id, name| {
            black_box(lru.lock().get(&(id, name.to_owned())).cloned());
        }),
        ("HashMap + RwLock read", &|id, name| {
            black_box(map.read().get(&(id, name.to_owned())).cloned());
        }),
    ];
    for keys in [Keys::Alone, Keys::Disjoint, Keys::Shared] {
        let mut group = c.benchmark_group(format!("hit-threads/{}", keys.label()));
        group.throughput(Throughput::Elements(keys.threads() as u64));
        for (label, hit) in variants {
            group.bench_function(label, |b| {
                b.iter_custom(|iters| run(keys, iters, &names, hit))
            });
        }
        group.finish();
    }
    let misses: u64 = dbkit::cache_stats().iter().map(|s| s.misses).sum();
    assert_eq!(misses, 2 * KEYS, "every measured dbkit call was a hit");
}

criterion_group!(benches, hit_threads);
criterion_main!(benches);
