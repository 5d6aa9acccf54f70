//! The concurrent freshness checker (Contract 1): writer threads commit
//! ever-increasing values, reader threads read them through `#[cached_query]`,
//! and every read is checked against the last value committed before the
//! read began. Values only grow, so a read below that floor is a stale read.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use diesel::prelude::*;

/// A SQLite file (WAL) with `keys` counters at 0, and how the checker
/// connects to it (instrumented, commits without fsync) and writes them.
pub fn sqlite_counters(keys: i32) -> super::TempDb {
    let mut schema = String::from(
        "PRAGMA journal_mode = WAL; CREATE TABLE fresh_counters (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);",
    );
    for k in 0..keys {
        schema.push_str(&format!("INSERT INTO fresh_counters VALUES ({k}, 0);"));
    }
    super::TempDb::new(&schema)
}

/// An instrumented connection to a [`sqlite_counters`] file; a commit
/// without fsync, so writes are short, as on a real server.
pub fn sqlite_connect(db: &super::TempDb) -> diesel::SqliteConnection {
    use diesel::connection::SimpleConnection;
    let (mut conn, _) = db.connect_instrumented(dbkit::Instrument::new());
    conn.batch_execute("PRAGMA synchronous = OFF").unwrap();
    conn
}

diesel::table! {
    /// The counters of [`sqlite_counters`].
    fresh_counters (id) {
        id -> Integer,
        value -> BigInt,
    }
}

/// Sets counter `key` of a [`sqlite_counters`] file to `value`.
pub fn sqlite_write(conn: &mut diesel::SqliteConnection, key: i32, value: i64) {
    diesel::update(fresh_counters::table.find(key))
        .set(fresh_counters::value.eq(value))
        .execute(conn)
        .expect("write");
}

/// Writes committed during the reads, at the least.
pub const MIN_WRITES: u64 = 200;

/// What one run saw.
#[derive(Debug)]
pub struct Outcome {
    pub reads: u64,
    pub violations: u64,
    pub writes: u64,
    pub first_violation: Option<String>,
}

/// Runs `writers` threads that each own `keys / writers` keys and commit
/// increasing values with `write(conn, key, value)`, and `readers` threads
/// that call `read(conn, key)` until `reads_wanted` reads and
/// [`MIN_WRITES`] writes are done.
pub fn run<C, W, R>(
    keys: i32,
    writers: usize,
    readers: usize,
    reads_wanted: u64,
    connect: impl Fn() -> C + Sync,
    write: W,
    read: R,
) -> Outcome
where
    W: Fn(&mut C, i32, i64) + Sync,
    R: Fn(&mut C, i32) -> i64 + Sync,
{
    let committed: Arc<Vec<AtomicI64>> = Arc::new((0..keys).map(|_| AtomicI64::new(0)).collect());
    let stop = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let writes = AtomicU64::new(0);
    let violations = AtomicU64::new(0);
    let first_violation = std::sync::Mutex::new(None);
    thread::scope(|s| {
        for w in 0..writers {
            let (committed, stop, writes, connect, write) =
                (&committed, &stop, &writes, &connect, &write);
            s.spawn(move || {
                let mut conn = connect();
                let mut value = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    value += 1;
                    for key in (0..keys).filter(|k| *k as usize % writers == w) {
                        write(&mut conn, key, value);
                        // The write has committed: from now on no read that
                        // begins may return less.
                        committed[key as usize].store(value, Ordering::SeqCst);
                        writes.fetch_add(1, Ordering::Relaxed);
                        // Pace the writes so entries live long enough to be
                        // served between them (hits and invalidations mix).
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        }
        for r in 0..readers {
            let (committed, stop, reads, writes, violations, first_violation, connect, read) = (
                &committed,
                &stop,
                &reads,
                &writes,
                &violations,
                &first_violation,
                &connect,
                &read,
            );
            s.spawn(move || {
                let mut conn = connect();
                let mut key = r as i32 % keys;
                // Until enough reads *and* enough writes among them: how many
                // writes fit in the reads depends on the machine's load.
                while reads.load(Ordering::Relaxed) < reads_wanted
                    || writes.load(Ordering::Relaxed) < MIN_WRITES
                {
                    reads.fetch_add(1, Ordering::Relaxed);
                    key = (key + 1) % keys;
                    let floor = committed[key as usize].load(Ordering::SeqCst);
                    let seen = read(&mut conn, key);
                    if seen < floor {
                        violations.fetch_add(1, Ordering::Relaxed);
                        first_violation.lock().unwrap().get_or_insert_with(|| {
                            format!("key {key}: read {seen} after {floor} was committed")
                        });
                    }
                }
                stop.store(true, Ordering::Relaxed);
            });
        }
    });
    Outcome {
        reads: reads.load(Ordering::Relaxed),
        violations: violations.load(Ordering::Relaxed),
        writes: writes.load(Ordering::Relaxed),
        first_violation: first_violation.into_inner().unwrap(),
    }
}

/// What every freshness run must show: no stale read over at least 100 000
/// reads, writers committing meanwhile, and a cache that both served reads
/// and refused invalidated entries (else nothing was tested).
pub fn assert_fresh(backend: &str, outcome: &Outcome, stats: &dbkit::CacheStats) {
    eprintln!(
        "{backend} freshness: {outcome:?}; hits {} misses {} stale {}",
        stats.hits, stats.misses, stats.stale_rejections
    );
    assert_eq!(
        outcome.violations, 0,
        "{backend}: {:?}",
        outcome.first_violation
    );
    assert!(outcome.reads >= 100_000, "{backend}: too few reads");
    assert!(
        outcome.writes >= MIN_WRITES,
        "{backend}: writers kept committing during the reads"
    );
    assert!(stats.hits > 1_000, "{backend}: the cache served reads");
    assert!(
        stats.stale_rejections > 0,
        "{backend}: writes invalidated cached entries"
    );
}
