//! What dbkit logs about sessions, captured from `tracing`: a leak is
//! warned about once with its label and call site, and noted again when the
//! connection comes back; a nested checkout on a pool with room goes ahead
//! with a warning.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{logs, wait_until, AppError, TempDb};
use dbkit::{with_session, Pool};
use diesel::prelude::*;
use tracing::Level;

static LEAKY: OnceLock<Pool<SqliteConnection>> = OnceLock::new();

#[with_session(pool = LEAKY, label = "reports::export")]
fn slow_export(conn: &mut SqliteConnection, until: &dyn Fn() -> bool) -> Result<(), AppError> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    // Held until the leak warning has been given.
    wait_until("the leak is reported", until);
    Ok(())
}

#[test]
fn leak_is_warned_once_by_the_watchdog_and_noted_on_return() {
    logs::capture();
    let db = TempDb::new("CREATE TABLE t (x INTEGER);");
    let pool = LEAKY.get_or_init(|| {
        Pool::builder()
            .name("leaky")
            .max_size(2)
            .leak_threshold(Duration::from_millis(50))
            .build(&db.url())
            .unwrap()
    });
    let leak_warnings = || logs::events(Level::WARN, "possible connection leak");
    slow_export(&|| !leak_warnings().is_empty()).unwrap();

    let warnings = leak_warnings();
    assert_eq!(warnings.len(), 1, "warned once: {warnings:?}");
    assert!(warnings[0].contains("`reports::export`"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("session_logs.rs"),
        "names the call site: {}",
        warnings[0]
    );
    let returns = logs::events(Level::INFO, "came back");
    assert_eq!(returns.len(), 1, "{returns:?}");
    assert!(
        returns[0].contains("reports::export") && returns[0].contains("held it for"),
        "{}",
        returns[0]
    );
    assert_eq!(pool.report().leaks, 1);

    // A short session is not a leak.
    drop(pool.get().unwrap());
    assert_eq!(pool.check_leaks(), 0);
    assert_eq!(leak_warnings().len(), 1);
}

static ROOMY: OnceLock<Pool<SqliteConnection>> = OnceLock::new();

#[with_session(pool = ROOMY)]
fn outer(conn: &mut SqliteConnection) -> Result<(), AppError> {
    diesel::sql_query("SELECT 1").execute(conn)?;
    inner()
}

#[with_session(pool = ROOMY)]
fn inner(conn: &mut SqliteConnection) -> Result<(), AppError> {
    diesel::sql_query("SELECT 2").execute(conn)?;
    Ok(())
}

#[test]
fn nested_checkout_with_room_goes_ahead_with_a_warning() {
    logs::capture();
    let db = TempDb::new("CREATE TABLE t (x INTEGER);");
    let pool = ROOMY.get_or_init(|| {
        Pool::builder()
            .name("roomy")
            .max_size(2)
            .build(&db.url())
            .unwrap()
    });
    outer().unwrap();
    outer().unwrap();
    let warnings = logs::events(Level::WARN, "nested checkout from pool `roomy`");
    assert_eq!(warnings.len(), 1, "once per call site: {warnings:?}");
    assert!(
        warnings[0].contains("::outer") && warnings[0].contains("::inner"),
        "{}",
        warnings[0]
    );
    assert_eq!(pool.report().nested_checkouts, 2);
}
