//! Regressions of Contract 1 ("a cached read is never staler than the last
//! committed write") on SQLite, each one a way the transaction tracking lost
//! track of a connection's real transaction state. Public API only: cached
//! functions, instrumented connections, diesel, raw SQL, threads.
//!
//! Every test has its own table and cached function, and checks the cached
//! value against what the database itself says.

mod common;

use std::thread;

use common::regress::{assert_not_stale, set_value, table_schema, value};
use common::TempDb;
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

/// An SQLite file in WAL mode (readers never block the writer) holding the
/// test's table.
fn wal_db(table: &str) -> TempDb {
    TempDb::new(&format!(
        "PRAGMA journal_mode = WAL; {}",
        table_schema(table)
    ))
}

/// A connection with dbkit's instrumentation.
fn instrumented(db: &TempDb) -> SqliteConnection {
    db.connect_instrumented(dbkit::Instrument::new()).0
}

/// A connection dbkit knows nothing of.
fn plain(db: &TempDb) -> SqliteConnection {
    db.connect_untracked().0
}

/// Makes a lock conflict fail at once with SQLITE_BUSY instead of waiting.
fn no_busy_wait(conn: &mut SqliteConnection) {
    conn.batch_execute("PRAGMA busy_timeout = 0").unwrap();
}

// Some of these tests invalidate every table (a write whose tables are
// unknown), which would hide another test's stale entry: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rs_failed_begin")]
fn failed_begin_value(conn: &mut SqliteConnection) -> QueryResult<i32> {
    value(conn, "rs_failed_begin")
}

/// Bug 2: a failed BEGIN. diesel emits `BeginTransaction { depth: 1 }` before
/// `BEGIN IMMEDIATE` runs and says nothing when it fails with SQLITE_BUSY, so
/// dbkit believes in a transaction that does not exist.
/// 1. reader caches v = 0;
/// 2. `holder` takes the write lock (`BEGIN IMMEDIATE`);
/// 3. `writer.immediate_transaction` fails with SQLITE_BUSY; holder rolls back;
/// 4. writer: autocommit `UPDATE v = 1` (committed by SQLite at once);
/// 5. writer: a later transaction that rolls back;
/// 6. reader: the cached read must say 1.
#[test]
fn failed_begin_immediate_leaves_later_writes_unbumped() {
    let _serial = serial();
    const T: &str = "rs_failed_begin";
    let db = wal_db(T);
    let mut reader = instrumented(&db);
    let mut writer = instrumented(&db);
    no_busy_wait(&mut writer);
    let mut holder = plain(&db);

    assert_eq!(failed_begin_value(&mut reader).unwrap(), 0);

    holder.batch_execute("BEGIN IMMEDIATE").unwrap();
    let begin = writer.immediate_transaction(|_| QueryResult::Ok(()));
    assert!(
        begin.is_err(),
        "setup: BEGIN IMMEDIATE must fail with SQLITE_BUSY"
    );
    holder.batch_execute("ROLLBACK").unwrap();

    set_value(&mut writer, T, 1).unwrap();
    let rolled_back: QueryResult<()> =
        writer.transaction(|_| Err(DieselError::RollbackTransaction));
    assert!(rolled_back.is_err());

    let cached = failed_begin_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "autocommit UPDATE after a failed BEGIN IMMEDIATE",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rs_moved_snapshot")]
fn moved_snapshot_value(conn: &mut SqliteConnection) -> QueryResult<i32> {
    value(conn, "rs_moved_snapshot")
}

/// Bug 3b: transaction state is kept per thread, not per connection. A
/// deferred transaction that has read holds a WAL snapshot; the same
/// connection moved to another thread reads that snapshot through the cache
/// and stores it with a current stamp.
/// 1. `conn.transaction`: a plain read takes the snapshot (v = 0);
/// 2. another connection commits `UPDATE v = 1`;
/// 3. on another thread, a cached read on `conn` (the snapshot: 0);
/// 4. the transaction commits; a reader's cached read must say 1.
#[test]
fn snapshot_read_on_another_thread_inside_a_deferred_transaction_is_stored() {
    let _serial = serial();
    const T: &str = "rs_moved_snapshot";
    let db = wal_db(T);
    let mut conn = instrumented(&db);
    let mut writer = instrumented(&db);
    let mut reader = instrumented(&db);

    let inside = conn
        .transaction(|c| {
            let snapshot = value(c, T)?; // the read transaction starts here
            set_value(&mut writer, T, 1)?; // committed by another connection
            let moved = thread::scope(|s| s.spawn(move || moved_snapshot_value(c)).join())
                .expect("reader thread");
            QueryResult::Ok((snapshot, moved?))
        })
        .unwrap();
    assert_eq!(inside, (0, 0), "setup: the transaction kept its snapshot");

    let cached = moved_snapshot_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "a snapshot read from another thread inside a transaction",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rs_untracked_snapshot")]
fn untracked_snapshot_value(conn: &mut SqliteConnection) -> QueryResult<i32> {
    value(conn, "rs_untracked_snapshot")
}

/// Bug 3c: a connection dbkit did not instrument cannot tell dbkit it is in a
/// transaction; its cached reads store its snapshot as if it were current.
/// 1. uninstrumented `conn.transaction`: a plain read takes the snapshot;
/// 2. another (instrumented) connection commits `UPDATE v = 1`;
/// 3. same thread, same transaction: a cached read on `conn` (0, stored);
/// 4. a reader's cached read must say 1.
#[test]
fn uninstrumented_connection_inside_a_transaction_stores_its_snapshot() {
    let _serial = serial();
    const T: &str = "rs_untracked_snapshot";
    let db = wal_db(T);
    let mut conn = plain(&db);
    let mut writer = instrumented(&db);
    let mut reader = instrumented(&db);

    let inside = conn
        .transaction(|c| {
            let snapshot = value(c, T)?;
            set_value(&mut writer, T, 1)?;
            QueryResult::Ok((snapshot, untracked_snapshot_value(c)?))
        })
        .unwrap();
    assert_eq!(inside, (0, 0), "setup: the transaction kept its snapshot");

    let cached = untracked_snapshot_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "a snapshot read by an uninstrumented connection inside a transaction",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rs_long_batch")]
fn long_batch_value(conn: &mut SqliteConnection) -> QueryResult<i32> {
    value(conn, "rs_long_batch")
}

/// Bug 4: a `batch_execute` of more than four statements is tracked as one
/// "write to every table" that commits with the batch: its `BEGIN` is lost,
/// the write is bumped before it commits and the later raw `COMMIT` bumps
/// nothing.
/// 1. writer: `BEGIN; UPDATE v = 1; SELECT 1; SELECT 1; SELECT 1`;
/// 2. reader: cached read (0: not committed yet) is stored;
/// 3. writer: `COMMIT`;
/// 4. reader: the cached read must say 1.
#[test]
fn batch_of_five_statements_opening_a_transaction_is_bumped_before_its_commit() {
    let _serial = serial();
    const T: &str = "rs_long_batch";
    let db = wal_db(T);
    let mut writer = instrumented(&db);
    let mut reader = instrumented(&db);

    writer
        .batch_execute(&format!(
            "BEGIN; UPDATE {T} SET v = 1 WHERE id = 1; SELECT 1; SELECT 1; SELECT 1;"
        ))
        .unwrap();
    assert_eq!(
        long_batch_value(&mut reader).unwrap(),
        0,
        "setup: uncommitted"
    );
    writer.batch_execute("COMMIT").unwrap();

    let cached = long_batch_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "a raw transaction opened by a five-statement batch, committed later",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rs_raw_savepoint")]
fn raw_savepoint_value(conn: &mut SqliteConnection) -> QueryResult<i32> {
    value(conn, "rs_raw_savepoint")
}

/// Bug 5a: on SQLite a `SAVEPOINT` outside a transaction starts one and its
/// `RELEASE` commits it; dbkit takes both for no-ops inside a transaction.
/// 1. writer: `SAVEPOINT a`, then `UPDATE v = 1` (not committed);
/// 2. reader: cached read (0) is stored;
/// 3. writer: `RELEASE a` commits;
/// 4. reader: the cached read must say 1.
#[test]
fn savepoint_outside_a_transaction_commits_at_release_without_a_bump() {
    let _serial = serial();
    const T: &str = "rs_raw_savepoint";
    let db = wal_db(T);
    let mut writer = instrumented(&db);
    let mut reader = instrumented(&db);

    writer.batch_execute("SAVEPOINT a").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    assert_eq!(
        raw_savepoint_value(&mut reader).unwrap(),
        0,
        "setup: uncommitted"
    );
    writer.batch_execute("RELEASE a").unwrap();

    let cached = raw_savepoint_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "UPDATE inside SAVEPOINT a .. RELEASE a outside a transaction",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rs_busy_commit")]
fn busy_commit_value(conn: &mut SqliteConnection) -> QueryResult<i32> {
    value(conn, "rs_busy_commit")
}

/// Bug 5c: a raw `COMMIT` that fails with SQLITE_BUSY leaves the transaction
/// open (it can be retried); dbkit takes the failure as the end of the
/// transaction and releases its marks without a bump, so the retried COMMIT
/// that does commit bumps nothing.
/// 1. reader caches v = 0 (rollback-journal mode);
/// 2. writer: `BEGIN; UPDATE v = 1`;
/// 3. `holder` keeps a SHARED lock: `BEGIN; SELECT ..`;
/// 4. writer: `COMMIT` fails with SQLITE_BUSY;
/// 5. holder ends its read; writer: `COMMIT` again, which succeeds;
/// 6. reader: the cached read must say 1.
#[test]
fn busy_raw_commit_retried_later_is_never_bumped() {
    let _serial = serial();
    const T: &str = "rs_busy_commit";
    let db = TempDb::new(&format!(
        "PRAGMA journal_mode = DELETE; {}",
        table_schema(T)
    ));
    let mut writer = instrumented(&db);
    no_busy_wait(&mut writer);
    let mut reader = instrumented(&db);
    let mut holder = plain(&db);

    assert_eq!(busy_commit_value(&mut reader).unwrap(), 0);

    writer
        .batch_execute(&format!("BEGIN; UPDATE {T} SET v = 1 WHERE id = 1;"))
        .unwrap();
    holder
        .batch_execute(&format!("BEGIN; SELECT v FROM {T};"))
        .unwrap();
    assert!(
        writer.batch_execute("COMMIT").is_err(),
        "setup: COMMIT must fail with SQLITE_BUSY while a reader holds SHARED"
    );
    holder.batch_execute("COMMIT").unwrap();
    writer.batch_execute("COMMIT").unwrap();

    let cached = busy_commit_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "raw COMMIT retried after SQLITE_BUSY",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rs_broken_batch")]
fn broken_batch_value(conn: &mut SqliteConnection) -> QueryResult<i32> {
    value(conn, "rs_broken_batch")
}

/// Bug 5d: `BEGIN; UPDATE ..; <failing statement>; COMMIT` stops at the
/// error, leaving the transaction open and the COMMIT unrun; dbkit takes the
/// batch as committed. A cached read on that same connection then sees its
/// own uncommitted write and stores it for everyone.
/// 1. writer: `BEGIN; UPDATE v = 1; INSERT <duplicate key>; COMMIT` fails;
/// 2. writer: cached read (1, uncommitted) is stored;
/// 3. reader: cached read must say what the database says (0);
/// 4. writer: `ROLLBACK`; reader: the cached read must still say 0.
#[test]
fn batch_stopped_by_an_error_stores_uncommitted_data_of_its_open_transaction() {
    let _serial = serial();
    const T: &str = "rs_broken_batch";
    let db = wal_db(T);
    let mut writer = instrumented(&db);
    let mut reader = instrumented(&db);

    let batch = writer.batch_execute(&format!(
        "BEGIN; UPDATE {T} SET v = 1 WHERE id = 1; INSERT INTO {T} VALUES (1, 2); COMMIT;"
    ));
    assert!(batch.is_err(), "setup: the duplicate key stops the batch");
    assert_eq!(
        broken_batch_value(&mut writer).unwrap(),
        1,
        "setup: the open transaction sees its own write"
    );

    let cached = broken_batch_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "uncommitted write of a batch stopped by an error, read by another connection",
    );
    writer.batch_execute("ROLLBACK").unwrap();
    let cached = broken_batch_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "after the stopped batch's transaction rolled back",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rs_test_tx_savepoint")]
fn test_tx_savepoint_value(conn: &mut SqliteConnection) -> QueryResult<i32> {
    value(conn, "rs_test_tx_savepoint")
}

/// Bug 6: `Instrument::test_transaction()` makes each write visible at its
/// statement's end; a savepoint rolled back inside the test transaction
/// undoes writes that were already bumped, and the value read in between
/// keeps being served.
/// 1. `begin_test_transaction`; cached read (0);
/// 2. nested `conn.transaction`: `UPDATE v = 1`, cached read (1, stored),
///    then `Err` → `ROLLBACK TO SAVEPOINT`;
/// 3. the cached read must say 0 again, as the database does.
#[test]
fn test_transaction_savepoint_rollback_keeps_serving_the_rolled_back_value() {
    let _serial = serial();
    const T: &str = "rs_test_tx_savepoint";
    let db = wal_db(T);
    let (mut conn, _) = db.connect_instrumented(dbkit::Instrument::new().test_transaction());
    conn.begin_test_transaction().unwrap();

    assert_eq!(test_tx_savepoint_value(&mut conn).unwrap(), 0);
    let mut inside = None;
    let savepoint: QueryResult<()> = conn.transaction(|c| {
        set_value(c, T, 1)?;
        inside = Some(test_tx_savepoint_value(c)?);
        Err(DieselError::RollbackTransaction)
    });
    assert!(savepoint.is_err());
    assert_eq!(inside, Some(1), "setup: the savepoint saw its own write");

    let cached = test_tx_savepoint_value(&mut conn).unwrap();
    assert_not_stale(
        cached,
        value(&mut conn, T).unwrap(),
        "a write of a rolled-back savepoint inside begin_test_transaction",
    );
}
