//! Bytes per cached entry, measured with a counting allocator: the heap a
//! cache holds after being filled to its bound with the shared workload (key
//! `(u64, String)`, ~100-byte value), at 10 000 and at 100 000 entries, divided by the entries, for dbkit and
//! for the alternatives. The key and value's own bytes (inline sizes plus
//! their strings' heap) are subtracted to give each cache's overhead.
//! Bytes are those requested from the allocator; malloc's own bookkeeping
//! per allocation comes on top for every cache alike.
//!
//! Run: `cargo bench --bench memory` (prints a table; nothing is timed).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers every call to the system allocator unchanged and only
// counts the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A bound of 100 000, beside the shared `CAPACITY` of 10 000: hash tables
/// round their buckets up to a power of two, so what an entry costs depends
/// on the bound.
const LARGE: usize = 100_000;

#[dbkit::cached_query(ttl = 300, tables = "bench_memory", max_entries = 100_000)]
fn dbkit_large(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

#[cached::cached(
    max_size = 100_000,
    ttl = 300,
    key = "(u64, String)",
    convert = r#"{ (id, name.to_owned()) }"#
)]
fn cached_large(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

/// Heap bytes `fill` leaves allocated, per entry it reports holding.
fn per_entry(names: &[String], fill: impl FnOnce(&[String]) -> usize) -> f64 {
    let before = LIVE.load(Ordering::Relaxed);
    let held = fill(names);
    let after = LIVE.load(Ordering::Relaxed);
    (after - before) as f64 / held as f64
}

/// The key and value's own bytes per entry, whoever stores them.
fn own_bytes(names: &[String]) -> f64 {
    let total: usize = names
        .iter()
        .map(|n| {
            let key_heap = n.len(); // the key's String, built to fit
            let value_heap = format!("{n:-<72}").capacity();
            std::mem::size_of::<(u64, String)>()
                + key_heap
                + std::mem::size_of::<Profile>()
                + value_heap
        })
        .sum();
    total as f64 / names.len() as f64
}

/// Each cache filled to `entries`: its label and bytes per entry held.
fn measure(
    entries: usize,
    dbkit_fn: (fn(u64, &str) -> Profile, &str),
    cached_fn: fn(u64, &str) -> Profile,
) -> Vec<(&'static str, f64)> {
    let names = names(entries as u64);
    let (dbkit_call, dbkit_path) = dbkit_fn;
    let dbkit = per_entry(&names, |names| {
        for (i, n) in names.iter().enumerate() {
            dbkit_call(i as u64, n);
        }
        // Each shard holds its share of `max_entries`: a shard that hashing
        // gives more than its share evicts, so slightly fewer stay.
        let held = dbkit::cache_stats()
            .iter()
            .find(|s| s.function.ends_with(dbkit_path))
            .map_or(0, |s| s.entries);
        assert!(held > entries * 98 / 100, "dbkit holds {held} of {entries}");
        held
    });
    let cached = per_entry(&names, |names| {
        for (i, n) in names.iter().enumerate() {
            cached_fn(i as u64, n);
        }
        names.len()
    });
    let mut keep_moka = None;
    let moka = per_entry(&names, |names| {
        let cache = moka::sync::Cache::builder()
            .max_capacity(entries as u64)
            .time_to_live(TTL)
            .build();
        for (i, n) in names.iter().enumerate() {
            cache.insert((i as u64, n.clone()), load_profile(i as u64, n));
        }
        cache.run_pending_tasks();
        let held = cache.entry_count() as usize;
        keep_moka = Some(cache);
        held
    });
    let mut keep_lru = None;
    let lru = per_entry(&names, |names| {
        let mut cache = lru::LruCache::new(std::num::NonZeroUsize::new(entries).unwrap());
        for (i, n) in names.iter().enumerate() {
            cache.put((i as u64, n.clone()), load_profile(i as u64, n));
        }
        let held = cache.len();
        keep_lru = Some(cache);
        held
    });
    let mut keep_map = None;
    let map = per_entry(&names, |names| {
        let mut map = std::collections::HashMap::with_capacity(entries);
        for (i, n) in names.iter().enumerate() {
            map.insert((i as u64, n.clone()), load_profile(i as u64, n));
        }
        let held = map.len();
        keep_map = Some(map);
        held
    });
    let own = own_bytes(&names);
    vec![
        ("key + value themselves", own),
        ("dbkit #[cached_query]", dbkit),
        ("cached #[cached(max_size, ttl)]", cached),
        ("moka::sync::Cache", moka),
        ("lru::LruCache", lru),
        ("HashMap", map),
    ]
}

fn main() {
    let small = measure(
        CAPACITY,
        (dbkit_profile, "::dbkit_profile"),
        cached_ttl_profile,
    );
    let large = measure(LARGE, (dbkit_large, "::dbkit_large"), cached_large);
    println!("\nmemory: heap bytes per entry held, key (u64, String) and a ~100-byte value");
    println!("(in parentheses: beyond the key and value themselves)\n");
    println!("| cache | {CAPACITY} entries | {LARGE} entries |");
    println!("|---|---|---|");
    let (own_small, own_large) = (small[0].1, large[0].1);
    for ((label, a), (_, b)) in small.iter().zip(&large) {
        if *label == "key + value themselves" {
            println!("| {label} | {a:.1} | {b:.1} |");
        } else {
            println!(
                "| {label} | {a:.1} ({:.1}) | {b:.1} ({:.1}) |",
                a - own_small,
                b - own_large
            );
        }
    }
}
