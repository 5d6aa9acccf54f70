//! The concurrent freshness checker on real SQLite (Contract 1): zero stale
//! reads over 100 000 cached reads while writers commit.

mod common;

use common::freshness::{self, fresh_counters};
use common::stats_of;
use dbkit::cached_query;
use diesel::prelude::*;

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
    let db = freshness::sqlite_counters(keys);
    let outcome = freshness::run(
        keys,
        2,
        4,
        100_000,
        || freshness::sqlite_connect(&db),
        freshness::sqlite_write,
        |conn, key| counter(conn, key).expect("read"),
    );
    freshness::assert_fresh("sqlite", &outcome, &stats_of("::counter"));
}
