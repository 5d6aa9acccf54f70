//! What `#[cached_query]` stores depends on what the function returns, not on
//! what its return type is called: only the `Ok` of a `Result` is stored,
//! whatever the alias of the `Result` is named.
//!
//! (A struct whose name ends in `Result` is in `output_kind_named_result.rs`.)

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use common::{stats_of, TempDb};
use dbkit::cached_query;
use diesel::prelude::*;

diesel::table! {
    ok_settings (id) {
        id -> Integer,
        value -> Text,
    }
}

/// An application's error type: `Clone`, so nothing stops a `Result` of it
/// from being cloned into the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AppError {
    NotReady,
    Db(String),
}

/// An application's own name for its `Result`: not named `...Result`.
type Fallible<T> = Result<T, AppError>;

/// Whether the service is ready: until it is, the function fails by itself,
/// without a database write that would invalidate anything.
static READY: AtomicBool = AtomicBool::new(false);

#[cached_query(ttl = 300, tables = "ok_settings")]
fn setting(conn: &mut SqliteConnection, id: i32) -> Fallible<String> {
    if !READY.load(Ordering::SeqCst) {
        return Err(AppError::NotReady);
    }
    ok_settings::table
        .find(id)
        .select(ok_settings::value)
        .get_result(conn)
        .map_err(|e| AppError::Db(e.to_string()))
}

#[test]
fn err_of_a_result_alias_not_named_result_is_not_cached() {
    let db = TempDb::new(
        "CREATE TABLE ok_settings (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO ok_settings VALUES (1, 'on');",
    );
    let (mut conn, statements) = db.connect_instrumented(dbkit::Instrument::new());

    assert_eq!(setting(&mut conn, 1), Err(AppError::NotReady));
    READY.store(true, Ordering::SeqCst);

    let (value, ran) = statements.reached(|| setting(&mut conn, 1));
    assert_eq!(
        value,
        Ok("on".to_owned()),
        "an `Err` of `Fallible<T> = Result<T, AppError>` was stored and served again \
         (ran the query: {ran})"
    );
    assert!(ran);

    // Once `Ok`, it is cached as usual.
    let (value, ran) = statements.reached(|| setting(&mut conn, 1));
    assert_eq!(value, Ok("on".to_owned()));
    assert!(!ran, "the `Ok` value is cached");
    assert_eq!(stats_of("::setting").stores, 1, "only the `Ok` was stored");
}
