//! The Redis tier's L2 hits against a real `redis-server` (started per test):
//! a value read back from Redis is held to the same rules as one found in L1:
//! it does not outlive the expiry it was stored with, and it is not served
//! while this process's own table clock says the table may have changed.
//!
//! One tier per process: the tests take turns (`TURN`), each with its own
//! server, prefix and table.

mod common;

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{stats_of, TempDb};
use dbkit::{cached_query, RedisConfig};
use diesel::prelude::*;

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs a tier on `server` under `prefix`; waits for its bus.
fn install(server: &RedisServer, config: RedisConfig) {
    dbkit::set_redis(config).expect("a valid URL");
    server.wait_for_bus();
}

/// A database with `table (id, name)`: 1 `ada`, 2 `grace`, WAL mode (a
/// reader reads while a writer's transaction is open).
fn db_with(table: &str) -> TempDb {
    TempDb::new(&format!(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO {table} VALUES (1, 'ada'), (2, 'grace');"
    ))
}

// ---------------------------------------------------------------------------
// (1) An L2 hit refills L1 with the remaining life of the value, not a new TTL.

diesel::table! {
    l2_ttl_people (id) {
        id -> Integer,
        name -> Text,
    }
}

/// Four seconds of real time: Redis expires values on its own (real) clock,
/// which `dbkit::testing::advance_clock` does not move, so this test sleeps.
const TTL: Duration = Duration::from_secs(4);

#[cached_query(ttl = "4s", tables = "l2_ttl_people", redis)]
fn ttl_name(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<String>> {
    l2_ttl_people::table
        .find(id)
        .select(l2_ttl_people::name)
        .first(conn)
        .optional()
}

fn sleep_until(deadline: Instant) {
    if let Some(left) = deadline.checked_duration_since(Instant::now()) {
        thread::sleep(left);
    }
}

#[test]
fn l2_hit_does_not_give_the_value_a_new_ttl_in_l1() {
    let _turn = turn();
    let server = RedisServer::start();
    install(&server, RedisConfig::new(server.url()).prefix("l2-ttl"));
    let db = db_with("l2_ttl_people");
    let (mut conn, statements) = db.connect_instrumented(dbkit::Instrument::new());

    // The first miss on a table Redis has no generation for only starts it.
    ttl_name(&mut conn, 2).unwrap();

    // t = 0: stored in L1 and in Redis, both for TTL.
    let stored_at = Instant::now();
    let (ada, ran) = statements.reached(|| ttl_name(&mut conn, 1).unwrap());
    assert_eq!((ada.as_deref(), ran), (Some("ada"), true));

    // t = 0.625 TTL: L1 loses the entry; Redis still holds it and answers.
    sleep_until(stored_at + TTL * 5 / 8);
    dbkit::clear_all();
    let (ada, ran) = statements.reached(|| ttl_name(&mut conn, 1).unwrap());
    assert_eq!(ada.as_deref(), Some("ada"));
    assert!(
        !ran && stored_at.elapsed() < TTL,
        "precondition: an L2 hit before the value's expiry (took {:?})",
        stored_at.elapsed()
    );

    // t = 1.25 TTL: the value expired at t = TTL, in Redis and everywhere.
    sleep_until(stored_at + TTL * 5 / 4);
    let before = stats_of("::ttl_name");
    let (ada, ran) = statements.reached(|| ttl_name(&mut conn, 1).unwrap());
    let after = stats_of("::ttl_name");
    assert_eq!(ada.as_deref(), Some("ada"));
    assert!(
        ran,
        "served {:?} after it was stored with a TTL of {TTL:?} ({} L1 hit, {} L2 hit): \
         the L2 hit at 0.625 TTL refilled L1 with a whole new TTL",
        stored_at.elapsed(),
        after.hits - before.hits,
        after.l2_hits - before.l2_hits,
    );
    dbkit::remove_redis();
}

// ---------------------------------------------------------------------------
// (2) An L2 hit consults the local table clock too.

diesel::table! {
    l2_mark_people (id) {
        id -> Integer,
        name -> Text,
    }
}

#[cached_query(ttl = 300, tables = "l2_mark_people", redis)]
fn mark_name(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<String>> {
    l2_mark_people::table
        .find(id)
        .select(l2_mark_people::name)
        .first(conn)
        .optional()
}

/// A write in flight on this process's own connection blocks L1 entries of
/// its table; it must block values from Redis just the same, even when the
/// mark in Redis is gone (expired: `mark_ttl` shorter than the transaction).
#[test]
fn l2_hit_is_not_served_while_a_local_write_to_its_table_is_in_flight() {
    let _turn = turn();
    let server = RedisServer::start();
    install(
        &server,
        RedisConfig::new(server.url())
            .prefix("l2-mark")
            .mark_ttl(Duration::from_millis(20)),
    );
    let db = db_with("l2_mark_people");
    let (mut reader, reader_statements) = db.connect_instrumented(dbkit::Instrument::new());
    let (mut writer, _) = db.connect_instrumented(dbkit::Instrument::new());

    mark_name(&mut reader, 2).unwrap(); // starts the generations
    assert_eq!(mark_name(&mut reader, 1).unwrap().as_deref(), Some("ada")); // L1 and Redis

    writer
        .transaction(|w| {
            diesel::update(l2_mark_people::table.find(1))
                .set(l2_mark_people::name.eq("grace"))
                .execute(w)?;
            // The Redis mark expires; the local one is held until the commit.
            thread::sleep(Duration::from_millis(300));
            thread::scope(|s| {
                s.spawn(|| {
                    let before = stats_of("::mark_name");
                    let (ada, ran) =
                        reader_statements.reached(|| mark_name(&mut reader, 1).unwrap());
                    let after = stats_of("::mark_name");
                    assert_eq!(ada.as_deref(), Some("ada"), "not committed yet");
                    assert!(
                        ran,
                        "a value from Redis was served while a write to its table was in \
                         flight on a connection of this process ({} L1 hit, {} L2 hit)",
                        after.hits - before.hits,
                        after.l2_hits - before.l2_hits,
                    );
                });
            });
            QueryResult::Ok(())
        })
        .unwrap();
    dbkit::remove_redis();
}

diesel::table! {
    l2_gap_people (id) {
        id -> Integer,
        name -> Text,
    }
}

#[cached_query(ttl = 300, tables = "l2_gap_people", redis)]
fn gap_name(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<String>> {
    l2_gap_people::table
        .find(id)
        .select(l2_gap_people::name)
        .first(conn)
        .optional()
}

/// A write this process committed while no tier was installed is on its
/// local table clock only. Once a tier is installed again, a value Redis
/// holds from before that write is older than it: Contract 1 forbids
/// serving it.
#[test]
fn l2_hit_is_not_older_than_a_write_committed_before_the_tier_was_installed() {
    let _turn = turn();
    let server = RedisServer::start();
    let config = RedisConfig::new(server.url()).prefix("l2-gap");
    install(&server, config.clone());
    let db = db_with("l2_gap_people");
    let (mut reader, reader_statements) = db.connect_instrumented(dbkit::Instrument::new());
    let (mut writer, _) = db.connect_instrumented(dbkit::Instrument::new());

    gap_name(&mut reader, 2).unwrap(); // starts the generations
    assert_eq!(gap_name(&mut reader, 1).unwrap().as_deref(), Some("ada")); // L1 and Redis

    dbkit::remove_redis();
    diesel::update(l2_gap_people::table.find(1))
        .set(l2_gap_people::name.eq("grace"))
        .execute(&mut writer)
        .unwrap();
    install(&server, config);

    let before = stats_of("::gap_name");
    let (name, ran) = reader_statements.reached(|| gap_name(&mut reader, 1).unwrap());
    let after = stats_of("::gap_name");
    assert_eq!(
        name.as_deref(),
        Some("grace"),
        "served the value Redis held from before a write this process committed \
         (ran the query: {ran}; {} L1 hit, {} L2 hit)",
        after.hits - before.hits,
        after.l2_hits - before.l2_hits,
    );
    dbkit::remove_redis();
}
