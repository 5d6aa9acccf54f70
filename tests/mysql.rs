//! The write hook and the freshness contract on a real MariaDB server (the
//! `mysql` feature), started by the test itself (see `common/mariadb.rs`).

mod common;

use std::thread;

use common::mariadb::server;
use common::{freshness, stats_of, Statements};
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

diesel::table! {
    my_users (id) {
        id -> Integer,
        name -> Text,
    }
}

diesel::table! {
    my_posts (id) {
        id -> Integer,
        title -> Text,
    }
}

diesel::table! {
    my_counters (id) {
        id -> Integer,
        value -> BigInt,
    }
}

const SCHEMA: &str = "
    CREATE TABLE my_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL) ENGINE = InnoDB;
    CREATE TABLE my_posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL) ENGINE = InnoDB;
    INSERT INTO my_users VALUES (1, 'ada');
    INSERT INTO my_posts VALUES (1, 'first');
";

#[cached_query(ttl = 300, tables = "my_users")]
fn user_names(conn: &mut MysqlConnection) -> QueryResult<Vec<String>> {
    my_users::table
        .select(my_users::name)
        .order(my_users::id)
        .load(conn)
}

#[cached_query(ttl = 300, tables = "my_posts")]
fn post_titles(conn: &mut MysqlConnection) -> QueryResult<Vec<String>> {
    my_posts::table
        .select(my_posts::title)
        .order(my_posts::id)
        .load(conn)
}

/// A fresh database with the schema, and a way to open counted, instrumented
/// connections to it.
struct Db {
    url: String,
}

impl Db {
    fn new() -> Db {
        let url = server().fresh_database();
        MysqlConnection::establish(&url)
            .unwrap()
            .batch_execute(SCHEMA)
            .unwrap();
        Db { url }
    }

    fn connect(&self) -> (MysqlConnection, Statements) {
        let mut conn = MysqlConnection::establish(&self.url).expect("connect");
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
fn the_server_starts_and_diesel_connects() {
    let url = server().fresh_database();
    let mut conn = MysqlConnection::establish(&url).expect("connect");
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    let version = diesel::sql_query("SELECT VERSION() AS v")
        .get_result::<Row>(&mut conn)
        .unwrap()
        .v;
    assert!(version.contains("MariaDB"), "{version}");
    conn.batch_execute(
        "CREATE TABLE my_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO my_users VALUES (1, 'ada'), (2, 'grâce');",
    )
    .unwrap();
    let names: Vec<String> = my_users::table
        .select(my_users::name)
        .order(my_users::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(names, ["ada", "grâce"]);
}

#[test]
fn a_write_on_another_connection_makes_the_next_cached_read_fresh() {
    let _serial = serial();
    let db = Db::new();
    let (mut reader, statements) = db.connect();
    let mut writer = MysqlConnection::establish(&db.url).unwrap();
    dbkit::instrument(&mut writer);
    dbkit::clear_all();

    let (names, ran) = statements.reached(|| user_names(&mut reader).unwrap());
    assert!(ran, "the first read is a miss");
    assert_eq!(names, ["ada"]);
    post_titles(&mut reader).unwrap();
    let (names, ran) = statements.reached(|| user_names(&mut reader).unwrap());
    assert!(!ran, "no write in between: a hit");
    assert_eq!(names, ["ada"]);

    diesel::update(my_users::table.find(1))
        .set(my_users::name.eq("grace"))
        .execute(&mut writer)
        .unwrap();
    let (names, ran) = statements.reached(|| user_names(&mut reader).unwrap());
    assert!(ran, "the write did not invalidate the cached read");
    assert_eq!(names, ["grace"]);
    let (_, ran) = statements.reached(|| user_names(&mut reader).unwrap());
    assert!(!ran, "cached again after the fresh read");
    let (_, ran) = statements.reached(|| post_titles(&mut reader).unwrap());
    assert!(!ran, "my_posts was invalidated by a write to my_users");
}

#[test]
fn every_kind_of_write_invalidates_its_table_and_only_its_table() {
    let _serial = serial();
    let db = Db::new();
    let (mut conn, statements) = db.connect();
    dbkit::clear_all();
    type Write = Box<dyn Fn(&mut MysqlConnection) -> QueryResult<()>>;
    let writes: Vec<(&str, Write)> = vec![
        (
            "DSL insert",
            Box::new(|c| {
                diesel::insert_into(my_users::table)
                    .values((my_users::id.eq(2), my_users::name.eq("bob")))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "replace into",
            Box::new(|c| {
                diesel::replace_into(my_users::table)
                    .values((my_users::id.eq(3), my_users::name.eq("cy")))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "on duplicate key update",
            Box::new(|c| {
                diesel::insert_into(my_users::table)
                    .values((my_users::id.eq(2), my_users::name.eq("bobby")))
                    .on_conflict(diesel::dsl::DuplicatedKeys)
                    .do_update()
                    .set(my_users::name.eq("bobby"))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "batch insert",
            Box::new(|c| {
                diesel::insert_into(my_users::table)
                    .values(&vec![
                        (my_users::id.eq(4), my_users::name.eq("di")),
                        (my_users::id.eq(5), my_users::name.eq("ed")),
                    ])
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "DSL update",
            Box::new(|c| {
                diesel::update(my_users::table.find(2))
                    .set(my_users::name.eq("rob"))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "DSL delete",
            Box::new(|c| {
                diesel::delete(my_users::table.filter(my_users::id.gt(3)))
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "sql_query",
            Box::new(|c| {
                diesel::sql_query("UPDATE `my_users` SET name = 'ADA' WHERE id = 1")
                    .execute(c)
                    .map(drop)
            }),
        ),
        (
            "batch_execute",
            Box::new(|c| {
                c.batch_execute(
                    "INSERT INTO my_users VALUES (9, 'x'); DELETE FROM my_users WHERE id = 9;",
                )
            }),
        ),
        (
            "transaction()",
            Box::new(|c| {
                c.transaction(|c| {
                    diesel::update(my_users::table.find(3))
                        .set(my_users::name.eq("cyd"))
                        .execute(c)
                        .map(drop)
                })
            }),
        ),
        (
            "truncate",
            Box::new(|c| {
                c.batch_execute("TRUNCATE TABLE my_users; INSERT INTO my_users VALUES (1, 'ada');")
            }),
        ),
    ];
    for (kind, write) in writes {
        user_names(&mut conn).unwrap();
        post_titles(&mut conn).unwrap();
        write(&mut conn).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let expected: Vec<String> = my_users::table
            .select(my_users::name)
            .order(my_users::id)
            .load(&mut conn)
            .unwrap();
        let (names, ran) = statements.reached(|| user_names(&mut conn).unwrap());
        assert!(
            ran,
            "{kind}: the cached read of my_users was not invalidated"
        );
        assert_eq!(names, expected, "{kind}");
        let (_, ran) = statements.reached(|| post_titles(&mut conn).unwrap());
        assert!(
            !ran,
            "{kind}: my_posts was invalidated by a write to my_users"
        );
    }

    // A multi-table UPDATE: every table of the join counts as written (SET
    // names columns of aliases), so only the updated table is checked.
    user_names(&mut conn).unwrap();
    diesel::sql_query(
        "UPDATE my_users u JOIN my_posts p ON p.id = u.id SET u.name = 'joined' WHERE p.id = 1",
    )
    .execute(&mut conn)
    .unwrap();
    let (names, ran) = statements.reached(|| user_names(&mut conn).unwrap());
    assert!(ran, "multi-table update: my_users was not invalidated");
    assert_eq!(names, ["joined"]);
}

#[test]
fn a_write_in_a_transaction_is_invisible_to_cached_reads_until_commit() {
    let _serial = serial();
    let db = Db::new();
    let (mut writer, writer_statements) = db.connect();
    dbkit::clear_all();
    assert_eq!(user_names(&mut writer).unwrap(), ["ada"]);

    let rolled_back: QueryResult<()> = writer.transaction(|w| {
        diesel::update(my_users::table.find(1))
            .set(my_users::name.eq("gone"))
            .execute(w)?;
        Err(DieselError::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    let (names, ran) = writer_statements.reached(|| user_names(&mut writer).unwrap());
    assert!(!ran, "a rollback invalidated");
    assert_eq!(names, ["ada"]);

    writer
        .transaction(|w| {
            diesel::update(my_users::table.find(1))
                .set(my_users::name.eq("grace"))
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
                    assert_eq!(names, ["ada"], "the write is not committed yet");
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
    let (names, ran) = reader_statements.reached(|| user_names(&mut reader).unwrap());
    assert!(ran, "the commit did not invalidate");
    assert_eq!(names, ["grace"]);
    assert!(
        !reader_statements
            .reached(|| user_names(&mut reader).unwrap())
            .1,
        "cached again after the commit"
    );
}

/// InnoDB's default isolation is REPEATABLE READ: a plain `transaction()`
/// reads one snapshot, which must not become the cached value.
#[test]
fn default_repeatable_read_snapshots_are_never_stored() {
    let _serial = serial();
    let db = Db::new();
    let (mut conn, statements) = db.connect();
    dbkit::clear_all();
    conn.transaction(|c| {
        assert_eq!(user_names(c)?, ["ada"]); // the snapshot is taken here
        thread::scope(|s| {
            s.spawn(|| {
                let (mut other, _) = db.connect();
                diesel::update(my_users::table.find(1))
                    .set(my_users::name.eq("newer"))
                    .execute(&mut other)
                    .unwrap();
            });
        });
        let old: Vec<String> = my_users::table.select(my_users::name).load(c)?;
        assert_eq!(old, ["ada"], "InnoDB reads the old snapshot");
        QueryResult::Ok(())
    })
    .unwrap();
    let (names, ran) = statements.reached(|| user_names(&mut conn).unwrap());
    assert!(ran, "a result read inside the transaction was stored");
    assert_eq!(names, ["newer"]);
}

#[cached_query(ttl = 300, tables = "my_counters")]
fn counter(conn: &mut MysqlConnection, id: i32) -> QueryResult<i64> {
    my_counters::table
        .find(id)
        .select(my_counters::value)
        .get_result(conn)
}

#[test]
fn no_read_is_older_than_the_last_commit_before_it_began() {
    let _serial = serial();
    let url = server().fresh_database();
    let keys = 8;
    let mut setup = MysqlConnection::establish(&url).unwrap();
    setup
        .batch_execute(
            "CREATE TABLE my_counters (id INTEGER PRIMARY KEY, value BIGINT NOT NULL) ENGINE = InnoDB",
        )
        .unwrap();
    for k in 0..keys {
        diesel::insert_into(my_counters::table)
            .values((my_counters::id.eq(k), my_counters::value.eq(0)))
            .execute(&mut setup)
            .unwrap();
    }
    let outcome = freshness::run(
        keys,
        2,
        4,
        100_000,
        || {
            let mut conn = MysqlConnection::establish(&url).unwrap();
            dbkit::instrument(&mut conn);
            conn
        },
        |conn, key, value| {
            diesel::update(my_counters::table.find(key))
                .set(my_counters::value.eq(value))
                .execute(conn)
                .expect("write");
        },
        |conn, key| counter(conn, key).expect("read"),
    );
    freshness::assert_fresh("mariadb", &outcome, &stats_of("::counter"));
}

diesel::table! {
    my_fault_w0 (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    my_fault_w1 (id) {
        id -> Integer,
        value -> BigInt,
    }
}

#[cached_query(ttl = 300, tables = "my_fault_w0")]
fn fault_counter_w0(conn: &mut MysqlConnection, id: i32) -> QueryResult<i64> {
    let value = my_fault_w0::table
        .find(id)
        .select(my_fault_w0::value)
        .get_result(conn);
    freshness::slow_reader_pause();
    value
}

#[cached_query(ttl = 300, tables = "my_fault_w1")]
fn fault_counter_w1(conn: &mut MysqlConnection, id: i32) -> QueryResult<i64> {
    let value = my_fault_w1::table
        .find(id)
        .select(my_fault_w1::value)
        .get_result(conn);
    freshness::slow_reader_pause();
    value
}

/// MariaDB's faults: no deferred constraints, so a failing commit is a
/// statement that fails inside the transaction, then a rollback; a
/// deadlock whose victim InnoDB rolls back on its own; snapshots of
/// `START TRANSACTION WITH CONSISTENT SNAPSHOT`.
struct MyFaults;

impl freshness::Faults<MysqlConnection> for MyFaults {
    fn update(&self, conn: &mut MysqlConnection, key: i32, value: i64) -> QueryResult<usize> {
        if key % 2 == 0 {
            diesel::update(my_fault_w0::table.find(key))
                .set(my_fault_w0::value.eq(value))
                .execute(conn)
        } else {
            diesel::update(my_fault_w1::table.find(key))
                .set(my_fault_w1::value.eq(value))
                .execute(conn)
        }
    }

    fn update_sql(&self, key: i32, value: i64) -> String {
        format!(
            "UPDATE my_fault_w{} SET value = {value} WHERE id = {key}",
            key % 2
        )
    }

    fn read_direct(&self, conn: &mut MysqlConnection, key: i32) -> QueryResult<i64> {
        if key % 2 == 0 {
            my_fault_w0::table
                .find(key)
                .select(my_fault_w0::value)
                .get_result(conn)
        } else {
            my_fault_w1::table
                .find(key)
                .select(my_fault_w1::value)
                .get_result(conn)
        }
    }

    fn failing_sql(&self) -> &'static str {
        "INSERT INTO my_fault_dupes VALUES (1)"
    }

    fn failed_statement_keeps_transaction(&self) -> bool {
        true
    }

    fn begin_snapshot(&self) -> &'static str {
        "START TRANSACTION WITH CONSISTENT SNAPSHOT"
    }

    fn failing_commit(
        &self,
        conn: &mut MysqlConnection,
        key: i32,
        value: i64,
        raw: bool,
    ) -> QueryResult<()> {
        if raw {
            conn.batch_execute(&format!("BEGIN; {}", self.update_sql(key, value)))
                .expect("BEGIN; UPDATE");
            let failed = conn.batch_execute(self.failing_sql());
            conn.batch_execute("ROLLBACK").expect("ROLLBACK");
            failed
        } else {
            // diesel rolls back when the closure fails.
            conn.transaction(|c| {
                self.update(c, key, value)?;
                c.batch_execute(self.failing_sql())
            })
        }
    }

    fn ends_implicitly(&self) -> bool {
        true
    }

    /// A deadlock: this transaction holds row X and waits for Y, which
    /// `other` holds while it waits for X. `other` changed more rows, so
    /// InnoDB rolls this (lighter) transaction back as the victim.
    fn end_implicitly(
        &self,
        conn: &mut MysqlConnection,
        other: &mut MysqlConnection,
        writer: usize,
    ) -> bool {
        let base = 100 * writer as i32;
        let lock = |id: i32| format!("UPDATE my_fault_locks SET n = n + 1 WHERE id = {id}");
        let (lock_x, lock_y) = (lock(base + 1), lock(base + 2));
        diesel::sql_query(&lock_x).execute(conn).expect("lock X");
        other
            .batch_execute(&format!(
                "BEGIN; UPDATE my_fault_locks SET n = n + 1 WHERE id BETWEEN {} AND {}; {lock_y}",
                base + 10,
                base + 29
            ))
            .expect("the other transaction locks Y");
        let (mine, theirs) = thread::scope(|s| {
            let conn = &mut *conn;
            let lock_y = &lock_y;
            let mine = s.spawn(move || diesel::sql_query(lock_y).execute(conn));
            thread::sleep(std::time::Duration::from_millis(2));
            let theirs = diesel::sql_query(&lock_x).execute(other);
            (mine.join().expect("lock Y"), theirs)
        });
        other.batch_execute("ROLLBACK").expect("ROLLBACK the other");
        match mine {
            Err(e) if freshness::is_deadlock(&e) => true,
            Ok(_) => {
                assert!(
                    theirs.as_ref().is_err_and(freshness::is_deadlock),
                    "no deadlock: {theirs:?}"
                );
                false
            }
            Err(e) => panic!("lock Y: {e}"),
        }
    }
}

#[test]
fn no_read_is_older_than_the_last_commit_before_it_began_under_faults() {
    use freshness::Faults as _;
    let _serial = serial();
    let url = server().fresh_database();
    let keys = 8;
    let mut setup = MysqlConnection::establish(&url).unwrap();
    let mut schema = String::from(
        "CREATE TABLE my_fault_w0 (id INTEGER PRIMARY KEY, value BIGINT NOT NULL) ENGINE = InnoDB;
         CREATE TABLE my_fault_w1 (id INTEGER PRIMARY KEY, value BIGINT NOT NULL) ENGINE = InnoDB;
         CREATE TABLE my_fault_dupes (id INTEGER PRIMARY KEY) ENGINE = InnoDB;
         INSERT INTO my_fault_dupes VALUES (1);
         CREATE TABLE my_fault_locks (id INTEGER PRIMARY KEY, n INTEGER NOT NULL) ENGINE = InnoDB;",
    );
    for k in 0..keys {
        schema.push_str(&format!("INSERT INTO my_fault_w{} VALUES ({k}, 0);", k % 2));
    }
    for writer in 0..2 {
        for id in [1, 2].into_iter().chain(10..30) {
            schema.push_str(&format!(
                "INSERT INTO my_fault_locks VALUES ({}, 0);",
                100 * writer + id
            ));
        }
    }
    setup.batch_execute(&schema).unwrap();
    let outcome = freshness::run_faulted(
        keys,
        2,
        4,
        100_000,
        || {
            let mut conn = MysqlConnection::establish(&url).unwrap();
            dbkit::instrument(&mut conn);
            conn
        },
        |conn, key, value| {
            MyFaults.update(conn, key, value).expect("write");
        },
        |conn, key| {
            if key % 2 == 0 {
                fault_counter_w0(conn, key)
            } else {
                fault_counter_w1(conn, key)
            }
            .expect("read")
        },
        &MyFaults,
    );
    freshness::assert_fresh_under_faults(
        "mariadb",
        &outcome,
        &[
            stats_of("::fault_counter_w0"),
            stats_of("::fault_counter_w1"),
        ],
        &MyFaults,
    );
}

/// `halt`/`resume` on a server of the test's own: committed data survives a
/// SIGKILL (InnoDB recovers it) and connections work again on the same port.
#[test]
fn a_private_server_survives_a_kill_and_a_restart() {
    let private = common::mariadb::MariaDbServer::private();
    let url = private.fresh_database();
    let mut conn = MysqlConnection::establish(&url).unwrap();
    conn.batch_execute(
        "CREATE TABLE my_posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
         INSERT INTO my_posts VALUES (1, 'kept');",
    )
    .unwrap();
    private.halt();
    assert!(MysqlConnection::establish(&url).is_err(), "still up");
    private.resume();
    let mut conn = MysqlConnection::establish(&url).unwrap();
    let titles: Vec<String> = my_posts::table
        .select(my_posts::title)
        .load(&mut conn)
        .unwrap();
    assert_eq!(titles, ["kept"]);
}
