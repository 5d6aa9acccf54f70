//! TTL expiry through `#[cached_query]`, driven by dbkit's clock rather than
//! sleeping. A test binary of its own: moving the clock affects the process.

mod common;

use std::time::Duration;

use common::{stats_of, TempDb};
use dbkit::cached_query;
use diesel::prelude::*;

diesel::table! {
    sessions (id) {
        id -> Integer,
        token -> Text,
    }
}

#[cached_query(ttl = "2m", tables = "sessions")]
fn session_token(conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
    sessions::table
        .find(id)
        .select(sessions::token)
        .get_result(conn)
}

#[test]
fn entry_is_served_within_its_ttl_and_refused_after() {
    let db = TempDb::new(
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY, token TEXT NOT NULL);
         INSERT INTO sessions VALUES (1, 'abc');",
    );
    let (mut conn, statements) = db.connect();
    session_token(&mut conn, 1).unwrap();
    dbkit::testing::advance_clock(Duration::from_secs(110));
    session_token(&mut conn, 1).unwrap();
    assert_eq!(statements.count(), 1, "still within its two minutes");
    dbkit::testing::advance_clock(Duration::from_secs(20));
    session_token(&mut conn, 1).unwrap();
    assert_eq!(statements.count(), 2, "expired after two minutes");
    assert_eq!(stats_of("::session_token").expired, 1);
}
