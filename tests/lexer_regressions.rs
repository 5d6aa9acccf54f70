//! Writes the SQL scanner must not hide, on SQLite: each test runs a write on
//! an instrumented connection, then a cached read on another connection must
//! see it. (PostgreSQL's are in `lexer_regressions_postgres.rs`.)
//!
//! Each test has a table of its own: the table clock is process-wide by name,
//! and the tests of a binary run in parallel.

mod common;

use common::TempDb;
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

diesel::table! {
    lx_binds_marker (id) {
        id -> Integer,
        v -> Integer,
    }
}

#[cached_query(ttl = 300, tables = "lx_binds_marker")]
fn binds_marker_value(conn: &mut SqliteConnection, id: i32) -> QueryResult<i32> {
    lx_binds_marker::table
        .find(id)
        .select(lx_binds_marker::v)
        .get_result(conn)
}

/// `batch_execute` hands the instrumentation the user's own text, with no
/// binds after it: a ` -- binds: ` in it is the user's (here, a comment),
/// not diesel's marker, and the statements after it run.
#[test]
fn user_text_containing_the_binds_marker_does_not_hide_the_write_after_it() {
    let db = TempDb::new(
        "CREATE TABLE lx_binds_marker (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
         INSERT INTO lx_binds_marker VALUES (1, 10);",
    );
    let (mut reader, reader_statements) = db.connect_instrumented(dbkit::Instrument::new());
    let (mut writer, _) = db.connect_instrumented(dbkit::Instrument::new());

    assert_eq!(binds_marker_value(&mut reader, 1).unwrap(), 10);
    let (_, ran) = reader_statements.reached(|| binds_marker_value(&mut reader, 1).unwrap());
    assert!(!ran, "precondition: the second read is a cache hit");

    writer
        .batch_execute("SELECT 1; -- binds: x\nUPDATE lx_binds_marker SET v = v + 1 WHERE id = 1")
        .unwrap();
    let in_db: i32 = lx_binds_marker::table
        .find(1)
        .select(lx_binds_marker::v)
        .get_result(&mut writer)
        .unwrap();
    assert_eq!(
        in_db, 11,
        "precondition: SQLite ran the UPDATE after the comment"
    );

    let (value, ran) = reader_statements.reached(|| binds_marker_value(&mut reader, 1).unwrap());
    assert_eq!(
        value, 11,
        "the cached read served the value from before a committed UPDATE that followed \
         a user's `-- binds: ` comment in batch_execute (ran the query: {ran})"
    );
}
