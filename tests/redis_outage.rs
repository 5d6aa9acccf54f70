//! Contract 4 against a real `redis-server`: killed mid-run, then frozen
//! (answers nothing), the tier costs callers no error and no stale result,
//! counts what happened, logs it at most once per interval, and serves from
//! Redis again once the server is back.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::people::{name_of, people_db, rename, start_generations};
use common::redis::RedisServer;
use common::{logs, stats_of, wait_until, TempDb};
use dbkit::{BreakerConfig, RedisConfig};
use diesel::SqliteConnection;
use tracing::Level;

static TURN: Mutex<()> = Mutex::new(());

fn setup(server: &RedisServer, prefix: &str) -> (TempDb, SqliteConnection, common::Statements) {
    logs::capture();
    let config = RedisConfig::new(server.url())
        .prefix(prefix)
        .command_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(100))
        // A write mark sent to a frozen server may land after its release
        // was given up on: it blocks L2 until it expires, by design.
        .mark_ttl(Duration::from_secs(2))
        .breaker(BreakerConfig::new(3, Duration::from_millis(300)));
    dbkit::set_redis(config).expect("a valid URL");
    server.wait_for_bus();
    let db = people_db();
    let (mut conn, statements) = db.connect_instrumented(dbkit::Instrument::new());
    start_generations(&mut conn);
    (db, conn, statements)
}

/// Writes a new name for key 1, then reads it through the cache twice (the
/// second time after key 2 evicted it from L1): both must see the write.
fn round(conn: &mut SqliteConnection, n: usize) {
    let name = format!("name-{n}");
    rename(conn, 1, &name); // the database is up: the write succeeds
    let first = name_of(conn, 1).expect("no Redis failure reaches the caller");
    name_of(conn, 2).expect("no Redis failure reaches the caller");
    let again = name_of(conn, 1).expect("no Redis failure reaches the caller");
    assert_eq!(first.as_deref(), Some(name.as_str()), "round {n}");
    assert_eq!(again.as_deref(), Some(name.as_str()), "round {n}");
}

/// Waits until the bus is back and key 1 is answered by Redis again.
fn wait_for_recovery(conn: &mut SqliteConnection, statements: &common::Statements) {
    wait_until("the bus subscribed again", || {
        dbkit::report().redis.is_some_and(|r| r.bus_subscribed)
    });
    let conn = std::cell::RefCell::new(conn);
    wait_until("Redis answers a lookup again", || {
        let conn = &mut **conn.borrow_mut();
        name_of(conn, 1).unwrap();
        name_of(conn, 2).unwrap();
        let (_, ran) = statements.reached(|| name_of(conn, 1).unwrap());
        !ran
    });
}

#[test]
fn a_server_killed_mid_run_costs_no_call_and_the_tier_recovers_after_restart() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let mut server = RedisServer::start();
    let (_db, mut conn, statements) = setup(&server, "t-kill");
    let hits_before = stats_of("::name_of").l2_hits;

    for n in 0..60 {
        if n == 20 {
            let (_, ran) = statements.reached(|| name_of(&mut conn, 1).unwrap());
            assert!(!ran, "an L1 hit while the bus is up");
            server.halt();
            wait_until("the bus noticed", || {
                dbkit::report().redis.is_some_and(|r| !r.bus_subscribed)
            });
            let (name, ran) = statements.reached(|| name_of(&mut conn, 1).unwrap());
            assert_eq!(name.as_deref(), Some("name-19"));
            assert!(
                ran,
                "bus lost: L1 entries are not served (another process may write)"
            );
        }
        if n == 40 {
            server.resume();
        }
        round(&mut conn, n);
    }
    let during = dbkit::report().redis.expect("a tier is installed");
    assert!(during.failures > 0, "{during:?}");
    assert!(during.short_circuited > 0, "the breaker opened: {during:?}");
    assert!(during.bus_losses >= 1, "{during:?}");

    wait_for_recovery(&mut conn, &statements);
    let after = dbkit::report().redis.unwrap();
    assert_eq!(
        after.pending_invalidations, 0,
        "what Redis missed was published: {after:?}"
    );
    assert!(stats_of("::name_of").l2_hits > hits_before);
    round(&mut conn, 1000);

    // Every failure was counted; each kind of operation (lookup, store,
    // write mark, invalidation, ...) logged at most once in the interval,
    // not once per call.
    let here = format!("127.0.0.1:{}", server.port);
    let warnings: Vec<String> = logs::events(Level::WARN, "falling back to the local cache")
        .into_iter()
        .filter(|w| w.contains(&here))
        .collect();
    let calls = during.failures + during.short_circuited;
    assert!(
        !warnings.is_empty() && warnings.len() <= 6 && calls > 3 * warnings.len() as u64,
        "{} warnings for {calls} failed or refused calls: {warnings:#?}",
        warnings.len(),
    );
    dbkit::remove_redis();
}

#[test]
fn a_frozen_server_times_out_opens_the_breaker_and_costs_no_call() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let server = RedisServer::start();
    let (_db, mut conn, statements) = setup(&server, "t-freeze");

    server.freeze();
    for n in 0..30 {
        round(&mut conn, n);
    }
    let frozen = dbkit::report().redis.expect("a tier is installed");
    assert!(frozen.timeouts > 0, "{frozen:?}");
    assert!(
        frozen.short_circuited > frozen.failures,
        "the breaker spared most calls the timeout: {frozen:?}"
    );
    server.thaw();
    wait_for_recovery(&mut conn, &statements);
    round(&mut conn, 1000);
    dbkit::remove_redis();
}
