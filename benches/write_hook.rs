//! The statement hook's cost: the same diesel INSERT, SELECT and UPDATE by
//! primary key on a plain connection, on one whose instrumentation only
//! renders each statement's text into a reused buffer (diesel's rendering,
//! the floor of any hook that reads the SQL), on one with dbkit's
//! instrumentation, and on one with it but query statistics off (the table
//! clock alone), side by side, on in-memory SQLite and (with the `postgres`
//! feature) on a PostgreSQL server over loopback that the benchmark starts
//! itself. dbkit's share is (dbkit - render only).
//!
//! Run: `cargo bench --bench write_hook --features postgres`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

#[cfg(feature = "postgres")]
#[path = "../tests/common/postgres.rs"]
mod postgres;

diesel::table! {
    bench_rows (id) {
        id -> Integer,
        name -> Text,
    }
}

/// The floor: renders each statement as diesel displays it, nothing more.
struct RenderOnly(String);

impl diesel::connection::Instrumentation for RenderOnly {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
            self.0.clear();
            let _ = write!(self.0, "{query}");
            black_box(&self.0);
        }
    }
}

fn run_pair<C>(c: &mut Criterion, backend: &str, mut connect: impl FnMut() -> C)
where
    C: Connection + diesel::connection::LoadConnection,
    C::Backend: diesel::backend::Backend,
    i32: diesel::deserialize::FromSql<diesel::sql_types::Integer, C::Backend>
        + diesel::serialize::ToSql<diesel::sql_types::Integer, C::Backend>,
    String: diesel::deserialize::FromSql<diesel::sql_types::Text, C::Backend>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, C::Backend>,
    (i32, String): diesel::Queryable<(diesel::sql_types::Integer, diesel::sql_types::Text), C::Backend>,
    for<'a> diesel::query_builder::InsertStatement<
        bench_rows::table,
        <diesel::dsl::Eq<bench_rows::name, &'a str> as diesel::Insertable<bench_rows::table>>::Values,
    >: diesel::query_dsl::methods::ExecuteDsl<C>,
    for<'a> diesel::dsl::Find<bench_rows::table, i32>:
        diesel::query_dsl::LoadQuery<'a, C, (i32, String)>,
    for<'a> diesel::dsl::Update<
        diesel::dsl::Find<bench_rows::table, i32>,
        diesel::dsl::Eq<bench_rows::name, &'a str>,
    >: diesel::query_dsl::methods::ExecuteDsl<C>,
{
    let mut render_only = connect();
    render_only.set_instrumentation(RenderOnly(String::with_capacity(256)));
    let mut hooked = connect();
    dbkit::instrument(&mut hooked);
    let mut no_stats = connect();
    dbkit::Instrument::new()
        .query_stats(false)
        .install(&mut no_stats);
    let mut conns = [connect(), render_only, hooked, no_stats];
    const LABELS: [&str; 4] = [
        "plain diesel",
        "render only",
        "dbkit instrumented",
        "dbkit, query stats off",
    ];
    /// The floor every other variant alternates with.
    const RENDER_ONLY: usize = 1;

    let insert = |conn: &mut C| {
        diesel::insert_into(bench_rows::table)
            .values(bench_rows::name.eq("x"))
            .execute(conn)
            .unwrap();
    };
    let select = |conn: &mut C| {
        black_box(
            bench_rows::table
                .find(1)
                .get_result::<(i32, String)>(conn)
                .unwrap(),
        );
    };
    let update = |conn: &mut C| {
        diesel::update(bench_rows::table.find(1))
            .set(bench_rows::name.eq("y"))
            .execute(conn)
            .unwrap();
    };
    let statements: [Statement<'_, C>; 3] = [
        ("insert", &insert),
        ("select by pk", &select),
        ("update by pk", &update),
    ];

    // Each variant is timed in blocks that alternate with untimed blocks
    // of the render-only floor (render only alternates with dbkit), so the
    // two sides of a ratio see the same machine states.
    let mut group = c.benchmark_group(format!("write-hook/{backend}"));
    for (what, statement) in statements {
        for (i, label) in LABELS.iter().enumerate() {
            let other = if i == RENDER_ONLY { 2 } else { RENDER_ONLY };
            group.bench_function(format!("{what}: {label}"), |b| {
                b.iter_custom(|iters| {
                    let (timed, untimed) = pair(&mut conns, i, other);
                    alternating(iters, wall_time, &mut || statement(timed), &mut || {
                        statement(untimed)
                    })
                })
            });
        }
    }
    group.finish();

    // The hook costs client CPU only; over a network the wall time swings
    // far more than that. This group times the calling thread's CPU, which
    // is stable: (instrumented - plain) is what dbkit adds per statement.
    let mut group = c.benchmark_group(format!("write-hook-client-cpu/{backend}"));
    for (i, label) in LABELS.iter().enumerate() {
        let other = if i == RENDER_ONLY { 2 } else { RENDER_ONLY };
        group.bench_function(format!("select by pk: {label}"), |b| {
            b.iter_custom(|iters| {
                let (timed, untimed) = pair(&mut conns, i, other);
                alternating(iters, cpu_time, &mut || select(timed), &mut || {
                    select(untimed)
                })
            })
        });
    }
    group.finish();
}

/// A statement to time, by name.
type Statement<'s, C> = (&'static str, &'s dyn Fn(&mut C));

/// Two distinct connections of `conns`, mutably.
fn pair<C>(conns: &mut [C], a: usize, b: usize) -> (&mut C, &mut C) {
    assert_ne!(a, b);
    if a < b {
        let (low, high) = conns.split_at_mut(b);
        (&mut low[a], &mut high[0])
    } else {
        let (low, high) = conns.split_at_mut(a);
        (&mut high[0], &mut low[b])
    }
}

/// Runs `timed` `iters` times in blocks, with as many untimed runs of
/// `other` between blocks, and returns what `clock` measured of `timed`.
fn alternating(
    iters: u64,
    clock: fn(&mut dyn FnMut()) -> Duration,
    timed: &mut dyn FnMut(),
    other: &mut dyn FnMut(),
) -> Duration {
    const BLOCK: u64 = 50;
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BLOCK.min(iters - done);
        for _ in 0..n {
            other();
        }
        total += clock(&mut || {
            for _ in 0..n {
                timed();
            }
        });
        done += n;
    }
    total
}

/// Wall time `work` takes.
fn wall_time(work: &mut dyn FnMut()) -> Duration {
    let start = std::time::Instant::now();
    work();
    start.elapsed()
}

/// CPU time the calling thread spends in `work`.
fn cpu_time(work: &mut dyn FnMut()) -> Duration {
    fn now() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out pointer for clock_gettime.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    let start = now();
    work();
    now().saturating_sub(start)
}

fn sqlite(c: &mut Criterion) {
    // One in-memory database per connection (each `:memory:` is its own).
    run_pair(c, "sqlite-memory", || {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute("CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, name TEXT NOT NULL); INSERT INTO bench_rows VALUES (1, 'one');")
            .unwrap();
        conn
    });
}

#[cfg(feature = "postgres")]
fn postgres(c: &mut Criterion) {
    let server = postgres::server();
    let url = server.fresh_database();
    PgConnection::establish(&url)
        .unwrap()
        .batch_execute("CREATE TABLE bench_rows (id SERIAL PRIMARY KEY, name TEXT NOT NULL); INSERT INTO bench_rows (name) VALUES ('one');")
        .unwrap();
    run_pair(c, "postgres-loopback", || {
        PgConnection::establish(&url).unwrap()
    });
}

#[cfg(not(feature = "postgres"))]
fn postgres(_: &mut Criterion) {
    eprintln!("write-hook/postgres-loopback: build with `--features postgres` to measure it");
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);
