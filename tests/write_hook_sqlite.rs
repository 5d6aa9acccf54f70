//! Committed diesel writes invalidate exactly the cached reads of their
//! tables, on real SQLite: no `invalidate_table` call anywhere in this file.

mod common;

use std::thread;

use common::{stats_of, TempDb};
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

diesel::table! {
    wh_users (id) {
        id -> Integer,
        name -> Text,
    }
}

diesel::table! {
    wh_posts (id) {
        id -> Integer,
        title -> Text,
    }
}

const SCHEMA: &str = "
    CREATE TABLE wh_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE wh_posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
    INSERT INTO wh_users VALUES (1, 'ada');
    INSERT INTO wh_posts VALUES (1, 'first');
";

#[cached_query(ttl = 300, tables = "wh_users")]
fn user_names(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    wh_users::table
        .select(wh_users::name)
        .order(wh_users::id)
        .load(conn)
}

#[cached_query(ttl = 300, tables = "wh_posts")]
fn post_titles(conn: &mut SqliteConnection) -> QueryResult<Vec<String>> {
    wh_posts::table
        .select(wh_posts::title)
        .order(wh_posts::id)
        .load(conn)
}

/// An instrumented connection to the test's database.
fn connect(db: &TempDb) -> (SqliteConnection, common::Statements) {
    db.connect_instrumented(dbkit::Instrument::new())
}

/// Whether `call` reached the database.
fn reached<T>(statements: &common::Statements, call: impl FnOnce() -> T) -> (T, bool) {
    let before = statements.count();
    let out = call();
    (out, statements.count() > before)
}

// Every test uses its own tables' entries from a fresh database, and the
// tables are shared, so the tests of this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn instrumentation_is_installed_once_and_keeps_a_default() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    let (mut conn, _) = db.connect_untracked();
    assert!(!dbkit::is_instrumented(&mut conn));
    dbkit::instrument(&mut conn);
    dbkit::instrument(&mut conn);
    assert!(dbkit::is_instrumented(&mut conn));
}

#[test]
fn every_kind_of_write_invalidates_its_table_and_only_its_table() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    let (mut conn, statements) = connect(&db);
    dbkit::clear_all();

    type Write = Box<dyn Fn(&mut SqliteConnection) -> QueryResult<()>>;
    let writes: Vec<(&str, Write)> = vec![
        (
            "DSL insert",
            Box::new(|c| {
                diesel::insert_into(wh_users::table)
                    .values((wh_users::id.eq(2), wh_users::name.eq("bob")))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "DSL update",
            Box::new(|c| {
                diesel::update(wh_users::table.find(2))
                    .set(wh_users::name.eq("rob"))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "upsert",
            Box::new(|c| {
                diesel::insert_into(wh_users::table)
                    .values((wh_users::id.eq(2), wh_users::name.eq("bobby")))
                    .on_conflict(wh_users::id)
                    .do_update()
                    .set(wh_users::name.eq("bobby"))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "replace",
            Box::new(|c| {
                diesel::replace_into(wh_users::table)
                    .values((wh_users::id.eq(2), wh_users::name.eq("robert")))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "batch insert",
            Box::new(|c| {
                diesel::insert_into(wh_users::table)
                    .values(&vec![
                        (wh_users::id.eq(3), wh_users::name.eq("cy")),
                        (wh_users::id.eq(4), wh_users::name.eq("di")),
                    ])
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "DSL delete",
            Box::new(|c| {
                diesel::delete(wh_users::table.filter(wh_users::id.gt(2)))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "sql_query",
            Box::new(|c| {
                diesel::sql_query("UPDATE wh_users SET name = 'ADA' WHERE id = 1")
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "batch_execute",
            Box::new(|c| {
                c.batch_execute(
                    "INSERT INTO wh_users VALUES (5, 'eve'); DELETE FROM wh_users WHERE id = 5;",
                )
            }),
        ),
        (
            "transaction()",
            Box::new(|c| {
                c.transaction(|c| {
                    diesel::update(wh_users::table.find(1))
                        .set(wh_users::name.eq("ada"))
                        .execute(c)
                        .map(drop)
                })
            }),
        ),
    ];
    for (kind, write) in writes {
        user_names(&mut conn).unwrap();
        post_titles(&mut conn).unwrap();
        write(&mut conn).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let expected: Vec<String> = wh_users::table
            .select(wh_users::name)
            .order(wh_users::id)
            .load(&mut conn)
            .unwrap();
        let (names, ran) = reached(&statements, || user_names(&mut conn).unwrap());
        assert!(
            ran,
            "{kind}: the cached read of wh_users was not invalidated"
        );
        assert_eq!(names, expected, "{kind}");
        let (_, ran) = reached(&statements, || post_titles(&mut conn).unwrap());
        assert!(
            !ran,
            "{kind}: wh_posts was invalidated by a write to wh_users"
        );
    }
}

#[test]
fn failed_write_and_rolled_back_transaction_keep_the_cache() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    let (mut conn, statements) = connect(&db);
    dbkit::clear_all();
    user_names(&mut conn).unwrap();

    // A write that fails: nothing changed.
    let failed = diesel::insert_into(wh_users::table)
        .values((wh_users::id.eq(1), wh_users::name.eq("dup")))
        .execute(&mut conn);
    assert!(failed.is_err());
    assert!(
        !reached(&statements, || user_names(&mut conn).unwrap()).1,
        "a failed write invalidated"
    );

    // A transaction that rolls back: nothing changed.
    let rolled_back: QueryResult<()> = conn.transaction(|c| {
        diesel::update(wh_users::table.find(1))
            .set(wh_users::name.eq("gone"))
            .execute(c)?;
        Err(DieselError::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    let (names, ran) = reached(&statements, || user_names(&mut conn).unwrap());
    assert!(!ran, "a rolled-back transaction invalidated");
    assert_eq!(names, ["ada"]);
}

#[test]
fn transaction_sees_its_own_writes_and_others_see_them_only_after_commit() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    let (mut writer, writer_statements) = connect(&db);
    dbkit::clear_all();
    assert_eq!(user_names(&mut writer).unwrap(), ["ada"]);

    writer
        .transaction(|w| {
            diesel::update(wh_users::table.find(1))
                .set(wh_users::name.eq("grace"))
                .execute(w)?;

            // The writing transaction reads its own write through the cached function.
            let (names, ran) = reached(&writer_statements, || user_names(w).unwrap());
            assert!(
                ran && names == ["grace"],
                "the transaction must see its own write"
            );

            // Another connection, on another thread, while the write is not committed:
            // the old value, read from the database (not the cache), and not stored.
            let db_path = &db;
            thread::scope(|s| {
                s.spawn(|| {
                    let (mut reader, reader_statements) = connect(db_path);
                    let (names, ran) =
                        reached(&reader_statements, || user_names(&mut reader).unwrap());
                    assert!(
                        ran,
                        "an entry was served while a write to its table was pending"
                    );
                    assert_eq!(names, ["ada"], "uncommitted data is not visible");
                    let (_, ran) = reached(&reader_statements, || user_names(&mut reader).unwrap());
                    assert!(ran, "a read during a pending write was stored");
                });
            });
            QueryResult::Ok(())
        })
        .unwrap();

    // Committed: everyone sees it, and it is cached again.
    let (mut reader, reader_statements) = connect(&db);
    let (names, ran) = reached(&reader_statements, || user_names(&mut reader).unwrap());
    assert!(ran);
    assert_eq!(names, ["grace"]);
    assert!(
        !reached(&reader_statements, || user_names(&mut reader).unwrap()).1,
        "cached again after commit"
    );
}

#[test]
fn savepoint_rollback_keeps_the_parents_writes_pending() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    let (mut conn, _) = connect(&db);
    dbkit::clear_all();
    user_names(&mut conn).unwrap();

    conn.transaction(|c| {
        diesel::update(wh_users::table.find(1))
            .set(wh_users::name.eq("outer"))
            .execute(c)?;
        let inner: QueryResult<()> = c.transaction(|c| {
            diesel::update(wh_posts::table.find(1))
                .set(wh_posts::title.eq("inner"))
                .execute(c)?;
            Err(DieselError::RollbackTransaction)
        });
        assert!(inner.is_err());
        // Still inside the outer transaction: the parent's write is pending.
        thread::scope(|s| {
            s.spawn(|| {
                let (mut other, other_statements) = connect(&db);
                user_names(&mut other).unwrap();
                assert!(
                    reached(&other_statements, || user_names(&mut other).unwrap()).1,
                    "pending write of the parent was forgotten"
                );
            });
        });
        QueryResult::Ok(())
    })
    .unwrap();
    let (mut other, other_statements) = connect(&db);
    let (names, ran) = reached(&other_statements, || user_names(&mut other).unwrap());
    assert!(ran);
    assert_eq!(names, ["outer"]);
}

#[test]
fn raw_transaction_in_batch_execute_invalidates_at_its_commit() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    let (mut conn, _) = connect(&db);
    dbkit::clear_all();
    user_names(&mut conn).unwrap();

    conn.batch_execute("BEGIN; UPDATE wh_users SET name = 'raw' WHERE id = 1;")
        .unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            let (mut other, other_statements) = connect(&db);
            let (names, ran) = reached(&other_statements, || user_names(&mut other).unwrap());
            assert!(
                ran,
                "served from the cache while a raw transaction wrote the table"
            );
            assert_eq!(names, ["ada"]);
        });
    });
    conn.batch_execute("COMMIT").unwrap();
    let (mut other, other_statements) = connect(&db);
    let (names, ran) = reached(&other_statements, || user_names(&mut other).unwrap());
    assert!(ran);
    assert_eq!(names, ["raw"]);
    assert!(!reached(&other_statements, || user_names(&mut other).unwrap()).1);
}

#[test]
fn reads_inside_a_transaction_are_never_stored() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    let (mut conn, statements) = connect(&db);
    dbkit::clear_all();
    let stores_before = stats_of("::post_titles").stores;
    conn.transaction(|c| {
        post_titles(c)?;
        assert!(
            reached(&statements, || post_titles(c).unwrap()).1,
            "stored inside a transaction"
        );
        QueryResult::Ok(())
    })
    .unwrap();
    assert_eq!(stats_of("::post_titles").stores, stores_before);
    post_titles(&mut conn).unwrap();
    assert!(
        !reached(&statements, || post_titles(&mut conn).unwrap()).1,
        "stored again outside"
    );
}

#[test]
fn test_transaction_mode_treats_writes_as_committed() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    let (mut conn, statements) =
        db.connect_instrumented(dbkit::Instrument::new().test_transaction());
    conn.begin_test_transaction().unwrap();
    dbkit::clear_all();

    assert_eq!(user_names(&mut conn).unwrap(), ["ada"]);
    assert!(
        !reached(&statements, || user_names(&mut conn).unwrap()).1,
        "cached as in production"
    );
    diesel::update(wh_users::table.find(1))
        .set(wh_users::name.eq("tested"))
        .execute(&mut conn)
        .unwrap();
    let (names, ran) = reached(&statements, || user_names(&mut conn).unwrap());
    assert!(ran);
    assert_eq!(names, ["tested"]);
}

#[test]
fn connection_dropped_mid_transaction_releases_its_marks() {
    let _serial = serial();
    let db = TempDb::new(SCHEMA);
    dbkit::clear_all();
    {
        let (mut conn, _) = connect(&db);
        conn.batch_execute("BEGIN; UPDATE wh_users SET name = 'lost' WHERE id = 1;")
            .unwrap();
        // dropped here without COMMIT: SQLite rolls back
    }
    let (mut conn, statements) = connect(&db);
    assert_eq!(user_names(&mut conn).unwrap(), ["ada"]);
    assert!(
        !reached(&statements, || user_names(&mut conn).unwrap()).1,
        "the dropped transaction still blocks the cache"
    );
}
