//! The concurrent freshness checker on real SQLite (Contract 1): zero stale
//! reads over 100 000 cached reads while writers commit, plainly and with
//! faults (rollbacks, failed commits, busy BEGINs, implicit rollbacks, raw
//! batches, connections moved between threads, readers in snapshots).

mod common;

use common::freshness::{self, fault_w0, fault_w1, fresh_counters, Faults, SqliteFaults};
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

#[cached_query(ttl = 300, tables = "fault_w0")]
fn fault_counter_w0(conn: &mut SqliteConnection, id: i32) -> QueryResult<i64> {
    let value = fault_w0::table
        .find(id)
        .select(fault_w0::value)
        .get_result(conn);
    freshness::slow_reader_pause();
    value
}

#[cached_query(ttl = 300, tables = "fault_w1")]
fn fault_counter_w1(conn: &mut SqliteConnection, id: i32) -> QueryResult<i64> {
    let value = fault_w1::table
        .find(id)
        .select(fault_w1::value)
        .get_result(conn);
    freshness::slow_reader_pause();
    value
}

#[test]
fn no_read_is_older_than_the_last_commit_before_it_began_under_faults() {
    let keys = 8;
    let db = freshness::sqlite_fault_counters(keys);
    let outcome = freshness::run_faulted(
        keys,
        2,
        4,
        100_000,
        || freshness::sqlite_fault_connect(&db),
        |conn, key, value| {
            SqliteFaults.update(conn, key, value).expect("write");
        },
        |conn, key| {
            if key % 2 == 0 {
                fault_counter_w0(conn, key)
            } else {
                fault_counter_w1(conn, key)
            }
            .expect("read")
        },
        &SqliteFaults,
    );
    freshness::assert_fresh_under_faults(
        "sqlite",
        &outcome,
        &[
            stats_of("::fault_counter_w0"),
            stats_of("::fault_counter_w1"),
        ],
        &SqliteFaults,
    );
}
