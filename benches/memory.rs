//! Bytes per cached entry, measured with a counting allocator: the heap a
//! cache holds after storing 100 000 entries of the shared workload (key
//! `(u64, String)`, ~100-byte value), divided by the entries, for dbkit and
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

const ENTRIES: u64 = 100_000;

#[dbkit::cached_query(ttl = 300, tables = "bench_memory", max_entries = 100_000)]
fn dbkit_entry(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

#[cached::cached(
    max_size = 100_000,
    ttl = 300,
    key = "(u64, String)",
    convert = r#"{ (id, name.to_owned()) }"#
)]
fn cached_entry(id: u64, name: &str) -> Profile {
    load_profile(id, name)
}

/// Heap bytes `fill` leaves allocated, per entry it reports holding.
fn per_entry(fill: impl FnOnce(&[String]) -> usize) -> f64 {
    let names = names(ENTRIES);
    let before = LIVE.load(Ordering::Relaxed);
    let held = fill(&names);
    let after = LIVE.load(Ordering::Relaxed);
    (after - before) as f64 / held as f64
}

fn main() {
    // What the key and value are, whoever stores them.
    let names = names(ENTRIES);
    let own: f64 = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let value = load_profile(i as u64, n);
            let key_heap = n.len(); // the key's String, built to fit
            let value_heap = format!("{n:-<72}").capacity();
            drop(value);
            (std::mem::size_of::<(u64, String)>()
                + key_heap
                + std::mem::size_of::<Profile>()
                + value_heap) as f64
        })
        .sum::<f64>()
        / ENTRIES as f64;
    drop(names);

    let dbkit = per_entry(|names| {
        for (i, n) in names.iter().enumerate() {
            dbkit_entry(i as u64, n);
        }
        // Each of its shards holds its share of `max_entries`: a shard
        // that hashing gives more than its share evicts, so slightly fewer
        // than 100 000 stay.
        let held: usize = dbkit::cache_stats().iter().map(|s| s.entries).sum();
        assert!(held as u64 > ENTRIES * 99 / 100, "dbkit holds {held}");
        held
    });
    let cached = per_entry(|names| {
        for (i, n) in names.iter().enumerate() {
            cached_entry(i as u64, n);
        }
        names.len()
    });
    let mut keep_moka = None;
    let moka = per_entry(|names| {
        let cache = moka::sync::Cache::builder()
            .max_capacity(ENTRIES)
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
    let lru = per_entry(|names| {
        let mut cache = lru::LruCache::new(std::num::NonZeroUsize::new(ENTRIES as usize).unwrap());
        for (i, n) in names.iter().enumerate() {
            cache.put((i as u64, n.clone()), load_profile(i as u64, n));
        }
        let held = cache.len();
        keep_lru = Some(cache);
        held
    });
    let mut keep_map = None;
    let map = per_entry(|names| {
        let mut map = std::collections::HashMap::with_capacity(ENTRIES as usize);
        for (i, n) in names.iter().enumerate() {
            map.insert((i as u64, n.clone()), load_profile(i as u64, n));
        }
        let held = map.len();
        keep_map = Some(map);
        held
    });

    println!("\nmemory: heap bytes per entry, {ENTRIES} entries of key (u64, String) and a ~100-byte value");
    println!("key + value themselves: {own:.1} bytes\n");
    println!("| cache | bytes per entry | overhead beyond key and value |");
    println!("|---|---|---|");
    for (label, bytes) in [
        ("dbkit #[cached_query]", dbkit),
        ("cached #[cached(max_size, ttl)]", cached),
        ("moka::sync::Cache", moka),
        ("lru::LruCache", lru),
        ("HashMap", map),
    ] {
        println!("| {label} | {bytes:.1} | {:.1} |", bytes - own);
    }
    drop((keep_moka, keep_lru, keep_map));
}
