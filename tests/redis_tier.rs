//! The Redis tier against a real `redis-server` (started per test on a free
//! loopback port): L2 hits after L1 lost the entry, the shared table clock
//! (generations and write marks), corrupt values, password URLs, and the
//! freshness checker with L2 in the path.
//!
//! One tier per process: the tests take turns (`TURN`), each with its own
//! server and prefix.

mod common;

use std::sync::Mutex;

use common::freshness::{self, fresh_counters};
use common::people::{name_of, people_db, rename, start_generations};
use common::redis::RedisServer;
use common::stats_of;
use dbkit::{cached_query, RedisConfig};
use diesel::prelude::*;
use redis::TypedCommands;

static TURN: Mutex<()> = Mutex::new(());

/// Installs a tier on `server` under `prefix`; waits for its bus.
fn install(server: &RedisServer, prefix: &str) {
    dbkit::set_redis(RedisConfig::new(server.url()).prefix(prefix)).expect("a valid URL");
    server.wait_for_bus();
}

#[test]
fn l2_answers_after_l1_evicted_the_entry_and_fills_l1_again() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let server = RedisServer::start();
    install(&server, "t-evict");
    let db = people_db();
    let (mut conn, statements) = db.connect_instrumented(dbkit::Instrument::new());
    start_generations(&mut conn);
    let before = l2_figures("::name_of");

    let (ada, ran) = statements.reached(|| name_of(&mut conn, 1).unwrap());
    assert_eq!(
        (ada.as_deref(), ran),
        (Some("ada"), true),
        "first call runs the query"
    );
    let (_, ran) = statements.reached(|| name_of(&mut conn, 2).unwrap());
    assert!(ran, "key 2 runs its query and evicts key 1 from L1");

    let (ada, ran) = statements.reached(|| name_of(&mut conn, 1).unwrap());
    assert_eq!(ada.as_deref(), Some("ada"));
    assert!(!ran, "key 1 came from Redis, not the database");
    let (_, ran) = statements.reached(|| name_of(&mut conn, 1).unwrap());
    assert!(!ran, "and the L2 hit filled L1");

    assert!(stats_of("::name_of").redis);
    let after = l2_figures("::name_of");
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1, 2, 0),
        "one L2 hit, two values stored, no errors"
    );
    dbkit::remove_redis();
}

#[test]
fn a_commit_bumps_the_shared_generation_and_marks_block_while_in_flight() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let server = RedisServer::start();
    install(&server, "t-clock");
    let db = people_db();
    let (mut conn, _) = db.connect_instrumented(dbkit::Instrument::new());
    let mut redis = server.client();

    assert_eq!(name_of(&mut conn, 3).unwrap().as_deref(), Some("edsger"));
    name_of(&mut conn, 1).unwrap(); // evicts 3
    name_of(&mut conn, 3).unwrap(); // stored in Redis under the generation now
    let generation = |redis: &mut redis::Connection| -> Option<isize> {
        redis.get_int("t-clock:gen:people").expect("GET")
    };
    let started = generation(&mut redis).expect("the first miss started the generation");

    conn.transaction(|conn| {
        rename(conn, 3, "dijkstra");
        let marks = redis.get_int("t-clock:mark:people").expect("GET");
        assert_eq!(marks, Some(1), "a write in flight is marked in Redis");
        assert_eq!(
            generation(&mut redis),
            Some(started),
            "not bumped before the commit"
        );
        QueryResult::Ok(())
    })
    .unwrap();
    assert_eq!(
        redis.get_int("t-clock:mark:people").expect("GET"),
        None,
        "the commit released the mark"
    );
    assert_eq!(
        generation(&mut redis),
        Some(started + 1),
        "the commit bumped it"
    );

    // A rollback releases without bumping.
    let rolled_back: QueryResult<()> = conn.transaction(|conn| {
        rename(conn, 3, "never");
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(rolled_back.is_err());
    assert_eq!(redis.get_int("t-clock:mark:people").expect("GET"), None);
    assert_eq!(generation(&mut redis), Some(started + 1));

    // Evict key 3 from L1: Redis holds the value stored before the commit,
    // under the old generation. It must be refused, not served.
    name_of(&mut conn, 1).unwrap();
    let before = stats_of("::name_of");
    assert_eq!(name_of(&mut conn, 3).unwrap().as_deref(), Some("dijkstra"));
    let after = stats_of("::name_of");
    assert_eq!(after.l2_stale - before.l2_stale, 1, "{after:?}");
    assert_eq!(after.l2_hits, before.l2_hits);

    // `invalidate_table` reaches Redis too.
    dbkit::invalidate_table("people");
    assert_eq!(generation(&mut redis), Some(started + 2));
    let report = dbkit::report().redis.expect("a tier is installed");
    assert!(report.invalidations_published >= 2, "{report:?}");
    dbkit::remove_redis();
}

#[test]
fn a_garbage_value_is_a_miss_counted_and_replaced() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let server = RedisServer::start();
    install(&server, "t-garbage");
    let db = people_db();
    let (mut conn, statements) = db.connect_instrumented(dbkit::Instrument::new());
    let mut redis = server.client();

    start_generations(&mut conn);
    name_of(&mut conn, 1).unwrap();
    let keys = redis.keys("t-garbage:v:*").expect("KEYS");
    assert_eq!(keys.len(), 1, "one value stored: {keys:?}");
    assert!(
        keys[0].contains("::name_of@0.1.0:"),
        "key holds the function path and crate version: {}",
        keys[0]
    );
    for garbage in [&b"not dbkit's"[..], b"DBK\x01\0\0\0\0\0\0\0\0\0\x05"] {
        redis.set(&keys[0], garbage).expect("SET garbage");
        name_of(&mut conn, 2).unwrap(); // evicts key 1 from L1
        let before = stats_of("::name_of");
        let (ada, ran) = statements.reached(|| name_of(&mut conn, 1));
        assert_eq!(
            ada.unwrap().as_deref(),
            Some("ada"),
            "no error reaches the caller"
        );
        assert!(ran, "a garbage value is a miss");
        let after = stats_of("::name_of");
        assert_eq!(after.l2_corrupt - before.l2_corrupt, 1, "{after:?}");
    }
    assert_eq!(dbkit::report().redis.unwrap().corrupt_values, 2);

    // The miss stored a good value over the garbage.
    name_of(&mut conn, 2).unwrap();
    let (_, ran) = statements.reached(|| name_of(&mut conn, 1).unwrap());
    assert!(!ran, "served from Redis again");
    dbkit::remove_redis();
}

#[test]
fn a_password_url_works_and_a_wrong_password_only_falls_back() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let server = RedisServer::start_with_password("s3cret");
    install(&server, "t-auth");
    let db = people_db();
    let (mut conn, statements) = db.connect_instrumented(dbkit::Instrument::new());
    start_generations(&mut conn);
    name_of(&mut conn, 1).unwrap();
    name_of(&mut conn, 2).unwrap();
    let (_, ran) = statements.reached(|| name_of(&mut conn, 1).unwrap());
    assert!(!ran, "L2 works with a password URL");
    let report = dbkit::report().redis.unwrap();
    assert_eq!(
        report.url,
        format!("redis://:***@127.0.0.1:{}", server.port)
    );
    assert!(!serde_json::to_string(&dbkit::report())
        .unwrap()
        .contains("s3cret"));

    let wrong = format!("redis://:wrong@127.0.0.1:{}", server.port);
    dbkit::set_redis(RedisConfig::new(wrong).prefix("t-auth")).unwrap();
    for _ in 0..5 {
        let (ada, ran) = statements.reached(|| name_of(&mut conn, 1));
        assert_eq!(ada.unwrap().as_deref(), Some("ada"));
        assert!(
            ran,
            "bus down: L1 not served; Redis refuses: the database answers"
        );
    }
    let report = dbkit::report().redis.unwrap();
    assert!(report.failures + report.short_circuited >= 5, "{report:?}");
    assert!(!report.bus_subscribed);
    assert!(
        dbkit::report()
            .warnings
            .iter()
            .any(|w| w.contains("invalidation bus is not subscribed")),
        "the report says why L1 is not serving"
    );
    dbkit::remove_redis();
}

#[cached_query(ttl = 300, tables = "fresh_counters", redis, max_entries = 4)]
fn counter(conn: &mut SqliteConnection, id: i32) -> QueryResult<i64> {
    fresh_counters::table
        .find(id)
        .select(fresh_counters::value)
        .get_result(conn)
}

/// Contract 1 with L2 in the path: L1 holds half the keys, so reads go
/// through Redis all the time while writers commit.
#[test]
fn no_read_through_l2_is_older_than_the_last_commit_before_it_began() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let server = RedisServer::start();
    install(&server, "t-fresh");
    let keys = 8;
    let db = freshness::sqlite_counters(keys);
    let outcome = freshness::run(
        keys,
        1,
        3,
        100_000,
        || freshness::sqlite_connect(&db),
        freshness::sqlite_write,
        |conn, key| counter(conn, key).expect("read"),
    );
    let stats = stats_of("::counter");
    freshness::assert_fresh("sqlite + redis", &outcome, &stats);
    assert!(stats.l2_hits > 0, "reads went through Redis: {stats:?}");
    assert!(
        stats.l2_stale > 0,
        "and commits made Redis refuse values: {stats:?}"
    );
    dbkit::remove_redis();
}

/// (l2 hits, l2 stores, l2 errors) of a function, zeros before its first call.
fn l2_figures(suffix: &str) -> (u64, u64, u64) {
    dbkit::cache_stats()
        .into_iter()
        .find(|s| s.function.ends_with(suffix))
        .map_or((0, 0, 0), |s| (s.l2_hits, s.l2_stores, s.l2_errors))
}
