//! Regressions of Contract 1 ("a cached read is never staler than the last
//! committed write") on a real PostgreSQL server (see `common/postgres.rs`),
//! each one a way the transaction tracking lost track of a connection's real
//! transaction state. Public API only: cached functions, instrumented
//! connections, diesel, raw SQL, threads.
//!
//! Every test has its own database, table and cached function, and checks
//! the cached value against what the database itself says.

mod common;

use std::thread;

use common::postgres::server;
use common::regress::{assert_not_stale, set_value, table_schema, value};
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// A fresh database holding the test's table and `extra` DDL.
fn database(table: &str, extra: &str) -> String {
    let url = server().fresh_database();
    plain(&url)
        .batch_execute(&format!("{} {extra}", table_schema(table)))
        .expect("schema");
    url
}

/// A connection with dbkit's instrumentation.
fn instrumented(url: &str) -> PgConnection {
    let mut conn = plain(url);
    dbkit::instrument(&mut conn);
    conn
}

/// A connection dbkit knows nothing of.
fn plain(url: &str) -> PgConnection {
    PgConnection::establish(url).expect("connect")
}

// Some of these tests invalidate every table (a write whose tables are
// unknown), which would hide another test's stale entry: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rp_failed_commit")]
fn failed_commit_value(conn: &mut PgConnection) -> QueryResult<i32> {
    value(conn, "rp_failed_commit")
}

/// Bug 1: a top-level COMMIT that fails (a deferred foreign key) ends the
/// transaction on the server; diesel resets its state without a
/// `RollbackTransaction` event, and dbkit stays "in a transaction": later
/// autocommit writes of that connection are held, and released without a
/// bump when the connection closes.
/// 1. reader caches v = 0;
/// 2. writer: `conn.transaction` inserting a child with no parent; its
///    COMMIT fails on the deferred foreign key;
/// 3. writer: autocommit `UPDATE v = 1` (committed at once);
/// 4. writer closes;
/// 5. reader: the cached read must say 1.
#[test]
fn failed_commit_on_postgres_leaves_later_writes_unbumped() {
    let _serial = serial();
    const T: &str = "rp_failed_commit";
    let url = database(
        T,
        "CREATE TABLE rp_fc_parent (id INTEGER PRIMARY KEY);
         CREATE TABLE rp_fc_child (
             id INTEGER PRIMARY KEY,
             parent_id INTEGER NOT NULL
                 REFERENCES rp_fc_parent (id) DEFERRABLE INITIALLY DEFERRED
         );",
    );
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_eq!(failed_commit_value(&mut reader).unwrap(), 0);

    let failed = writer
        .transaction(|c| diesel::sql_query("INSERT INTO rp_fc_child VALUES (1, 999)").execute(c));
    assert!(
        failed.is_err(),
        "setup: COMMIT must fail on the deferred foreign key"
    );
    set_value(&mut writer, T, 1).unwrap();
    drop(writer);

    let cached = failed_commit_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "autocommit UPDATE after a failed COMMIT",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rp_moved_snapshot")]
fn moved_snapshot_value(conn: &mut PgConnection) -> QueryResult<i32> {
    value(conn, "rp_moved_snapshot")
}

/// Bug 3a: transaction state is kept per thread, not per connection. A
/// REPEATABLE READ transaction has taken its snapshot; the same connection,
/// moved to another thread, reads that snapshot through the cache and stores
/// it with a current stamp.
/// 1. `build_transaction().repeatable_read()`: a plain read takes the
///    snapshot (v = 0);
/// 2. another connection commits `UPDATE v = 1`;
/// 3. on another thread, a cached read on the same connection (0);
/// 4. the transaction commits; a reader's cached read must say 1.
#[test]
fn repeatable_read_snapshot_read_on_another_thread_is_stored() {
    let _serial = serial();
    const T: &str = "rp_moved_snapshot";
    let url = database(T, "");
    let mut conn = instrumented(&url);
    let mut writer = instrumented(&url);
    let mut reader = instrumented(&url);

    let inside = conn
        .build_transaction()
        .repeatable_read()
        .run(|c| {
            let snapshot = value(c, T)?; // the snapshot is taken here
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
        "a REPEATABLE READ snapshot read from another thread",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rp_untracked_snapshot")]
fn untracked_snapshot_value(conn: &mut PgConnection) -> QueryResult<i32> {
    value(conn, "rp_untracked_snapshot")
}

/// Bug 3c: a connection dbkit did not instrument cannot tell dbkit it is in a
/// transaction; its cached reads store its snapshot as if it were current.
/// 1. uninstrumented REPEATABLE READ transaction: a plain read (snapshot);
/// 2. another (instrumented) connection commits `UPDATE v = 1`;
/// 3. same thread, same transaction: a cached read (0, stored);
/// 4. a reader's cached read must say 1.
#[test]
fn uninstrumented_connection_in_a_repeatable_read_transaction_stores_its_snapshot() {
    let _serial = serial();
    const T: &str = "rp_untracked_snapshot";
    let url = database(T, "");
    let mut conn = plain(&url);
    let mut writer = instrumented(&url);
    let mut reader = instrumented(&url);

    let inside = conn
        .build_transaction()
        .repeatable_read()
        .run(|c| {
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

#[cached_query(ttl = 300, tables = "rp_long_batch")]
fn long_batch_value(conn: &mut PgConnection) -> QueryResult<i32> {
    value(conn, "rp_long_batch")
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
    const T: &str = "rp_long_batch";
    let url = database(T, "");
    let mut writer = instrumented(&url);
    let mut reader = instrumented(&url);

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

#[cached_query(ttl = 300, tables = "rp_commit_chain")]
fn commit_chain_value(conn: &mut PgConnection) -> QueryResult<i32> {
    value(conn, "rp_commit_chain")
}

/// Bug 5b: `COMMIT AND CHAIN` commits and opens a new transaction at once;
/// dbkit sees only the commit, so the chained transaction's writes are
/// bumped as autocommit writes before they commit, and its `COMMIT` bumps
/// nothing.
/// 1. writer: `BEGIN`, `UPDATE v = 1`, `COMMIT AND CHAIN`;
/// 2. writer (chained transaction): `UPDATE v = 2`;
/// 3. reader: cached read (1: the chained write is not committed) is stored;
/// 4. writer: `COMMIT`;
/// 5. reader: the cached read must say 2.
#[test]
fn commit_and_chain_writes_of_the_chained_transaction_are_bumped_before_their_commit() {
    let _serial = serial();
    const T: &str = "rp_commit_chain";
    let url = database(T, "");
    let mut writer = instrumented(&url);
    let mut reader = instrumented(&url);

    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer.batch_execute("COMMIT AND CHAIN").unwrap();
    set_value(&mut writer, T, 2).unwrap();
    assert_eq!(
        commit_chain_value(&mut reader).unwrap(),
        1,
        "setup: the chained write is uncommitted"
    );
    writer.batch_execute("COMMIT").unwrap();

    let cached = commit_chain_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "write of the transaction opened by COMMIT AND CHAIN",
    );
}

#[cached_query(ttl = 300, tables = "rp_rollback_chain")]
fn rollback_chain_value(conn: &mut PgConnection) -> QueryResult<i32> {
    value(conn, "rp_rollback_chain")
}

/// Bug 5b: `ROLLBACK AND CHAIN` rolls back and opens a new transaction at
/// once; dbkit sees only the rollback.
/// 1. writer: `BEGIN`, `UPDATE v = 1`, `ROLLBACK AND CHAIN`;
/// 2. writer (chained transaction): `UPDATE v = 2`;
/// 3. reader: cached read (0) is stored;
/// 4. writer: `COMMIT`;
/// 5. reader: the cached read must say 2.
#[test]
fn rollback_and_chain_writes_of_the_chained_transaction_are_bumped_before_their_commit() {
    let _serial = serial();
    const T: &str = "rp_rollback_chain";
    let url = database(T, "");
    let mut writer = instrumented(&url);
    let mut reader = instrumented(&url);

    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer.batch_execute("ROLLBACK AND CHAIN").unwrap();
    set_value(&mut writer, T, 2).unwrap();
    assert_eq!(
        rollback_chain_value(&mut reader).unwrap(),
        0,
        "setup: the chained write is uncommitted"
    );
    writer.batch_execute("COMMIT").unwrap();

    let cached = rollback_chain_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "write of the transaction opened by ROLLBACK AND CHAIN",
    );
}

// ---------------------------------------------------------------------------

#[cached_query(ttl = 300, tables = "rp_prepared")]
fn prepared_value(conn: &mut PgConnection) -> QueryResult<i32> {
    value(conn, "rp_prepared")
}

/// Bug 5e: two-phase commit. `PREPARE TRANSACTION` detaches the transaction
/// from the session (it survives the session), and `COMMIT PREPARED`, from
/// any session, commits it; dbkit takes neither for what it is.
/// 1. reader caches v = 0;
/// 2. writer: `BEGIN`, `UPDATE v = 1`, `PREPARE TRANSACTION 'rp_x'`; closes;
/// 3. coordinator (another instrumented connection): `COMMIT PREPARED 'rp_x'`;
/// 4. reader: the cached read must say 1.
#[test]
fn prepared_transaction_committed_from_another_connection_is_never_bumped() {
    let _serial = serial();
    const T: &str = "rp_prepared";
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);
    let mut coordinator = instrumented(&url);

    assert_eq!(prepared_value(&mut reader).unwrap(), 0);

    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer
        .batch_execute("PREPARE TRANSACTION 'rp_x'")
        .expect("setup: PREPARE TRANSACTION (max_prepared_transactions > 0)");
    drop(writer);
    coordinator.batch_execute("COMMIT PREPARED 'rp_x'").unwrap();

    let cached = prepared_value(&mut reader).unwrap();
    assert_not_stale(
        cached,
        value(&mut reader, T).unwrap(),
        "a prepared transaction committed by another connection",
    );
}
