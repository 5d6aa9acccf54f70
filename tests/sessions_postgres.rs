//! Tracked pools and `#[with_session]` on a real PostgreSQL server: the
//! circuit breaker across a server stop and restart, the timeout error
//! naming the holders, nested checkouts, a panic rolled back.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::postgres::{server, PgServer};
use common::{wait_until, AppError, Gate};
use dbkit::{with_session, BreakerConfig, BreakerState, Pool};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};

fn backend_pid(conn: &mut PgConnection) -> i32 {
    diesel::select(diesel::dsl::sql::<Integer>("pg_backend_pid()"))
        .get_result(conn)
        .unwrap()
}

fn rows(conn: &mut PgConnection) -> i64 {
    diesel::select(diesel::dsl::sql::<BigInt>("(SELECT COUNT(*) FROM orders)"))
        .get_result(conn)
        .unwrap()
}

static ORDERS: OnceLock<Pool<PgConnection>> = OnceLock::new();

#[with_session(pool = ORDERS, transaction)]
fn place_order_then_panic(conn: &mut PgConnection) -> Result<(), AppError> {
    conn.batch_execute("INSERT INTO orders VALUES (1)")?;
    panic!("the handler panics after its insert");
}

#[test]
fn panic_inside_a_transaction_rolls_back_and_returns_the_connection() {
    let url = server().fresh_database();
    let pool = ORDERS.get_or_init(|| Pool::builder().max_size(1).build(&url).unwrap());
    let pid = {
        let mut conn = pool.get().unwrap();
        conn.batch_execute("CREATE TABLE orders (id INTEGER)")
            .unwrap();
        backend_pid(&mut conn)
    };
    assert!(catch_unwind(AssertUnwindSafe(place_order_then_panic)).is_err());
    let mut conn = pool.get().unwrap();
    assert_eq!(rows(&mut conn), 0, "the insert was rolled back");
    assert_eq!(
        backend_pid(&mut conn),
        pid,
        "the same connection is back in the pool"
    );
}

static SHORT: OnceLock<Pool<PgConnection>> = OnceLock::new();

#[with_session(pool = SHORT)]
fn nightly_report(
    conn: &mut PgConnection,
    started: &AtomicBool,
    gate: &Gate,
) -> Result<(), AppError> {
    conn.batch_execute("SELECT 1")?;
    started.store(true, Ordering::SeqCst);
    gate.wait();
    Ok(())
}

#[with_session(pool = SHORT)]
fn lookup(conn: &mut PgConnection) -> Result<i32, AppError> {
    Ok(backend_pid(conn))
}

#[with_session(pool = SHORT)]
fn lookup_twice(conn: &mut PgConnection) -> Result<i32, AppError> {
    backend_pid(conn);
    lookup()
}

#[test]
fn exhausted_pool_names_its_holders_and_nested_checkout_fails_fast() {
    let url = server().fresh_database();
    let pool = SHORT.get_or_init(|| {
        Pool::builder()
            .max_size(2)
            .connection_timeout(Duration::from_millis(500))
            .build(&url)
            .unwrap()
    });
    static STARTED: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
    static GATE: Gate = Gate::new();
    let holders: Vec<_> = (0..2)
        .map(|i| {
            thread::Builder::new()
                .name(format!("report-{i}"))
                .spawn(move || nightly_report(&STARTED[i], &GATE))
                .unwrap()
        })
        .collect();
    wait_until("both reports hold a connection", || {
        STARTED.iter().all(|s| s.load(Ordering::SeqCst))
    });
    let err = match lookup() {
        Err(AppError::Pool(err)) => err,
        other => panic!("expected a pool timeout, got {other:?}"),
    };
    let dbkit::Error::PoolTimeout(timeout) = &err else {
        panic!("expected PoolTimeout, got {err}");
    };
    assert_eq!(timeout.holders.len(), 2, "{err}");
    assert!(
        timeout
            .holders
            .iter()
            .all(|h| h.label.ends_with("::nightly_report")),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("report-0") && message.contains("report-1"),
        "{message}"
    );
    assert!(message.contains("sessions_postgres.rs"), "{message}");
    GATE.open();
    for h in holders {
        h.join().unwrap().unwrap();
    }

    // Both free now: a nested checkout has room and goes ahead ...
    assert!(lookup_twice().is_ok());
    // ... but not when the other connection is taken.
    let other = pool.get().unwrap();
    let started = Instant::now();
    match lookup_twice() {
        Err(AppError::Pool(dbkit::Error::NestedCheckout(nested))) => {
            assert!(nested.held.label.ends_with("::lookup_twice"));
            assert!(nested.requested_by.ends_with("::lookup"));
        }
        other => panic!("expected a nested checkout error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "no wait for the timeout"
    );
    drop(other);
}

static FLAKY: OnceLock<Pool<PgConnection>> = OnceLock::new();

#[with_session(pool = FLAKY)]
fn ping(conn: &mut PgConnection) -> Result<i32, AppError> {
    Ok(backend_pid(conn))
}

#[test]
fn breaker_opens_while_the_server_is_down_and_the_pool_recovers_after_restart() {
    let pg = PgServer::private();
    let url = pg.url("postgres");
    let timeout = Duration::from_secs(1);
    let pool = FLAKY.get_or_init(|| {
        Pool::builder()
            .name("flaky")
            .max_size(2)
            .connection_timeout(timeout)
            .circuit_breaker(BreakerConfig::new(3, Duration::from_secs(30)))
            .build(&url)
            .unwrap()
    });
    ping().unwrap();

    pg.halt();
    // Until the breaker opens, checkouts wait for the timeout (or fail on
    // a dead connection); none hangs, none succeeds.
    let mut slow_failures = 0;
    loop {
        match ping() {
            Err(AppError::Pool(dbkit::Error::CircuitOpen { .. })) => break,
            Err(_) => slow_failures += 1,
            Ok(_) => panic!("the server is down"),
        }
        assert!(
            slow_failures < 20,
            "the breaker never opened: {:?}",
            pool.report().breaker
        );
    }
    let started = Instant::now();
    for _ in 0..100 {
        assert!(matches!(
            ping(),
            Err(AppError::Pool(dbkit::Error::CircuitOpen { .. }))
        ));
    }
    assert!(
        started.elapsed() < timeout,
        "100 refusals took {:?}",
        started.elapsed()
    );
    let report = pool.report();
    assert!(
        matches!(report.breaker, BreakerState::Open { .. }),
        "{:?}",
        report.breaker
    );
    assert!(report.refused_by_breaker >= 101);
    eprintln!("breaker opened after {slow_failures} slow failures");

    pg.resume();
    wait_until("the pool reconnects", || ping().is_ok());
    assert!(matches!(
        pool.report().breaker,
        BreakerState::Closed { failures: 0 }
    ));
    assert!(pool.health(timeout).ok);
}
