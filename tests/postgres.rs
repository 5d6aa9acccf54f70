//! The write hook and the freshness contract on a real PostgreSQL server,
//! started by the test itself (see `common/postgres.rs`).

mod common;

use std::thread;

use common::postgres::server;
use common::{freshness, stats_of, Statements};
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::result::Error as DieselError;

diesel::table! {
    pg_users (id) {
        id -> Integer,
        name -> Text,
    }
}

diesel::table! {
    pg_posts (id) {
        id -> Integer,
        title -> Text,
    }
}

diesel::table! {
    app.pg_accounts (id) {
        id -> Integer,
        balance -> Integer,
    }
}

diesel::table! {
    pg_counters (id) {
        id -> Integer,
        value -> BigInt,
    }
}

const SCHEMA: &str = "
    CREATE TABLE pg_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE pg_posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
    CREATE SCHEMA app;
    CREATE TABLE app.pg_accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
    INSERT INTO pg_users VALUES (1, 'ada');
    INSERT INTO pg_posts VALUES (1, 'first');
    INSERT INTO app.pg_accounts VALUES (1, 100);
";

#[cached_query(ttl = 300, tables = "pg_users")]
fn user_names(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    pg_users::table
        .select(pg_users::name)
        .order(pg_users::id)
        .load(conn)
}

#[cached_query(ttl = 300, tables = "pg_posts")]
fn post_titles(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    pg_posts::table
        .select(pg_posts::title)
        .order(pg_posts::id)
        .load(conn)
}

#[cached_query(ttl = 300, tables = "app.pg_accounts")]
fn balance(conn: &mut PgConnection, id: i32) -> QueryResult<i32> {
    pg_accounts::table
        .find(id)
        .select(pg_accounts::balance)
        .get_result(conn)
}

/// A fresh database with the schema, and a way to open counted, instrumented
/// connections to it.
struct Db {
    url: String,
}

impl Db {
    fn new() -> Db {
        let url = server().fresh_database();
        PgConnection::establish(&url)
            .unwrap()
            .batch_execute(SCHEMA)
            .unwrap();
        Db { url }
    }

    fn connect(&self) -> (PgConnection, Statements) {
        let mut conn = PgConnection::establish(&self.url).expect("connect");
        let statements = Statements::default();
        dbkit::Instrument::new()
            .wrapping(statements.instrumentation())
            .install(&mut conn);
        (conn, statements)
    }
}

// The tables' clock entries are process-wide: one test at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn every_kind_of_write_invalidates_its_table_and_only_its_table() {
    let _serial = serial();
    let db = Db::new();
    let (mut conn, statements) = db.connect();
    dbkit::clear_all();
    type Write = Box<dyn Fn(&mut PgConnection) -> QueryResult<()>>;
    let writes: Vec<(&str, Write)> = vec![
        (
            "DSL insert",
            Box::new(|c| {
                diesel::insert_into(pg_users::table)
                    .values((pg_users::id.eq(2), pg_users::name.eq("bob")))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "insert returning",
            Box::new(|c| {
                diesel::insert_into(pg_users::table)
                    .values((pg_users::id.eq(3), pg_users::name.eq("cy")))
                    .returning(pg_users::id)
                    .get_result::<i32>(c)
                    .map(drop)
            }),
        ),
        (
            "upsert",
            Box::new(|c| {
                diesel::insert_into(pg_users::table)
                    .values((pg_users::id.eq(2), pg_users::name.eq("bobby")))
                    .on_conflict(pg_users::id)
                    .do_update()
                    .set(pg_users::name.eq("bobby"))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "batch insert",
            Box::new(|c| {
                diesel::insert_into(pg_users::table)
                    .values(&vec![
                        (pg_users::id.eq(4), pg_users::name.eq("di")),
                        (pg_users::id.eq(5), pg_users::name.eq("ed")),
                    ])
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "DSL update",
            Box::new(|c| {
                diesel::update(pg_users::table.find(2))
                    .set(pg_users::name.eq("rob"))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "DSL delete",
            Box::new(|c| {
                diesel::delete(pg_users::table.filter(pg_users::id.gt(3)))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "sql_query",
            Box::new(|c| {
                diesel::sql_query("UPDATE pg_users SET name = 'ADA' WHERE id = 1")
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "batch_execute",
            Box::new(|c| {
                c.batch_execute(
                    "INSERT INTO pg_users VALUES (9, 'x'); DELETE FROM pg_users WHERE id = 9;",
                )
            }),
        ),
        (
            "data-modifying CTE",
            Box::new(|c| {
                diesel::sql_query("WITH moved AS (UPDATE pg_users SET name = 'ada' WHERE id = 1 RETURNING id) SELECT count(*) FROM moved").execute(c).map(drop)
            }),
        ),
        (
            "transaction()",
            Box::new(|c| {
                c.transaction(|c| {
                    diesel::update(pg_users::table.find(3))
                        .set(pg_users::name.eq("cyd"))
                        .execute(c)
                        .map(drop)
                })
            }),
        ),
        (
            "COPY-free truncate",
            Box::new(|c| {
                c.batch_execute("CREATE TABLE pg_scratch (id int); TRUNCATE pg_scratch, pg_users; INSERT INTO pg_users VALUES (1, 'ada');")
            }),
        ),
    ];
    for (kind, write) in writes {
        user_names(&mut conn).unwrap();
        post_titles(&mut conn).unwrap();
        write(&mut conn).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let expected: Vec<String> = pg_users::table
            .select(pg_users::name)
            .order(pg_users::id)
            .load(&mut conn)
            .unwrap();
        let (names, ran) = statements.reached(|| user_names(&mut conn).unwrap());
        assert!(
            ran,
            "{kind}: the cached read of pg_users was not invalidated"
        );
        assert_eq!(names, expected, "{kind}");
        let (_, ran) = statements.reached(|| post_titles(&mut conn).unwrap());
        assert!(
            !ran,
            "{kind}: pg_posts was invalidated by a write to pg_users"
        );
    }

    // A schema-qualified table, written through the DSL (`"app"."pg_accounts"`).
    assert_eq!(balance(&mut conn, 1).unwrap(), 100);
    diesel::update(pg_accounts::table.find(1))
        .set(pg_accounts::balance.eq(50))
        .execute(&mut conn)
        .unwrap();
    let (value, ran) = statements.reached(|| balance(&mut conn, 1).unwrap());
    assert!(ran);
    assert_eq!(value, 50);
}

#[test]
fn rollback_keeps_commit_invalidates_after_the_data_is_visible() {
    let _serial = serial();
    let db = Db::new();
    let (mut writer, writer_statements) = db.connect();
    dbkit::clear_all();
    assert_eq!(user_names(&mut writer).unwrap(), ["ada"]);

    let rolled_back: QueryResult<()> = writer.transaction(|w| {
        diesel::update(pg_users::table.find(1))
            .set(pg_users::name.eq("gone"))
            .execute(w)?;
        Err(DieselError::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    assert!(
        !writer_statements
            .reached(|| user_names(&mut writer).unwrap())
            .1,
        "a rollback invalidated"
    );

    writer
        .transaction(|w| {
            diesel::update(pg_users::table.find(1))
                .set(pg_users::name.eq("grace"))
                .execute(w)?;
            let (names, ran) = writer_statements.reached(|| user_names(w).unwrap());
            assert!(
                ran && names == ["grace"],
                "the transaction sees its own write"
            );
            thread::scope(|s| {
                s.spawn(|| {
                    let (mut reader, reader_statements) = db.connect();
                    let (names, ran) =
                        reader_statements.reached(|| user_names(&mut reader).unwrap());
                    assert!(ran, "served from the cache while a write was pending");
                    assert_eq!(names, ["ada"]);
                    assert!(
                        reader_statements
                            .reached(|| user_names(&mut reader).unwrap())
                            .1,
                        "stored during a pending write"
                    );
                });
            });
            QueryResult::Ok(())
        })
        .unwrap();
    let (mut reader, reader_statements) = db.connect();
    assert_eq!(user_names(&mut reader).unwrap(), ["grace"]);
    assert!(
        !reader_statements
            .reached(|| user_names(&mut reader).unwrap())
            .1,
        "cached again after the commit"
    );
}

#[test]
fn savepoint_rollback_keeps_the_parents_writes_pending() {
    let _serial = serial();
    let db = Db::new();
    let (mut conn, _) = db.connect();
    dbkit::clear_all();
    user_names(&mut conn).unwrap();
    conn.transaction(|c| {
        diesel::update(pg_users::table.find(1))
            .set(pg_users::name.eq("outer"))
            .execute(c)?;
        let inner: QueryResult<()> = c.transaction(|c| {
            diesel::update(pg_posts::table.find(1))
                .set(pg_posts::title.eq("inner"))
                .execute(c)?;
            Err(DieselError::RollbackTransaction)
        });
        assert!(inner.is_err());
        thread::scope(|s| {
            s.spawn(|| {
                let (mut other, other_statements) = db.connect();
                user_names(&mut other).unwrap();
                assert!(
                    other_statements
                        .reached(|| user_names(&mut other).unwrap())
                        .1,
                    "the parent's pending write was forgotten"
                );
            });
        });
        QueryResult::Ok(())
    })
    .unwrap();
    let (mut other, _) = db.connect();
    assert_eq!(user_names(&mut other).unwrap(), ["outer"]);
}

#[test]
fn repeatable_read_snapshots_are_never_stored() {
    let _serial = serial();
    let db = Db::new();
    let (mut conn, statements) = db.connect();
    dbkit::clear_all();
    conn.build_transaction()
        .repeatable_read()
        .run(|c| {
            assert_eq!(user_names(c)?, ["ada"]); // the snapshot is taken here
            thread::scope(|s| {
                s.spawn(|| {
                    let (mut other, _) = db.connect();
                    diesel::update(pg_users::table.find(1))
                        .set(pg_users::name.eq("newer"))
                        .execute(&mut other)
                        .unwrap();
                });
            });
            // Still the old snapshot inside; it must not become the cached value.
            assert_eq!(user_names(c)?, ["ada"]);
            QueryResult::Ok(())
        })
        .unwrap();
    let (names, ran) = statements.reached(|| user_names(&mut conn).unwrap());
    assert!(ran, "a result read inside the transaction was stored");
    assert_eq!(names, ["newer"]);
}

#[test]
fn pooled_connections_are_instrumented() {
    let _serial = serial();
    let db = Db::new();
    let pool = Pool::builder()
        .max_size(2)
        .connection_customizer(Box::new(dbkit::InstrumentConnections))
        .build(ConnectionManager::<PgConnection>::new(&db.url))
        .unwrap();
    dbkit::clear_all();
    let mut conn = pool.get().unwrap();
    assert!(dbkit::is_instrumented(&mut *conn));
    assert_eq!(post_titles(&mut conn).unwrap(), ["first"]);
    diesel::update(pg_posts::table.find(1))
        .set(pg_posts::title.eq("edited"))
        .execute(&mut conn)
        .unwrap();
    assert_eq!(post_titles(&mut pool.get().unwrap()).unwrap(), ["edited"]);
}

#[cached_query(ttl = 300, tables = "pg_counters")]
fn counter(conn: &mut PgConnection, id: i32) -> QueryResult<i64> {
    pg_counters::table
        .find(id)
        .select(pg_counters::value)
        .get_result(conn)
}

#[test]
fn no_read_is_older_than_the_last_commit_before_it_began() {
    let _serial = serial();
    let url = server().fresh_database();
    let keys = 8;
    let mut setup = PgConnection::establish(&url).unwrap();
    setup
        .batch_execute("CREATE TABLE pg_counters (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)")
        .unwrap();
    for k in 0..keys {
        diesel::insert_into(pg_counters::table)
            .values((pg_counters::id.eq(k), pg_counters::value.eq(0)))
            .execute(&mut setup)
            .unwrap();
    }
    let outcome = freshness::run(
        keys,
        2,
        4,
        100_000,
        || {
            let mut conn = PgConnection::establish(&url).unwrap();
            dbkit::instrument(&mut conn);
            conn
        },
        |conn, key, value| {
            diesel::update(pg_counters::table.find(key))
                .set(pg_counters::value.eq(value))
                .execute(conn)
                .expect("write");
        },
        |conn, key| counter(conn, key).expect("read"),
    );
    freshness::assert_fresh("postgres", &outcome, &stats_of("::counter"));
}

diesel::table! {
    pg_fault_w0 (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    pg_fault_w1 (id) {
        id -> Integer,
        value -> BigInt,
    }
}

#[cached_query(ttl = 300, tables = "pg_fault_w0")]
fn fault_counter_w0(conn: &mut PgConnection, id: i32) -> QueryResult<i64> {
    let value = pg_fault_w0::table
        .find(id)
        .select(pg_fault_w0::value)
        .get_result(conn);
    freshness::slow_reader_pause();
    value
}

#[cached_query(ttl = 300, tables = "pg_fault_w1")]
fn fault_counter_w1(conn: &mut PgConnection, id: i32) -> QueryResult<i64> {
    let value = pg_fault_w1::table
        .find(id)
        .select(pg_fault_w1::value)
        .get_result(conn);
    freshness::slow_reader_pause();
    value
}

/// PostgreSQL's faults: a DEFERRABLE INITIALLY DEFERRED foreign key
/// violated at COMMIT (the server ends the transaction), snapshots of
/// REPEATABLE READ transactions; a failed statement aborts the transaction.
struct PgFaults;

/// A row that violates the deferred foreign key when its transaction commits.
const PG_ORPHAN: &str = "INSERT INTO pg_fault_children (parent) VALUES (-1)";

impl freshness::Faults<PgConnection> for PgFaults {
    fn update(&self, conn: &mut PgConnection, key: i32, value: i64) -> QueryResult<usize> {
        if key % 2 == 0 {
            diesel::update(pg_fault_w0::table.find(key))
                .set(pg_fault_w0::value.eq(value))
                .execute(conn)
        } else {
            diesel::update(pg_fault_w1::table.find(key))
                .set(pg_fault_w1::value.eq(value))
                .execute(conn)
        }
    }

    fn update_sql(&self, key: i32, value: i64) -> String {
        format!(
            "UPDATE pg_fault_w{} SET value = {value} WHERE id = {key}",
            key % 2
        )
    }

    fn read_direct(&self, conn: &mut PgConnection, key: i32) -> QueryResult<i64> {
        if key % 2 == 0 {
            pg_fault_w0::table
                .find(key)
                .select(pg_fault_w0::value)
                .get_result(conn)
        } else {
            pg_fault_w1::table
                .find(key)
                .select(pg_fault_w1::value)
                .get_result(conn)
        }
    }

    fn failing_sql(&self) -> &'static str {
        "INSERT INTO pg_fault_dupes VALUES (1)"
    }

    fn failed_statement_keeps_transaction(&self) -> bool {
        false
    }

    fn begin_snapshot(&self) -> &'static str {
        "BEGIN ISOLATION LEVEL REPEATABLE READ"
    }

    fn failing_commit(
        &self,
        conn: &mut PgConnection,
        key: i32,
        value: i64,
        raw: bool,
    ) -> QueryResult<()> {
        if raw {
            conn.batch_execute(&format!(
                "BEGIN; {}; {PG_ORPHAN}",
                self.update_sql(key, value)
            ))
            .expect("a transaction with a deferred violation");
            // The server ends the transaction whether COMMIT succeeds or not.
            conn.batch_execute("COMMIT")
        } else {
            conn.transaction(|c| {
                self.update(c, key, value)?;
                diesel::sql_query(PG_ORPHAN).execute(c).map(drop)
            })
        }
    }
}

#[test]
fn no_read_is_older_than_the_last_commit_before_it_began_under_faults() {
    use freshness::Faults as _;
    let _serial = serial();
    let url = server().fresh_database();
    let keys = 8;
    let mut setup = PgConnection::establish(&url).unwrap();
    setup
        .batch_execute(
            "CREATE TABLE pg_fault_w0 (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);
             CREATE TABLE pg_fault_w1 (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);
             CREATE TABLE pg_fault_parents (id INTEGER PRIMARY KEY);
             CREATE TABLE pg_fault_children (id SERIAL PRIMARY KEY, parent INTEGER NOT NULL
                 REFERENCES pg_fault_parents (id) DEFERRABLE INITIALLY DEFERRED);
             CREATE TABLE pg_fault_dupes (id INTEGER PRIMARY KEY);
             INSERT INTO pg_fault_dupes VALUES (1);",
        )
        .unwrap();
    for k in 0..keys {
        setup
            .batch_execute(&format!("INSERT INTO pg_fault_w{} VALUES ({k}, 0)", k % 2))
            .unwrap();
    }
    let outcome = freshness::run_faulted(
        keys,
        2,
        4,
        100_000,
        || {
            let mut conn = PgConnection::establish(&url).unwrap();
            dbkit::instrument(&mut conn);
            conn
        },
        |conn, key, value| {
            PgFaults.update(conn, key, value).expect("write");
        },
        |conn, key| {
            if key % 2 == 0 {
                fault_counter_w0(conn, key)
            } else {
                fault_counter_w1(conn, key)
            }
            .expect("read")
        },
        &PgFaults,
    );
    freshness::assert_fresh_under_faults(
        "postgres",
        &outcome,
        &[
            stats_of("::fault_counter_w0"),
            stats_of("::fault_counter_w1"),
        ],
        &PgFaults,
    );
}
