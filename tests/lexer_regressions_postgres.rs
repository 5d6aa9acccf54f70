//! Writes the SQL scanner must not hide, on a real PostgreSQL server (see
//! `common/postgres.rs`): each test runs a write on an instrumented
//! connection, then a cached read on another connection must see it.
//!
//! Each test has a table and a database of its own: the table clock is
//! process-wide by name, and the tests of a binary run in parallel.

mod common;

use common::postgres::server;
use common::Statements;
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

diesel::table! {
    lx_hash_operator (id) {
        id -> Integer,
        v -> Integer,
    }
}

diesel::table! {
    lx_dollar_unicode (id) {
        id -> Integer,
        v -> Integer,
    }
}

#[cached_query(ttl = 300, tables = "lx_hash_operator")]
fn hash_operator_value(conn: &mut PgConnection, id: i32) -> QueryResult<i32> {
    lx_hash_operator::table
        .find(id)
        .select(lx_hash_operator::v)
        .get_result(conn)
}

#[cached_query(ttl = 300, tables = "lx_dollar_unicode")]
fn dollar_unicode_value(conn: &mut PgConnection, id: i32) -> QueryResult<i32> {
    lx_dollar_unicode::table
        .find(id)
        .select(lx_dollar_unicode::v)
        .get_result(conn)
}

/// A fresh database holding `table (id, v)` with row `(1, 10)`.
fn database_with(table: &str) -> String {
    let url = server().fresh_database();
    PgConnection::establish(&url)
        .unwrap()
        .batch_execute(&format!(
            "CREATE TABLE {table} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
             INSERT INTO {table} VALUES (1, 10);"
        ))
        .unwrap();
    url
}

fn connect(url: &str) -> (PgConnection, Statements) {
    let mut conn = PgConnection::establish(url).expect("connect");
    let statements = Statements::default();
    dbkit::Instrument::new()
        .wrapping(statements.instrumentation())
        .install(&mut conn);
    (conn, statements)
}

/// Caches `read` on a reader, runs `write` through `batch_execute` on another
/// instrumented connection, checks PostgreSQL ran it, then asks the reader's
/// cached function again: it must answer the new value.
fn write_must_reach_the_cache(
    url: &str,
    write: &str,
    read: fn(&mut PgConnection) -> QueryResult<i32>,
    read_uncached: fn(&mut PgConnection) -> i32,
) {
    let (mut reader, reader_statements) = connect(url);
    let (mut writer, _) = connect(url);

    assert_eq!(read(&mut reader).unwrap(), 10);
    let (_, ran) = reader_statements.reached(|| read(&mut reader).unwrap());
    assert!(!ran, "precondition: the second read is a cache hit");

    writer.batch_execute(write).unwrap();
    assert_eq!(
        read_uncached(&mut writer),
        11,
        "precondition: PostgreSQL ran the UPDATE of {write:?}"
    );

    let (value, ran) = reader_statements.reached(|| read(&mut reader).unwrap());
    assert_eq!(
        value, 11,
        "the cached read served the value from before a committed UPDATE hidden \
         from the scanner in {write:?} (ran the query: {ran})"
    );
}

/// In PostgreSQL `#` is the bitwise XOR operator, not a comment (that is
/// MySQL): the UPDATE after it on the same line runs.
#[test]
fn hash_is_an_operator_in_postgres_and_does_not_hide_the_write_after_it() {
    let url = database_with("lx_hash_operator");
    write_must_reach_the_cache(
        &url,
        "SELECT 5 # 3; UPDATE lx_hash_operator SET v = v + 1 WHERE id = 1",
        |c| hash_operator_value(c, 1),
        |c| {
            lx_hash_operator::table
                .find(1)
                .select(lx_hash_operator::v)
                .get_result(c)
                .unwrap()
        },
    );
}

/// PostgreSQL dollar-quote tags follow identifier rules, non-ASCII letters
/// included: `$é$ '$é$` is one string whose body is ` '`, so the quote that
/// looks like it opens a literal is inside it, and the UPDATE runs (the
/// trailing `-- '` is a comment). Read with ASCII-only tags, `$é$` is not a
/// quote and `'$é$; UPDATE ...; -- '` looks like one string literal.
#[test]
fn dollar_quote_tag_with_non_ascii_letters_does_not_hide_the_write_after_it() {
    let url = database_with("lx_dollar_unicode");
    write_must_reach_the_cache(
        &url,
        "SELECT $é$ '$é$; UPDATE lx_dollar_unicode SET v = v + 1 WHERE id = 1; -- '",
        |c| dollar_unicode_value(c, 1),
        |c| {
            lx_dollar_unicode::table
                .find(1)
                .select(lx_dollar_unicode::v)
                .get_result(c)
                .unwrap()
        },
    );
}
