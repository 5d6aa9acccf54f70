//! A hit builds no owned key and allocates nothing beyond cloning the value.
//! Its own test binary: it installs a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dbkit::cached_query;

struct CountingAllocator;

thread_local! {
    /// Allocations made by this thread (only the test's own thread is counted).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: forwards every call to the system allocator unchanged; counting
// touches only a const-initialized thread-local, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[derive(Clone, Hash, PartialEq, Eq)]
struct Page {
    number: u32,
    size: u32,
}

#[cached_query(ttl = 300, tables = "alloc_scores")]
fn score(id: u64, name: &str, tags: &[u32], page: &Page, label: String) -> i64 {
    id as i64
        + name.len() as i64
        + tags.iter().sum::<u32>() as i64
        + page.number as i64
        + label.len() as i64
}

/// One test, so no other thread contends for the shard lock: a contended
/// `parking_lot` lock allocates its parking table the first time a thread
/// parks, which is the lock's cost, not the hit's.
#[test]
fn hit_allocates_nothing_for_borrowed_arguments_and_miss_allocates_the_key() {
    let page = Page {
        number: 2,
        size: 20,
    };
    let label = String::from("x");

    let before_miss = allocations();
    let first = score(7, "ada", &[1, 2, 3], &page, label.clone());
    assert!(
        allocations() > before_miss + 1,
        "a miss stores an owned key"
    );

    let before = allocations();
    for _ in 0..1_000 {
        assert_eq!(score(7, "ada", &[1, 2, 3], &page, label.clone()), first);
    }
    // `label.clone()` is the caller's own allocation, one per call.
    assert_eq!(
        allocations() - before,
        1_000,
        "a hit added allocations of its own"
    );

    let stats = dbkit::cache_stats();
    let s = stats
        .iter()
        .find(|s| s.function.ends_with("::score"))
        .expect("registered");
    assert_eq!((s.hits, s.misses), (1_000, 1));
}
