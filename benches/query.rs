//! What a hit saves: a `#[cached_query]` hit against the same diesel
//! `SELECT` by primary key run uncached on a plain diesel connection (what
//! the user has without dbkit; the statement hook's own cost is the
//! `write_hook` benchmark's), on in-memory SQLite (the cheapest
//! database there is) and on a PostgreSQL server over loopback that the
//! benchmark starts itself (with `--features postgres`).
//!
//! Run: `cargo bench --bench query --features postgres`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

#[cfg(feature = "postgres")]
#[path = "../tests/common/postgres.rs"]
mod postgres;

diesel::table! {
    bench_users (id) {
        id -> Integer,
        name -> Text,
        email -> Text,
    }
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = bench_users)]
#[allow(dead_code)] // carried, as a real row would be
struct User {
    id: i32,
    name: String,
    email: String,
}

const ROWS: i32 = 1_000;

const SCHEMA: &str =
    "CREATE TABLE bench_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
    INSERT INTO bench_users (id, name, email)
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
    SELECT i, 'user ' || i, 'user' || i || '@example.com' FROM n;";

#[cfg(feature = "postgres")]
const PG_SCHEMA: &str =
    "CREATE TABLE bench_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
    INSERT INTO bench_users SELECT i, 'user ' || i, 'user' || i || '@example.com'
    FROM generate_series(1, 1000) AS i;";

fn user_sqlite(conn: &mut SqliteConnection, id: i32) -> QueryResult<User> {
    bench_users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
}

#[dbkit::cached_query(ttl = 300, tables = "bench_users")]
fn cached_user_sqlite(conn: &mut SqliteConnection, id: i32) -> QueryResult<User> {
    user_sqlite(conn, id)
}

fn sqlite(c: &mut Criterion) {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    conn.batch_execute(SCHEMA).unwrap();
    for id in 1..=ROWS {
        cached_user_sqlite(&mut conn, id).unwrap();
    }
    let mut group = c.benchmark_group("query/sqlite-memory");
    let mut id = 0;
    let mut next = || {
        id = id % ROWS + 1;
        black_box(id)
    };
    group.bench_function("diesel select by pk", |b| {
        b.iter(|| black_box(user_sqlite(&mut conn, next()).unwrap()))
    });
    group.bench_function("dbkit #[cached_query] hit", |b| {
        b.iter(|| black_box(cached_user_sqlite(&mut conn, next()).unwrap()))
    });
    group.finish();
}

#[cfg(feature = "postgres")]
mod pg {
    use super::*;

    pub fn user(conn: &mut PgConnection, id: i32) -> QueryResult<User> {
        bench_users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
    }

    #[dbkit::cached_query(ttl = 300, tables = "bench_users")]
    pub fn cached_user(conn: &mut PgConnection, id: i32) -> QueryResult<User> {
        user(conn, id)
    }
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    let server = postgres::server();
    let url = server.fresh_database();
    let mut conn = PgConnection::establish(&url).unwrap();
    conn.batch_execute(PG_SCHEMA).unwrap();
    for id in 1..=ROWS {
        pg::cached_user(&mut conn, id).unwrap();
    }
    let mut group = c.benchmark_group("query/postgres-loopback");
    let mut id = 0;
    let mut next = || {
        id = id % ROWS + 1;
        black_box(id)
    };
    group.bench_function("diesel select by pk", |b| {
        b.iter(|| black_box(pg::user(&mut conn, next()).unwrap()))
    });
    group.bench_function("dbkit #[cached_query] hit", |b| {
        b.iter(|| black_box(pg::cached_user(&mut conn, next()).unwrap()))
    });
    group.finish();
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    eprintln!("query/postgres-loopback: build with `--features postgres` to measure it");
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
