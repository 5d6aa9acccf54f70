//! What a cached call learns from the connection it is given, on real
//! SQLite: an untracked connection is served but never stores, a session
//! moved to another thread keeps its transaction, a session returned inside
//! a raw transaction is rolled back, and the parameter markers that name
//! the connection and a `&mut` key.

mod common;

use std::thread;

use common::regress::{set_value, table_schema, value};
use common::{logs, stats_of, TempDb};
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tracing::Level;

diesel::table! {
    cs_untracked (id) {
        id -> Integer,
        v -> Integer,
    }
}

diesel::table! {
    cs_moved (id) {
        id -> Integer,
        v -> Integer,
    }
}

diesel::table! {
    cs_raw (id) {
        id -> Integer,
        v -> Integer,
    }
}

diesel::table! {
    cs_marked (id) {
        id -> Integer,
        v -> Integer,
    }
}

#[cached_query(ttl = 300, tables = "cs_untracked")]
fn untracked_value(conn: &mut SqliteConnection, id: i32) -> QueryResult<i32> {
    cs_untracked::table
        .find(id)
        .select(cs_untracked::v)
        .get_result(conn)
}

#[test]
fn an_untracked_connection_is_served_but_never_stores_and_is_warned_about() {
    logs::capture();
    let db = TempDb::new(&table_schema("cs_untracked"));
    let (mut untracked, untracked_statements) = db.connect_untracked();
    let (mut tracked, tracked_statements) = db.connect();

    // Read through an untracked connection: the query runs every time.
    assert_eq!(untracked_value(&mut untracked, 1).unwrap(), 0);
    let ((), ran) = untracked_statements.reached(|| {
        untracked_value(&mut untracked, 1).unwrap();
    });
    assert!(ran, "nothing was stored from the untracked connection");

    // A tracked connection stores; the untracked one is then served the hit.
    assert_eq!(untracked_value(&mut tracked, 1).unwrap(), 0);
    let (_, ran) = tracked_statements.reached(|| untracked_value(&mut tracked, 1).unwrap());
    assert!(!ran, "stored from the tracked connection");
    let (_, ran) = untracked_statements.reached(|| untracked_value(&mut untracked, 1).unwrap());
    assert!(!ran, "a fresh hit is served to an untracked connection");

    let stats = stats_of("::untracked_value");
    assert!(stats.untracked_connection);
    assert_eq!(stats.stores, 1);
    let warned = logs::events(Level::WARN, "connection dbkit does not track");
    let ours: Vec<_> = warned
        .iter()
        .filter(|w| w.contains("untracked_value"))
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "warned once, naming the function: {warned:#?}"
    );
    assert!(ours[0].contains("dbkit::instrument"), "and the fix");
    let report = dbkit::report();
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("untracked_value") && w.contains("does not track")),
        "{:#?}",
        report.warnings
    );
}

#[cached_query(ttl = 300, tables = "cs_moved")]
fn moved_value(
    #[dbkit(conn)] session: &mut dbkit::Session<SqliteConnection>,
    id: i32,
) -> QueryResult<i32> {
    cs_moved::table
        .find(id)
        .select(cs_moved::v)
        .get_result(&mut **session)
}

#[test]
fn a_session_moved_to_another_thread_keeps_its_transaction() {
    let db = TempDb::new(&format!(
        "PRAGMA journal_mode = WAL; {}",
        table_schema("cs_moved")
    ));
    let pool = dbkit::Pool::<SqliteConnection>::builder()
        .max_size(2)
        .build(&db.url())
        .unwrap();
    let mut session = pool.get().unwrap();
    // A snapshot: BEGIN, then a read, on this thread.
    session.batch_execute("BEGIN").unwrap();
    assert_eq!(value(&mut *session, "cs_moved").unwrap(), 0);

    // Another connection commits a new value.
    let (mut writer, _) = db.connect();
    set_value(&mut writer, "cs_moved", 1).unwrap();

    // The session, moved to another thread, reads its old snapshot: it is
    // inside a transaction there too, so the read is not stored.
    let (session, seen) = thread::scope(|s| {
        s.spawn(move || {
            let seen = moved_value(&mut session, 1).unwrap();
            (session, seen)
        })
        .join()
        .unwrap()
    });
    assert_eq!(seen, 0, "its snapshot");
    drop(session); // returned: the pool rolls the raw transaction back

    let mut other = pool.get().unwrap();
    assert_eq!(moved_value(&mut other, 1).unwrap(), 1, "never the snapshot");
    assert_eq!(stats_of("::moved_value").stores, 1);
}

#[cached_query(ttl = 300, tables = "cs_raw")]
fn raw_value(conn: &mut SqliteConnection, id: i32) -> QueryResult<i32> {
    cs_raw::table.find(id).select(cs_raw::v).get_result(conn)
}

#[test]
fn a_session_returned_inside_a_raw_transaction_is_rolled_back() {
    let db = TempDb::new(&format!(
        "PRAGMA journal_mode = WAL; {}",
        table_schema("cs_raw")
    ));
    let pool = dbkit::Pool::<SqliteConnection>::builder()
        .max_size(1)
        .build(&db.url())
        .unwrap();
    {
        let mut session = pool.get().unwrap();
        session
            .batch_execute("BEGIN; UPDATE cs_raw SET v = 7 WHERE id = 1")
            .unwrap();
    } // returned with the transaction open
    let (mut plain, _) = db.connect();
    assert_eq!(
        value(&mut plain, "cs_raw").unwrap(),
        0,
        "rolled back, not committed"
    );
    let mut session = pool.get().unwrap();
    assert_eq!(raw_value(&mut session, 1).unwrap(), 0);
    assert_eq!(raw_value(&mut session, 1).unwrap(), 0);
    assert_eq!(
        stats_of("::raw_value").hits,
        1,
        "the same connection, back outside any transaction, caches again"
    );
}

#[cached_query(ttl = 300, tables = "cs_marked")]
fn marked_value(
    conn: &mut SqliteConnection,
    #[dbkit(key)] scratch: &mut Vec<i32>,
    id: i32,
) -> QueryResult<i32> {
    scratch.push(id);
    cs_marked::table
        .find(id)
        .select(cs_marked::v)
        .get_result(conn)
}

#[test]
fn a_mut_argument_marked_key_is_keyed_by_value_and_left_alone_on_a_hit() {
    let db = TempDb::new(&table_schema("cs_marked"));
    let (mut conn, statements) = db.connect();
    let mut scratch = vec![1];
    marked_value(&mut conn, &mut scratch, 1).unwrap();
    assert_eq!(scratch, [1, 1], "the query ran and pushed");
    let (_, ran) = statements.reached(|| marked_value(&mut conn, &mut vec![1], 1).unwrap());
    assert!(!ran, "keyed by value: an equal vector hits");
    let mut other = vec![2];
    let (_, ran) = statements.reached(|| marked_value(&mut conn, &mut other, 1).unwrap());
    assert!(ran, "another value is another key");
    let mut again = vec![1];
    marked_value(&mut conn, &mut again, 1).unwrap();
    assert_eq!(
        again,
        [1],
        "a hit does not run the body: accepted by the marker"
    );
}
