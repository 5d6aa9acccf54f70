//! Behaviour of the L1 cache on its own, without macros or a database.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use dbkit_core::cache::{Access, CacheSpec, QueryCache};
use dbkit_core::tables;

type Cache = QueryCache<(u64, String), String>;

fn cache(table: &'static str, max_entries: usize, single_flight: bool) -> Cache {
    let tables: &'static [&'static str] = Box::leak(Box::new([table]));
    QueryCache::new(&CacheSpec {
        max_entries,
        single_flight,
        ..CacheSpec::new("tests::cache", tables, Duration::from_secs(300))
    })
}

/// One call: the value from the cache, or `compute` run and stored.
fn call(c: &Cache, id: u64, name: &str, compute: impl FnOnce() -> String) -> (String, bool) {
    match c.get_or_begin(
        Access::Full,
        &(&id, &name),
        |k| k.0 == id && k.1 == name,
        || (id, name.to_owned()),
    ) {
        Ok(v) => (v, true),
        Err(ticket) => {
            let v = compute();
            ticket.store(v.clone());
            (v, false)
        }
    }
}

#[test]
fn second_call_hits_and_other_arguments_miss() {
    let c = cache("c_hits", 100, true);
    assert_eq!(call(&c, 1, "a", || "one".into()), ("one".into(), false));
    assert_eq!(call(&c, 1, "a", || unreachable!()), ("one".into(), true));
    assert_eq!(call(&c, 1, "b", || "other".into()), ("other".into(), false));
    assert_eq!(call(&c, 2, "a", || "two".into()), ("two".into(), false));
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.stores, s.entries), (1, 3, 3, 3));
}

#[test]
fn invalidating_a_dependency_refuses_the_entry() {
    let c = cache("c_dep", 100, true);
    call(&c, 1, "a", || "old".into());
    tables::invalidate_table("c_unrelated");
    assert!(
        call(&c, 1, "a", || unreachable!()).1,
        "unrelated table kept the entry"
    );
    tables::invalidate_table("c_dep");
    assert_eq!(call(&c, 1, "a", || "new".into()), ("new".into(), false));
    assert_eq!(c.stats().stale_rejections, 1);
}

#[test]
fn write_during_query_is_not_stored() {
    let c = cache("c_race", 100, true);
    let (v, hit) = call(&c, 7, "x", || {
        // The write commits while the query runs.
        tables::invalidate_table("c_race");
        "read before the write".into()
    });
    assert!(!hit);
    assert_eq!(v, "read before the write");
    assert_eq!(call(&c, 7, "x", || "fresh".into()), ("fresh".into(), false));
    let s = c.stats();
    assert_eq!(s.stores, 1, "only the fresh result was stored");
}

#[test]
fn write_in_flight_refuses_hits_until_released() {
    let c = cache("c_flight_mark", 100, true);
    call(&c, 1, "a", || "v".into());
    let mark = tables::begin_write(&[tables::table("c_flight_mark")]);
    assert!(!call(&c, 1, "a", || "during".into()).1);
    mark.commit();
    assert_eq!(call(&c, 1, "a", || "after".into()), ("after".into(), false));
}

#[test]
fn lru_bound_is_respected_and_evictions_counted() {
    let c = cache("c_lru", 3, true);
    for id in 0..10 {
        call(&c, id, "k", || format!("v{id}"));
    }
    let s = c.stats();
    assert_eq!(s.entries, 3);
    assert_eq!(s.evictions, 7);
    // The most recent three survive.
    assert!(call(&c, 9, "k", || unreachable!()).1);
    assert!(!call(&c, 0, "k", || "again".into()).1);
}

#[test]
fn failed_query_stores_nothing_and_next_caller_runs_it() {
    let c = cache("c_fail", 100, true);
    match c.get_or_begin(
        Access::Full,
        &(&1u64, &"a"),
        |_| true,
        || (1, "a".to_owned()),
    ) {
        Ok(_) => panic!("empty cache"),
        Err(ticket) => drop(ticket), // the query returned Err
    }
    assert!(!call(&c, 1, "a", || "ok".into()).1);
    assert_eq!(c.stats().stores, 1);
}

#[test]
fn single_flight_runs_one_query_for_concurrent_misses() {
    let c: &'static Cache = Box::leak(Box::new(cache("c_single", 100, true)));
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (runs, start) = (runs.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                call(c, 5, "same", || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(50)); // keep the flight open
                    "v".into()
                })
                .0
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "v");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let s = c.stats();
    assert_eq!(s.misses, 1);
    assert_eq!(s.hits, 7);
}

#[test]
fn without_single_flight_each_miss_runs_its_query() {
    let c: &'static Cache = Box::leak(Box::new(cache("c_no_single", 100, false)));
    let runs = Arc::new(AtomicUsize::new(0));
    let inside = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (runs, inside) = (runs.clone(), inside.clone());
            thread::spawn(move || {
                call(c, 5, "same", || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    inside.wait(); // both are inside the query at once
                    "v".into()
                })
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn reentrant_miss_of_same_key_runs_uncached_instead_of_deadlocking() {
    let c = cache("c_reentrant", 100, true);
    let (v, _) = call(&c, 1, "a", || call(&c, 1, "a", || "inner".into()).0);
    assert_eq!(v, "inner");
    assert_eq!(c.stats().bypasses, 1);
}

#[test]
fn panicking_leader_releases_waiters() {
    let c: &'static Cache = Box::leak(Box::new(cache("c_panic", 100, true)));
    let r = thread::spawn(move || call(c, 1, "a", || panic!("query panicked"))).join();
    assert!(r.is_err());
    assert_eq!(call(c, 1, "a", || "after".into()), ("after".into(), false));
}
