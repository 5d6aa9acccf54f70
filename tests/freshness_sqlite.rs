//! The concurrent freshness checker on real SQLite (Contract 1): zero stale
//! reads over 100 000 cached reads while writers commit.

mod common;

use common::freshness;
use common::{stats_of, TempDb};
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

diesel::table! {
    fresh_counters (id) {
        id -> Integer,
        value -> BigInt,
    }
}

#[cached_query(ttl = 300, tables = "fresh_counters")]
fn counter(conn: &mut SqliteConnection, id: i32) -> QueryResult<i64> {
    fresh_counters::table
        .find(id)
        .select(fresh_counters::value)
        .get_result(conn)
}

#[test]
fn no_read_is_older_than_the_last_commit_before_it_began() {
    let keys = 8;
    let mut schema = String::from(
        "PRAGMA journal_mode = WAL; CREATE TABLE fresh_counters (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);",
    );
    for k in 0..keys {
        schema.push_str(&format!("INSERT INTO fresh_counters VALUES ({k}, 0);"));
    }
    let db = TempDb::new(&schema);
    let outcome = freshness::run(
        keys,
        2,
        4,
        100_000,
        || {
            let (mut conn, _) = db.connect_instrumented(dbkit::Instrument::new());
            // A commit without fsync: writes are short, as on a real server.
            conn.batch_execute("PRAGMA synchronous = OFF").unwrap();
            conn
        },
        |conn, key, value| {
            diesel::update(fresh_counters::table.find(key))
                .set(fresh_counters::value.eq(value))
                .execute(conn)
                .expect("write");
        },
        |conn, key| counter(conn, key).expect("read"),
    );
    freshness::assert_fresh("sqlite", &outcome, &stats_of("::counter"));
}
