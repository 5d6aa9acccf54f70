//! Helpers of the freshness regression tests (`freshness_regressions_*.rs`),
//! for any backend: every test has its own one-row table
//! `(id INTEGER PRIMARY KEY, v INTEGER NOT NULL)` holding `(1, 0)`, a cached
//! function reading `v`, and compares what that function returns with what
//! the database itself says.

use diesel::prelude::*;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::methods::{ExecuteDsl, LoadQuery};
use diesel::sql_types::Integer;

/// The DDL of a test's table, with its one row at `v = 0`.
pub fn table_schema(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
         INSERT INTO {table} VALUES (1, 0);"
    )
}

#[derive(QueryableByName)]
pub struct Value {
    #[diesel(sql_type = Integer)]
    pub v: i32,
}

/// `v` of row 1 of `table`, straight from the database (no cache).
pub fn value<C>(conn: &mut C, table: &str) -> QueryResult<i32>
where
    C: Connection,
    SqlQuery: LoadQuery<'static, C, Value>,
{
    diesel::sql_query(format!("SELECT v FROM {table} WHERE id = 1"))
        .get_result::<Value>(conn)
        .map(|row| row.v)
}

/// Sets `v` of row 1 of `table` (one autocommit `UPDATE` outside a transaction).
pub fn set_value<C>(conn: &mut C, table: &str, v: i32) -> QueryResult<()>
where
    C: Connection,
    SqlQuery: ExecuteDsl<C>,
{
    diesel::sql_query(format!("UPDATE {table} SET v = {v} WHERE id = 1"))
        .execute(conn)
        .map(drop)
}

/// Asserts that a cached read returned what the database says now.
#[track_caller]
pub fn assert_not_stale(cached: i32, database: i32, what: &str) {
    assert_eq!(
        cached, database,
        "stale cached read: the cache served v = {cached} while the database holds v = {database} ({what})"
    );
}
