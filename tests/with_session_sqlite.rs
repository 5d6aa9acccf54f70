//! `#[with_session]` and tracked pools on real SQLite: checkout and return,
//! transactions rolled back on `Err` and on panic, the error naming who
//! holds an exhausted pool, nested checkouts, the circuit breaker, the
//! report.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::{wait_until, AppError, Gate, TempDb};
use dbkit::{with_session, BreakerConfig, BreakerState, Pool};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

const SCHEMA: &str = "CREATE TABLE notes (text TEXT NOT NULL);";

fn pool(db: &TempDb, max_size: u32, timeout: Duration) -> Pool<SqliteConnection> {
    Pool::builder()
        .max_size(max_size)
        .connection_timeout(timeout)
        .build(&db.url())
        .expect("build pool")
}

fn notes(pool: &Pool<SqliteConnection>) -> Vec<String> {
    diesel::sql_query("SELECT text FROM notes ORDER BY rowid")
        .load::<Note>(&mut *pool.get().expect("checkout"))
        .expect("select")
        .into_iter()
        .map(|n| n.text)
        .collect()
}

#[derive(QueryableByName)]
struct Note {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

fn insert_note(conn: &mut SqliteConnection, text: &str) -> QueryResult<usize> {
    diesel::sql_query("INSERT INTO notes VALUES (?)")
        .bind::<diesel::sql_types::Text, _>(text)
        .execute(conn)
}

static NOTES: OnceLock<Pool<SqliteConnection>> = OnceLock::new();

#[with_session(pool = NOTES, transaction)]
fn add_note(conn: &mut SqliteConnection, text: &str, reject: bool) -> Result<(), AppError> {
    insert_note(conn, text)?;
    if reject {
        return Err(AppError::Rejected);
    }
    Ok(())
}

#[with_session(pool = NOTES, transaction)]
fn add_note_then_panic(conn: &mut SqliteConnection, text: &str) -> Result<(), AppError> {
    insert_note(conn, text)?;
    panic!("the service function panics after its insert");
}

#[test]
fn transaction_commits_on_ok_rolls_back_on_err_and_on_panic() {
    let db = TempDb::new(SCHEMA);
    let pool = NOTES.get_or_init(|| pool(&db, 1, Duration::from_secs(30)));
    // A temporary table lives as long as its connection: it tells whether
    // the pool's one connection survived the panic or was replaced.
    pool.get()
        .unwrap()
        .batch_execute("CREATE TEMP TABLE marker (x INTEGER)")
        .unwrap();

    add_note("kept", false).unwrap();
    assert!(matches!(add_note("refused", true), Err(AppError::Rejected)));
    let panicked = catch_unwind(AssertUnwindSafe(|| add_note_then_panic("lost")));
    assert!(panicked.is_err());

    assert_eq!(notes(pool), ["kept"], "the Err and the panic rolled back");
    let report = pool.report();
    assert_eq!(report.in_use, 0, "every session ended");
    assert_eq!(report.checkouts, 5);
    pool.get()
        .unwrap()
        .batch_execute("SELECT x FROM marker")
        .expect("the connection that saw the panic is back in the pool, not discarded");
}

static NESTED: OnceLock<Pool<SqliteConnection>> = OnceLock::new();

#[with_session(pool = NESTED)]
fn outer_calls_inner(conn: &mut SqliteConnection) -> Result<(), AppError> {
    conn.batch_execute("SELECT 1")?;
    inner()
}

#[with_session(pool = NESTED)]
fn outer_passes_its_connection(conn: &mut SqliteConnection) -> Result<(), AppError> {
    inner_with_conn(conn)
}

#[with_session(pool = NESTED)]
fn inner(conn: &mut SqliteConnection) -> Result<(), AppError> {
    conn.batch_execute("SELECT 2").map_err(Into::into)
}

#[test]
fn nested_checkout_on_a_full_pool_fails_at_once_naming_both_sites() {
    let db = TempDb::new(SCHEMA);
    // A long timeout: were the nested checkout left to wait, this test
    // would take a minute instead of failing.
    let timeout = Duration::from_secs(60);
    let pool = NESTED.get_or_init(|| pool(&db, 1, timeout));

    let started = Instant::now();
    let err = match outer_calls_inner() {
        Err(AppError::Pool(err)) => err,
        other => panic!("expected a nested-checkout error, got {other:?}"),
    };
    assert!(started.elapsed() < timeout, "detected without waiting");
    let dbkit::Error::NestedCheckout(nested) = &err else {
        panic!("expected NestedCheckout, got {err}");
    };
    assert!(nested.held.label.ends_with("::outer_calls_inner"), "{err}");
    assert!(nested.requested_by.ends_with("::inner"), "{err}");
    assert!(
        nested.held.location.contains("with_session_sqlite.rs"),
        "{err}"
    );
    assert!(
        nested.requested_at.contains("with_session_sqlite.rs"),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("outer_calls_inner"), "{message}");
    assert!(
        message.contains("_with_conn(conn, ...)"),
        "says what to do: {message}"
    );

    // The calling convention that avoids it: pass the connection.
    outer_passes_its_connection().unwrap();
    assert_eq!(pool.report().nested_checkouts, 1);
    assert_eq!(pool.report().in_use, 0);
}

static BUSY: OnceLock<Pool<SqliteConnection>> = OnceLock::new();

#[with_session(pool = BUSY)]
fn hold_until(
    conn: &mut SqliteConnection,
    entered: &AtomicBool,
    gate: &Gate,
) -> Result<(), AppError> {
    conn.batch_execute("SELECT 1")?;
    entered.store(true, Ordering::SeqCst);
    gate.wait();
    Ok(())
}

#[test]
fn pool_timeout_names_the_sessions_holding_the_connections() {
    let db = TempDb::new(SCHEMA);
    let pool = BUSY.get_or_init(|| pool(&db, 1, Duration::from_millis(300)));
    static ENTERED: AtomicBool = AtomicBool::new(false);
    static GATE: Gate = Gate::new();
    let holder = thread::Builder::new()
        .name("report-export".into())
        .spawn(|| hold_until(&ENTERED, &GATE))
        .unwrap();
    wait_until("the holder has its connection", || {
        ENTERED.load(Ordering::SeqCst)
    });

    let err = pool.get().expect_err("the only connection is held");
    let dbkit::Error::PoolTimeout(timeout) = &err else {
        panic!("expected PoolTimeout, got {err}");
    };
    assert_eq!(timeout.holders.len(), 1);
    let holder_info = &timeout.holders[0];
    assert!(holder_info.label.ends_with("::hold_until"), "{err}");
    assert!(
        holder_info.location.contains("with_session_sqlite.rs"),
        "{err}"
    );
    assert_eq!(holder_info.thread, "report-export");
    let message = err.to_string();
    for part in [
        "hold_until",
        "report-export",
        "with_session_sqlite.rs",
        "1 of its 1 connections",
    ] {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    assert_eq!(pool.report().timeouts, 1);

    GATE.open();
    holder.join().unwrap().unwrap();
    drop(pool.get().expect("free again"));
}

#[with_session]
fn count_notes(conn: &mut SqliteConnection) -> Result<i64, AppError> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT COUNT(*) FROM notes)",
    ))
    .get_result(conn)
    .map_err(Into::into)
}

#[test]
fn default_pool_is_used_and_a_missing_one_is_a_clear_error() {
    // The only test of this binary that uses the default pool.
    match count_notes() {
        Err(AppError::Pool(err @ dbkit::Error::NoDefaultPool { .. })) => {
            assert!(err.to_string().contains("set_default_pool"), "{err}");
        }
        other => panic!("expected NoDefaultPool, got {other:?}"),
    }
    let db = TempDb::new(SCHEMA);
    dbkit::set_default_pool(pool(&db, 2, Duration::from_secs(30)));
    assert_eq!(count_notes().unwrap(), 0);
}

#[test]
fn report_lists_open_sessions_longest_held_first() {
    let db = TempDb::new(SCHEMA);
    let pool: Pool<SqliteConnection> = Pool::builder()
        .name("report-order")
        .max_size(3)
        .build(&db.url())
        .unwrap();
    let first = pool.get_labeled("first").unwrap();
    thread::sleep(Duration::from_millis(30));
    let mut second = pool.get().unwrap();
    assert!(
        dbkit::is_instrumented(&mut *second),
        "the pool instruments its connections"
    );

    let report = dbkit::report();
    let ours: Vec<_> = report
        .sessions
        .iter()
        .filter(|s| s.pool == "report-order")
        .collect();
    assert_eq!(ours.len(), 2);
    assert_eq!(ours[0].label, "first");
    assert!(ours[0].held_ms >= ours[1].held_ms);
    assert!(
        ours[1].label.contains("with_session_sqlite.rs"),
        "a plain get is labelled with its call site"
    );
    let pool_report = report
        .pools
        .iter()
        .find(|p| p.name == "report-order")
        .unwrap();
    assert_eq!((pool_report.in_use, pool_report.max_size), (2, 3));
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["sessions"].as_array().is_some_and(|s| !s.is_empty()));
    drop((first, second));
    assert!(pool.sessions().is_empty());
}

#[test]
fn breaker_fails_checkouts_at_once_while_the_database_cannot_be_opened() {
    let dir = std::env::temp_dir().join(format!("dbkit-breaker-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = dir.join("db.sqlite").to_string_lossy().into_owned();
    let timeout = Duration::from_secs(2);
    let pool: Pool<SqliteConnection> = Pool::builder()
        .max_size(1)
        .connection_timeout(timeout)
        // A cool-down longer than the timeout: a refused checkout cannot
        // be the half-open probe that waits.
        .circuit_breaker(BreakerConfig::new(3, Duration::from_secs(30)))
        .build_unchecked(&url)
        .unwrap();

    // The directory does not exist: every attempt to open the file fails.
    let first = pool.get().expect_err("cannot open");
    assert!(
        matches!(
            first,
            dbkit::Error::PoolTimeout(_) | dbkit::Error::CircuitOpen { .. }
        ),
        "{first}"
    );
    wait_until("the breaker opens", || {
        matches!(pool.report().breaker, BreakerState::Open { .. })
    });
    let started = Instant::now();
    let err = pool.get().expect_err("breaker open");
    assert!(
        started.elapsed() < timeout,
        "failed at once, not after the timeout"
    );
    let dbkit::Error::CircuitOpen {
        failures,
        last_error,
        ..
    } = &err
    else {
        panic!("expected CircuitOpen, got {err}");
    };
    assert!(*failures >= 3);
    assert!(last_error.contains("unable to open"), "{err}");
    assert!(pool.report().refused_by_breaker >= 1);

    // The database becomes reachable: the pool recovers by itself.
    std::fs::create_dir_all(&dir).unwrap();
    wait_until("the pool connects again", || pool.get().is_ok());
    assert!(matches!(
        pool.report().breaker,
        BreakerState::Closed { failures: 0 }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn health_reports_latency_sizes_and_breaker() {
    let db = TempDb::new(SCHEMA);
    let pool = pool(&db, 2, Duration::from_secs(5));
    let held = pool.get().unwrap();
    let health = pool.health(Duration::from_secs(1));
    assert!(health.ok, "{:?}", health.error);
    assert_eq!((health.max_size, health.in_use, health.waiters), (2, 1, 0));
    assert_eq!(health.breaker, BreakerState::Closed { failures: 0 });
    drop(held);
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["ok"], true);
}

#[derive(Debug)]
struct ReplacesInstrumentation;

impl diesel::r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error>
    for ReplacesInstrumentation
{
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.set_instrumentation(|_: diesel::connection::InstrumentationEvent<'_>| {});
        Ok(())
    }
}

#[test]
fn the_users_instrumentation_is_called_after_dbkits_and_never_silently_replaces_it() {
    let db = TempDb::new(SCHEMA);
    let statements = common::Statements::default();
    let counter = statements.clone();
    let pool: Pool<SqliteConnection> = Pool::builder()
        .max_size(1)
        .instrumentation(move || counter.instrumentation())
        .build(&db.url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    assert!(dbkit::is_instrumented(&mut *conn));
    let ((), ran) = statements.reached(|| conn.batch_execute("SELECT 1").unwrap());
    assert!(ran, "the user's instrumentation sees the statements too");

    // A customizer that swaps the instrumentation out would make cached
    // reads stale after this pool's writes: the pool refuses the connection.
    let err = Pool::<SqliteConnection>::builder()
        .max_size(1)
        .connection_timeout(Duration::from_millis(500))
        .connection_customizer(Box::new(ReplacesInstrumentation))
        .build(&db.url())
        .unwrap_err();
    assert!(
        err.to_string().contains("Builder::instrumentation"),
        "{err}"
    );
}
