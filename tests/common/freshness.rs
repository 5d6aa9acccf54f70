//! The concurrent freshness checker (Contract 1): writer threads commit
//! ever-increasing values, reader threads read them through `#[cached_query]`,
//! and every read is checked against the last value committed before the
//! read began. Values only grow, so a read below that floor is a stale read.
//!
//! [`run_faulted`] adds faults: besides plain writes the writers roll
//! transactions back, fail their commits, are refused a `BEGIN`, have the
//! database roll their transaction back on its own, write with long and split
//! raw batches and batches that fail half-way, and move their connection to
//! another thread mid-transaction; readers read from other threads too, and
//! from inside read transactions whose snapshot is older than the last commit.
//! Some reads are slow: their result reaches the cache a while after their
//! query ran ([`slow_reader_pause`]), the race a missing bump loses.
//! A value counts as committed only once its commit was seen to succeed; a
//! value whose transaction failed or rolled back is checked to have left the
//! old one in the database, and a reader that is ever served it (a result
//! that never committed) is a violation too.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

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

/// Times each kind of fault must have happened before a faulted run ends.
pub const MIN_EACH_FAULT: u64 = 100;

/// A faulted run that has not seen every fault by then gives up (and its
/// assertions say which fault is missing).
const FAULTED_RUN_CAP: Duration = Duration::from_secs(150);

/// What one run saw.
#[derive(Debug)]
pub struct Outcome {
    pub reads: u64,
    pub violations: u64,
    pub writes: u64,
    pub first_violation: Option<String>,
    /// What the faults of a [`run_faulted`] did (all 0 in a plain run).
    pub faults: FaultCounts,
    pub wall: Duration,
}

/// How often each fault happened in a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct FaultCounts {
    /// Transactions that wrote, read their own write and rolled back.
    pub rollbacks: u64,
    /// Transactions that wrote and whose commit failed (MariaDB: a
    /// statement failed and the transaction was rolled back).
    pub failed_commits: u64,
    /// `immediate_transaction`s refused with SQLITE_BUSY.
    pub busy_begins: u64,
    /// Transactions the database rolled back on its own, followed by a
    /// write that committed at once while diesel still took the
    /// transaction for open.
    pub implicit_rollbacks: u64,
    /// `BEGIN; UPDATE; SELECT 1 (x4); COMMIT` in one batch.
    pub long_batches: u64,
    /// `BEGIN; UPDATE` in one batch, a `COMMIT` later.
    pub split_batches: u64,
    /// `BEGIN; UPDATE; SELECT 1; <fails>; COMMIT[; SELECT 1]`: stopped
    /// before its COMMIT, then committed (SQLite, MySQL) or rolled back by a
    /// separate statement.
    pub failed_batches: u64,
    /// `BEGIN; UPDATE; COMMIT; SELECT 1; <fails>`: failed after its commit.
    pub fails_after_commit: u64,
    /// Reads and writes (some mid-transaction) run with the connection
    /// moved to another thread.
    pub moved_thread_ops: u64,
    /// Cached reads inside a read transaction (a snapshot).
    pub snapshot_reads: u64,
    /// Reads that paused between their query and their store.
    pub slow_reads: u64,
    /// Values written and never committed.
    pub aborted_values: u64,
}

/// How a backend injects the faults of a [`run_faulted`] run. Faulted runs
/// have two writers, each owning the keys of a counters table of its own
/// (key `k` lives in table `k % 2`): a table written by one writer only is
/// bumped by nothing else, so a write the library forgets to bump stays
/// visible instead of being covered by the other writer's next commit.
pub trait Faults<C: Connection>: Sync {
    /// Sets counter `key` to `value` with diesel's query builder.
    fn update(&self, conn: &mut C, key: i32, value: i64) -> QueryResult<usize>;

    /// The same as SQL text, for raw batches.
    fn update_sql(&self, key: i32, value: i64) -> String;

    /// Counter `key` as this connection sees it, not through the cache.
    fn read_direct(&self, conn: &mut C, key: i32) -> QueryResult<i64>;

    /// A statement that fails when it runs (a duplicate key), having
    /// changed nothing.
    fn failing_sql(&self) -> &'static str;

    /// Whether a failed statement leaves the transaction open with its
    /// earlier writes still pending (SQLite, MySQL), rather than aborted
    /// (PostgreSQL).
    fn failed_statement_keeps_transaction(&self) -> bool;

    /// Opens a read transaction whose snapshot its first read takes.
    fn begin_snapshot(&self) -> &'static str;

    /// Writes `value` to `key` in a transaction that fails to commit: its
    /// COMMIT fails (a deferred constraint), or, where the database has no
    /// deferred constraints, a statement fails and the transaction is
    /// rolled back. `raw`: with `batch_execute` texts, else in diesel's
    /// `transaction`. Leaves the connection outside any transaction and
    /// returns the failure.
    fn failing_commit(&self, conn: &mut C, key: i32, value: i64, raw: bool) -> QueryResult<()>;

    /// Whether [`end_implicitly`](Self::end_implicitly) can.
    fn ends_implicitly(&self) -> bool {
        false
    }

    /// Inside a transaction of diesel's that wrote, makes the database roll
    /// the transaction back on its own (SQLite's `INSERT OR ROLLBACK`, a
    /// MariaDB deadlock victim), `other` helping; `writer` says which rows
    /// of helper tables are this writer's. `true` when it did: the
    /// connection then runs outside any transaction, whatever diesel
    /// believes.
    fn end_implicitly(&self, conn: &mut C, other: &mut C, writer: usize) -> bool {
        let _ = (conn, other, writer);
        false
    }

    /// Whether [`busy_begin`](Self::busy_begin) can.
    fn busy_begins(&self) -> bool {
        false
    }

    /// SQLite: tries to write `value` to `key` in an
    /// `immediate_transaction` while `other` holds the write lock, without
    /// waiting for it (busy timeout 0); returns what the transaction did.
    fn busy_begin(&self, conn: &mut C, other: &mut C, key: i32, value: i64) -> QueryResult<()> {
        let _ = (conn, other, key, value);
        Ok(())
    }
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
    C: Connection,
    W: Fn(&mut C, i32, i64) + Sync,
    R: Fn(&mut C, i32) -> i64 + Sync,
{
    run_with(
        keys,
        writers,
        readers,
        reads_wanted,
        &connect,
        &write,
        &read,
        None,
    )
}

/// [`run`] with the faults of `faults` injected (see the module's
/// documentation and [`Faults`]): `writers` must be 2, and the run goes on
/// until every fault the backend has happened [`MIN_EACH_FAULT`] times.
/// Plain writes still go through `write`.
#[allow(clippy::too_many_arguments)]
pub fn run_faulted<C, W, R>(
    keys: i32,
    writers: usize,
    readers: usize,
    reads_wanted: u64,
    connect: impl Fn() -> C + Sync,
    write: W,
    read: R,
    faults: &dyn Faults<C>,
) -> Outcome
where
    C: Connection,
    W: Fn(&mut C, i32, i64) + Sync,
    R: Fn(&mut C, i32) -> i64 + Sync,
{
    assert_eq!(
        writers, 2,
        "a faulted run has one counters table per writer"
    );
    run_with(
        keys,
        writers,
        readers,
        reads_wanted,
        &connect,
        &write,
        &read,
        Some(faults),
    )
}

/// Fault counters, shared by the threads of a run.
#[derive(Clone, Copy)]
enum Kind {
    Rollback,
    FailedCommit,
    BusyBegin,
    ImplicitRollback,
    LongBatch,
    SplitBatch,
    FailedBatch,
    FailAfterCommit,
    MovedThread,
    SnapshotRead,
    SlowRead,
    Aborted,
}

const KINDS: usize = 12;

/// What the threads of a run share.
struct Shared {
    committed: Vec<AtomicI64>,
    /// Values written and never committed, by key.
    aborted: Mutex<Vec<(i32, i64)>>,
    stop: AtomicBool,
    /// A thread panicked: everyone stops.
    failed: AtomicBool,
    reads: AtomicU64,
    writes: AtomicU64,
    violations: AtomicU64,
    first_violation: Mutex<Option<String>>,
    counts: [AtomicU64; KINDS],
}

impl Shared {
    fn violation(&self, what: impl FnOnce() -> String) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        self.first_violation
            .lock()
            .unwrap()
            .get_or_insert_with(what);
    }

    fn count(&self, kind: Kind) {
        self.counts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn counted(&self, kind: Kind) -> u64 {
        self.counts[kind as usize].load(Ordering::Relaxed)
    }

    fn fault_counts(&self) -> FaultCounts {
        FaultCounts {
            rollbacks: self.counted(Kind::Rollback),
            failed_commits: self.counted(Kind::FailedCommit),
            busy_begins: self.counted(Kind::BusyBegin),
            implicit_rollbacks: self.counted(Kind::ImplicitRollback),
            long_batches: self.counted(Kind::LongBatch),
            split_batches: self.counted(Kind::SplitBatch),
            failed_batches: self.counted(Kind::FailedBatch),
            fails_after_commit: self.counted(Kind::FailAfterCommit),
            moved_thread_ops: self.counted(Kind::MovedThread),
            snapshot_reads: self.counted(Kind::SnapshotRead),
            slow_reads: self.counted(Kind::SlowRead),
            aborted_values: self.counted(Kind::Aborted),
        }
    }

    /// Every fault `faults` can inject happened often enough.
    fn faults_done<C: Connection>(&self, faults: &dyn Faults<C>) -> bool {
        let mut wanted = vec![
            Kind::Rollback,
            Kind::FailedCommit,
            Kind::LongBatch,
            Kind::SplitBatch,
            Kind::FailedBatch,
            Kind::FailAfterCommit,
            Kind::MovedThread,
            Kind::SnapshotRead,
            Kind::SlowRead,
        ];
        if faults.busy_begins() {
            wanted.push(Kind::BusyBegin);
        }
        if faults.ends_implicitly() {
            wanted.push(Kind::ImplicitRollback);
        }
        wanted.iter().all(|k| self.counted(*k) >= MIN_EACH_FAULT)
    }
}

/// Stops the run when the thread holding it panics, so the other threads
/// do not wait for reads or writes that will never come.
struct StopOnPanic<'a>(&'a Shared);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.failed.store(true, Ordering::SeqCst);
            self.0.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// A small deterministic random source (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % u64::from(n)) as u32
    }

    /// True one time in `n`.
    fn one_in(&mut self, n: u32) -> bool {
        self.below(n) == 0
    }
}

thread_local! {
    /// This thread's cached read is a slow one.
    static SLOW: Cell<bool> = const { Cell::new(false) };
}

/// How long a slow read's result takes to reach the cache after its query.
const SLOW_READ: Duration = Duration::from_millis(5);

/// To be called by the cached functions of a faulted run after their query:
/// a slow reader's result reaches the cache a while after the query read the
/// database (a large result, a slow network), so a write that commits in
/// between and is not bumped gets the old value stored (a bumped one gets it
/// refused). Without it that window is one query long.
pub fn slow_reader_pause() {
    if SLOW.with(Cell::get) {
        thread::sleep(SLOW_READ);
    }
}

/// `read(conn, key)` as a slow reader (see [`slow_reader_pause`]).
fn read_slowly<C>(read: &impl Fn(&mut C, i32) -> i64, conn: &mut C, key: i32) -> i64 {
    SLOW.with(|s| s.set(true));
    let value = read(conn, key);
    SLOW.with(|s| s.set(false));
    value
}

/// Runs `op` with the connection moved to another thread, as
/// `spawn_blocking` or a pool handing it to another worker would.
fn on_thread<C: Send, T: Send>(conn: &mut C, op: impl FnOnce(&mut C) -> T + Send) -> T {
    thread::scope(|s| match s.spawn(move || op(conn)).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

#[allow(clippy::too_many_arguments)]
fn run_with<C, W, R>(
    keys: i32,
    writers: usize,
    readers: usize,
    reads_wanted: u64,
    connect: &(impl Fn() -> C + Sync),
    write: &W,
    read: &R,
    faults: Option<&dyn Faults<C>>,
) -> Outcome
where
    C: Connection,
    W: Fn(&mut C, i32, i64) + Sync,
    R: Fn(&mut C, i32) -> i64 + Sync,
{
    let started = Instant::now();
    let shared = Shared {
        committed: (0..keys).map(|_| AtomicI64::new(0)).collect(),
        aborted: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        failed: AtomicBool::new(false),
        reads: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        violations: AtomicU64::new(0),
        first_violation: Mutex::new(None),
        counts: Default::default(),
    };
    let shared = &shared;
    let seen: Mutex<HashSet<(i32, i64)>> = Mutex::new(HashSet::new());
    thread::scope(|s| {
        for w in 0..writers {
            s.spawn(move || {
                let _stop = StopOnPanic(shared);
                let mut conn = connect();
                match faults {
                    None => plain_writer(shared, &mut conn, keys, writers, w, write),
                    Some(faults) => Writer {
                        shared,
                        faults,
                        connect,
                        write,
                        read,
                        w,
                        last: vec![0; keys as usize],
                        next: 0,
                        rng: Rng::new(w as u64 + 1),
                        other: None,
                    }
                    .run(&mut conn, keys, writers),
                }
            });
        }
        for r in 0..readers {
            let seen = &seen;
            s.spawn(move || {
                let _stop = StopOnPanic(shared);
                let mut conn = connect();
                let done = || {
                    shared.failed.load(Ordering::SeqCst)
                        || (shared.reads.load(Ordering::Relaxed) >= reads_wanted
                            && shared.writes.load(Ordering::Relaxed) >= MIN_WRITES
                            && faults.is_none_or(|f| {
                                shared.faults_done(f) || started.elapsed() > FAULTED_RUN_CAP
                            }))
                };
                match faults {
                    None => plain_reader(shared, &mut conn, keys, r, read, done),
                    Some(faults) => {
                        let mine = faulted_reader(shared, faults, &mut conn, keys, r, read, done);
                        seen.lock().unwrap().extend(mine);
                    }
                }
                shared.stop.store(true, Ordering::Relaxed);
            });
        }
    });
    // A value that never committed must never have been read by anyone.
    let seen = seen.into_inner().unwrap();
    for &(key, value) in shared.aborted.lock().unwrap().iter() {
        if seen.contains(&(key, value)) {
            shared.violation(|| {
                format!("key {key}: read {value}, written by a transaction that never committed")
            });
        }
    }
    let first_violation = shared.first_violation.lock().unwrap().take();
    Outcome {
        reads: shared.reads.load(Ordering::Relaxed),
        violations: shared.violations.load(Ordering::Relaxed),
        writes: shared.writes.load(Ordering::Relaxed),
        first_violation,
        faults: shared.fault_counts(),
        wall: started.elapsed(),
    }
}

fn plain_writer<C>(
    shared: &Shared,
    conn: &mut C,
    keys: i32,
    writers: usize,
    w: usize,
    write: &impl Fn(&mut C, i32, i64),
) {
    let mut value = 0i64;
    while !shared.stop.load(Ordering::Relaxed) {
        value += 1;
        for key in (0..keys).filter(|k| *k as usize % writers == w) {
            write(conn, key, value);
            // The write has committed: from now on no read that
            // begins may return less.
            shared.committed[key as usize].store(value, Ordering::SeqCst);
            shared.writes.fetch_add(1, Ordering::Relaxed);
            // Pace the writes so entries live long enough to be
            // served between them (hits and invalidations mix).
            thread::sleep(Duration::from_millis(1));
        }
    }
}

fn plain_reader<C>(
    shared: &Shared,
    conn: &mut C,
    keys: i32,
    r: usize,
    read: &impl Fn(&mut C, i32) -> i64,
    done: impl Fn() -> bool,
) {
    let mut key = r as i32 % keys;
    // Until enough reads *and* enough writes among them: how many
    // writes fit in the reads depends on the machine's load.
    while !done() {
        shared.reads.fetch_add(1, Ordering::Relaxed);
        key = (key + 1) % keys;
        let floor = shared.committed[key as usize].load(Ordering::SeqCst);
        let seen = read(conn, key);
        if seen < floor {
            shared.violation(|| format!("key {key}: read {seen} after {floor} was committed"));
        }
    }
}

/// A reader of a faulted run: most reads plain, some with the connection
/// moved to another thread, some slow, some inside a read transaction begun earlier
/// (checked against what was committed before it began: its snapshot may
/// be that old, but what it reads must never reach other readers).
/// Returns every (key, value) it read.
fn faulted_reader<C: Connection>(
    shared: &Shared,
    faults: &dyn Faults<C>,
    conn: &mut C,
    keys: i32,
    r: usize,
    read: &(impl Fn(&mut C, i32) -> i64 + Sync),
    done: impl Fn() -> bool,
) -> HashSet<(i32, i64)> {
    let mut rng = Rng::new(1000 + r as u64);
    let mut seen = HashSet::new();
    let mut key = r as i32 % keys;
    let mut round = 0u64;
    while !done() {
        round += 1;
        if round % 50 == 0 {
            let floors: Vec<i64> = shared
                .committed
                .iter()
                .map(|c| c.load(Ordering::SeqCst))
                .collect();
            let raw = rng.one_in(2);
            let mut body = |c: &mut C| -> QueryResult<()> {
                // The first read takes the snapshot; then writers commit
                // past it before the cached reads run.
                faults.read_direct(c, key)?;
                thread::sleep(Duration::from_millis(2));
                for _ in 0..8 {
                    key = (key + 1) % keys;
                    shared.reads.fetch_add(1, Ordering::Relaxed);
                    shared.count(Kind::SnapshotRead);
                    let value = if rng.one_in(4) {
                        shared.count(Kind::MovedThread);
                        on_thread(c, |c| read(c, key))
                    } else {
                        read(c, key)
                    };
                    let floor = floors[key as usize];
                    if value < floor {
                        shared.violation(|| {
                            format!(
                                "key {key}: read {value} inside a read transaction begun after {floor} was committed"
                            )
                        });
                    }
                    seen.insert((key, value));
                }
                Ok(())
            };
            if raw {
                conn.batch_execute(faults.begin_snapshot())
                    .expect("begin a read transaction");
                body(conn).expect("reads in a transaction");
                conn.batch_execute("COMMIT")
                    .expect("end a read transaction");
            } else {
                conn.transaction(|c| body(c))
                    .expect("reads in diesel's transaction");
            }
            continue;
        }
        shared.reads.fetch_add(1, Ordering::Relaxed);
        key = (key + 1) % keys;
        let floor = shared.committed[key as usize].load(Ordering::SeqCst);
        let value = match rng.below(20) {
            0 | 1 => {
                shared.count(Kind::MovedThread);
                on_thread(conn, |c| read(c, key))
            }
            2 => {
                shared.count(Kind::SlowRead);
                read_slowly(read, conn, key)
            }
            _ => read(conn, key),
        };
        if value < floor {
            shared.violation(|| format!("key {key}: read {value} after {floor} was committed"));
        }
        seen.insert((key, value));
    }
    seen
}

/// What a faulted writer does next.
#[derive(Clone, Copy, Debug)]
enum WriteOp {
    Plain,
    Rollback,
    FailingCommit,
    BusyBegin,
    ImplicitRollback,
    LongBatch,
    SplitBatch,
    FailedBatch,
    FailAfterCommit,
}

/// How often a faulted writer does what (out of the sum of the weights);
/// what the backend cannot do becomes a plain write.
const WRITE_MIX: [(WriteOp, u32); 9] = [
    (WriteOp::Plain, 40),
    (WriteOp::Rollback, 8),
    (WriteOp::FailingCommit, 8),
    (WriteOp::BusyBegin, 6),
    (WriteOp::ImplicitRollback, 6),
    (WriteOp::LongBatch, 8),
    (WriteOp::SplitBatch, 8),
    (WriteOp::FailedBatch, 8),
    (WriteOp::FailAfterCommit, 8),
];

/// A writer of a faulted run.
struct Writer<'a, C: Connection, Conn, W, R> {
    shared: &'a Shared,
    faults: &'a dyn Faults<C>,
    connect: &'a Conn,
    write: &'a W,
    read: &'a R,
    w: usize,
    /// The last value this writer committed, by key.
    last: Vec<i64>,
    next: i64,
    rng: Rng,
    /// A second connection, for the faults that need one.
    other: Option<C>,
}

impl<C, Conn, W, R> Writer<'_, C, Conn, W, R>
where
    C: Connection,
    Conn: Fn() -> C + Sync,
    W: Fn(&mut C, i32, i64) + Sync,
    R: Fn(&mut C, i32) -> i64 + Sync,
{
    fn run(&mut self, conn: &mut C, keys: i32, writers: usize) {
        let total: u32 = WRITE_MIX.iter().map(|(_, weight)| weight).sum();
        let w = self.w;
        while !self.shared.stop.load(Ordering::Relaxed) {
            for key in (0..keys).filter(|k| *k as usize % writers == w) {
                let mut pick = self.rng.below(total);
                let (op, _) = WRITE_MIX
                    .iter()
                    .find(|(_, weight)| {
                        let here = pick < *weight;
                        pick = pick.saturating_sub(*weight);
                        here
                    })
                    .expect("a weight");
                self.step(conn, *op, key);
                // Pace the writes so entries live long enough to be served
                // between them (hits and invalidations mix).
                thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn value(&mut self) -> i64 {
        self.next += 1;
        self.next
    }

    /// `value` committed to `key`: from now on no read that begins may
    /// return less.
    fn committed(&mut self, key: i32, value: i64) {
        self.last[key as usize] = value;
        self.shared.committed[key as usize].store(value, Ordering::SeqCst);
        self.shared.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// `value` never committed: the database must still hold the last
    /// committed value, and no reader may ever see `value`.
    fn aborted(&mut self, conn: &mut C, key: i32, value: i64, what: &str) {
        self.shared.aborted.lock().unwrap().push((key, value));
        self.shared.count(Kind::Aborted);
        self.expect_in_database(conn, key, self.last[key as usize], what);
    }

    /// What the harness believes of the database, checked (a wrong belief
    /// would make the checker itself wrong).
    fn expect_in_database(&self, conn: &mut C, key: i32, want: i64, what: &str) {
        let got = self
            .faults
            .read_direct(conn, key)
            .unwrap_or_else(|e| panic!("{what}: read back key {key}: {e}"));
        assert_eq!(got, want, "{what}: key {key} holds {got}, not {want}");
    }

    /// The writer reads its own uncommitted write through the cache: it must
    /// see it (and the cache must not keep it for anyone else).
    fn read_own(&self, conn: &mut C, key: i32, value: i64, what: &str) {
        let own = (self.read)(conn, key);
        if own != value {
            self.shared.violation(|| {
                format!("key {key}: {what} wrote {value} and read {own} back through the cache")
            });
        }
    }

    fn other(&mut self) -> &mut C {
        self.other.get_or_insert_with(self.connect)
    }

    fn step(&mut self, conn: &mut C, op: WriteOp, key: i32) {
        let faults = self.faults;
        let shared = self.shared;
        let v = self.value();
        let update = faults.update_sql(key, v);
        match op {
            WriteOp::BusyBegin if faults.busy_begins() => {
                let other = self.other.get_or_insert_with(self.connect);
                let result = faults.busy_begin(conn, other, key, v);
                match result {
                    Err(DieselError::DatabaseError(_, info))
                        if info.message().contains("locked") || info.message().contains("busy") => {
                    }
                    other => panic!("BEGIN IMMEDIATE while another connection writes: {other:?}"),
                }
                self.aborted(conn, key, v, "busy BEGIN");
                shared.count(Kind::BusyBegin);
            }
            WriteOp::ImplicitRollback if faults.ends_implicitly() => {
                let w = self.w;
                let v2 = self.value();
                let other = self.other();
                let mut ended = false;
                let result = conn.transaction(|c| {
                    faults.update(c, key, v)?;
                    ended = faults.end_implicitly(c, other, w);
                    if ended {
                        // Outside any transaction now: commits at once,
                        // though diesel still believes in its transaction.
                        faults.update(c, key, v2)?;
                    }
                    Err::<(), _>(DieselError::RollbackTransaction)
                });
                assert!(result.is_err(), "the transaction was rolled back");
                if ended {
                    self.shared.aborted.lock().unwrap().push((key, v));
                    shared.count(Kind::Aborted);
                    self.expect_in_database(conn, key, v2, "a write after an implicit rollback");
                    self.committed(key, v2);
                    shared.count(Kind::ImplicitRollback);
                } else {
                    // The helper was the deadlock victim: a plain rollback.
                    self.aborted(conn, key, v, "rolled back");
                    shared.count(Kind::Rollback);
                }
            }
            WriteOp::Rollback => {
                let moved = self.rng.one_in(2);
                let result = conn.transaction(|c| {
                    if moved {
                        // The connection moves to another thread mid-transaction.
                        on_thread(c, |c| faults.update(c, key, v))?;
                    } else {
                        faults.update(c, key, v)?;
                    }
                    self.read_own(c, key, v, "a transaction");
                    Err::<(), _>(DieselError::RollbackTransaction)
                });
                assert!(
                    matches!(result, Err(DieselError::RollbackTransaction)),
                    "rollback: {result:?}"
                );
                if moved {
                    shared.count(Kind::MovedThread);
                }
                self.aborted(conn, key, v, "rolled back");
                shared.count(Kind::Rollback);
            }
            WriteOp::FailingCommit => {
                let raw = self.rng.one_in(2);
                let result = faults.failing_commit(conn, key, v, raw);
                assert!(result.is_err(), "the commit of {v} to key {key} failed");
                self.aborted(conn, key, v, "failed commit");
                shared.count(Kind::FailedCommit);
            }
            WriteOp::LongBatch => {
                let sql =
                    format!("BEGIN; {update}; SELECT 1; SELECT 1; SELECT 1; SELECT 1; COMMIT");
                if self.rng.one_in(4) {
                    on_thread(conn, |c| c.batch_execute(&sql)).expect("long batch");
                    shared.count(Kind::MovedThread);
                } else {
                    conn.batch_execute(&sql).expect("long batch");
                }
                self.committed(key, v);
                shared.count(Kind::LongBatch);
            }
            WriteOp::SplitBatch => {
                conn.batch_execute(&format!("BEGIN; {update}"))
                    .expect("BEGIN; UPDATE");
                self.read_own(conn, key, v, "a raw transaction");
                // Readers read (and may store) meanwhile.
                thread::sleep(Duration::from_micros(300));
                if self.rng.one_in(2) {
                    on_thread(conn, |c| c.batch_execute("COMMIT")).expect("COMMIT");
                    shared.count(Kind::MovedThread);
                } else {
                    conn.batch_execute("COMMIT").expect("COMMIT");
                }
                self.committed(key, v);
                shared.count(Kind::SplitBatch);
            }
            WriteOp::FailedBatch => {
                let failing = faults.failing_sql();
                // With a statement after the COMMIT that never ran, the
                // failure is not the text's last statement either.
                let tail = if self.rng.one_in(2) { "; SELECT 1" } else { "" };
                let result = conn.batch_execute(&format!(
                    "BEGIN; {update}; SELECT 1; {failing}; COMMIT{tail}"
                ));
                assert!(result.is_err(), "a batch with {failing} failed");
                // The transaction is still open, its COMMIT never ran: let
                // readers read (and store) before it ends.
                thread::sleep(Duration::from_millis(1));
                if faults.failed_statement_keeps_transaction() && self.rng.one_in(2) {
                    conn.batch_execute("COMMIT")
                        .expect("COMMIT after a failed statement");
                    self.expect_in_database(conn, key, v, "COMMIT after a failed batch");
                    self.committed(key, v);
                } else {
                    conn.batch_execute("ROLLBACK")
                        .expect("ROLLBACK after a failed batch");
                    self.aborted(conn, key, v, "ROLLBACK after a failed batch");
                }
                shared.count(Kind::FailedBatch);
            }
            WriteOp::FailAfterCommit => {
                let failing = faults.failing_sql();
                let result =
                    conn.batch_execute(&format!("BEGIN; {update}; COMMIT; SELECT 1; {failing}"));
                assert!(result.is_err(), "a batch with {failing} failed");
                // Its COMMIT ran before the failure: the value is committed
                // (confirmed by reading it back before it counts).
                self.expect_in_database(conn, key, v, "a batch that failed after its COMMIT");
                self.committed(key, v);
                // The connection is outside any transaction: this write
                // commits at once.
                let v2 = self.value();
                faults
                    .update(conn, key, v2)
                    .expect("a write after a failed batch");
                self.committed(key, v2);
                // What a pool does with a connection that may be inside a
                // transaction it cannot see (SQLite refuses it: none open).
                let _ = conn.batch_execute("ROLLBACK");
                shared.count(Kind::FailAfterCommit);
            }
            WriteOp::Plain | WriteOp::BusyBegin | WriteOp::ImplicitRollback => {
                let write = self.write;
                if self.rng.one_in(4) {
                    on_thread(conn, |c| write(c, key, v));
                    shared.count(Kind::MovedThread);
                } else {
                    write(conn, key, v);
                }
                self.committed(key, v);
            }
        }
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

/// [`assert_fresh`] for a [`run_faulted`] run, whose reads go through one
/// cached function per counters table (`stats`), and every fault the
/// backend has happened at least [`MIN_EACH_FAULT`] times.
pub fn assert_fresh_under_faults<C: Connection>(
    backend: &str,
    outcome: &Outcome,
    stats: &[dbkit::CacheStats],
    faults: &dyn Faults<C>,
) {
    let figures: Vec<String> = stats
        .iter()
        .map(|s| {
            format!(
                "{}: hits {} misses {} bypasses {} stale {}",
                s.function.rsplit("::").next().unwrap_or_default(),
                s.hits,
                s.misses,
                s.bypasses,
                s.stale_rejections
            )
        })
        .collect();
    eprintln!(
        "{backend} freshness under faults: {outcome:?}; {}",
        figures.join("; ")
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
    for s in stats {
        assert!(s.hits > 1_000, "{backend}: the cache served reads");
        assert!(
            s.stale_rejections > 0,
            "{backend}: writes invalidated cached entries"
        );
    }
    let f = &outcome.faults;
    let mut happened = vec![
        ("rollbacks", f.rollbacks),
        ("failed commits", f.failed_commits),
        ("long batches", f.long_batches),
        ("split batches", f.split_batches),
        ("failed batches", f.failed_batches),
        ("batches failing after their commit", f.fails_after_commit),
        ("moved-thread operations", f.moved_thread_ops),
        ("reads inside a read transaction", f.snapshot_reads),
        ("slow reads", f.slow_reads),
    ];
    if faults.busy_begins() {
        happened.push(("busy BEGINs", f.busy_begins));
    }
    if faults.ends_implicitly() {
        happened.push(("implicit rollbacks", f.implicit_rollbacks));
    }
    for (what, count) in happened {
        assert!(
            count >= MIN_EACH_FAULT,
            "{backend}: {what} happened {count} times, fewer than {MIN_EACH_FAULT}"
        );
    }
}

// The faults on SQLite (the default backend, so they live here).

diesel::table! {
    /// Writer 0's counters of [`sqlite_fault_counters`] (even keys).
    fault_w0 (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    /// Writer 1's counters of [`sqlite_fault_counters`] (odd keys).
    fault_w1 (id) {
        id -> Integer,
        value -> BigInt,
    }
}

/// A SQLite file (WAL) for a faulted run: `keys` counters at 0 in
/// `fault_w0` (even keys) and `fault_w1` (odd keys), a foreign key to
/// violate and a row to duplicate.
pub fn sqlite_fault_counters(keys: i32) -> super::TempDb {
    let mut schema = String::from(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE fault_w0 (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);
         CREATE TABLE fault_w1 (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);
         CREATE TABLE fault_parents (id INTEGER PRIMARY KEY);
         CREATE TABLE fault_children (id INTEGER PRIMARY KEY,
             parent INTEGER NOT NULL REFERENCES fault_parents (id));
         CREATE TABLE fault_dupes (id INTEGER PRIMARY KEY);
         INSERT INTO fault_dupes VALUES (1);",
    );
    for k in 0..keys {
        schema.push_str(&format!("INSERT INTO fault_w{} VALUES ({k}, 0);", k % 2));
    }
    super::TempDb::new(&schema)
}

/// An instrumented connection to a [`sqlite_fault_counters`] file, foreign
/// keys enforced.
pub fn sqlite_fault_connect(db: &super::TempDb) -> diesel::SqliteConnection {
    let mut conn = sqlite_connect(db);
    conn.batch_execute("PRAGMA foreign_keys = ON").unwrap();
    conn
}

/// SQLite's faults: `PRAGMA defer_foreign_keys` violated at COMMIT,
/// `INSERT OR ROLLBACK`, `BEGIN IMMEDIATE` refused as busy.
pub struct SqliteFaults;

impl Faults<diesel::SqliteConnection> for SqliteFaults {
    fn update(
        &self,
        conn: &mut diesel::SqliteConnection,
        key: i32,
        value: i64,
    ) -> QueryResult<usize> {
        if key % 2 == 0 {
            diesel::update(fault_w0::table.find(key))
                .set(fault_w0::value.eq(value))
                .execute(conn)
        } else {
            diesel::update(fault_w1::table.find(key))
                .set(fault_w1::value.eq(value))
                .execute(conn)
        }
    }

    fn update_sql(&self, key: i32, value: i64) -> String {
        format!(
            "UPDATE fault_w{} SET value = {value} WHERE id = {key}",
            key % 2
        )
    }

    fn read_direct(&self, conn: &mut diesel::SqliteConnection, key: i32) -> QueryResult<i64> {
        if key % 2 == 0 {
            fault_w0::table
                .find(key)
                .select(fault_w0::value)
                .get_result(conn)
        } else {
            fault_w1::table
                .find(key)
                .select(fault_w1::value)
                .get_result(conn)
        }
    }

    fn failing_sql(&self) -> &'static str {
        "INSERT INTO fault_dupes VALUES (1)"
    }

    fn failed_statement_keeps_transaction(&self) -> bool {
        true
    }

    fn begin_snapshot(&self) -> &'static str {
        "BEGIN"
    }

    fn failing_commit(
        &self,
        conn: &mut diesel::SqliteConnection,
        key: i32,
        value: i64,
        raw: bool,
    ) -> QueryResult<()> {
        const ORPHAN: &str =
            "PRAGMA defer_foreign_keys = ON; INSERT INTO fault_children (parent) VALUES (-1)";
        if raw {
            conn.batch_execute(&format!("BEGIN; {}; {ORPHAN}", self.update_sql(key, value)))
                .expect("a transaction with a deferred violation");
            let commit = conn.batch_execute("COMMIT");
            // A COMMIT refused for a deferred foreign key leaves the
            // transaction open.
            conn.batch_execute("ROLLBACK")
                .expect("ROLLBACK after a failed COMMIT");
            commit
        } else {
            // diesel rolls back after its COMMIT failed.
            conn.transaction(|c| {
                self.update(c, key, value)?;
                c.batch_execute(ORPHAN)
            })
        }
    }

    fn ends_implicitly(&self) -> bool {
        true
    }

    fn end_implicitly(
        &self,
        conn: &mut diesel::SqliteConnection,
        _other: &mut diesel::SqliteConnection,
        _writer: usize,
    ) -> bool {
        conn.batch_execute("INSERT OR ROLLBACK INTO fault_dupes VALUES (1)")
            .expect_err("a duplicate");
        true
    }

    fn busy_begins(&self) -> bool {
        true
    }

    fn busy_begin(
        &self,
        conn: &mut diesel::SqliteConnection,
        other: &mut diesel::SqliteConnection,
        key: i32,
        value: i64,
    ) -> QueryResult<()> {
        other
            .batch_execute("BEGIN IMMEDIATE")
            .expect("take the write lock");
        conn.batch_execute("PRAGMA busy_timeout = 0").unwrap();
        let result = conn.immediate_transaction(|c| self.update(c, key, value).map(drop));
        conn.batch_execute("PRAGMA busy_timeout = 10000").unwrap();
        other
            .batch_execute("ROLLBACK")
            .expect("free the write lock");
        result
    }
}

/// Whether `error` is a deadlock (or serialization failure) of the
/// database.
pub fn is_deadlock(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(_, info) => info.message().contains("Deadlock"),
        _ => false,
    }
}
