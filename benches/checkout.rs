//! A tracked checkout-and-return against a plain r2d2 `get()` and drop of
//! the same pool, in one run: the cost of the session registry, the
//! nested-checkout check, the breaker check and the waiter count.
//!
//! Two settings: without `test_on_check_out` (the registry's cost against
//! r2d2's bare minimum) and with it (r2d2's default: a `SELECT 1` per
//! checkout). In-memory SQLite keeps the database out of the figure.
//!
//! Run: `cargo bench --bench checkout`.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use dbkit::{with_session, Pool};
use diesel::SqliteConnection;

static POOL: OnceLock<Pool<SqliteConnection>> = OnceLock::new();

#[with_session(pool = POOL)]
fn noop(conn: &mut SqliteConnection) -> Result<(), dbkit::Error> {
    black_box(conn);
    Ok(())
}

fn pool(test_on_check_out: bool, leak_threshold: Option<Duration>) -> Pool<SqliteConnection> {
    let mut builder = Pool::builder()
        .max_size(4)
        .test_on_check_out(test_on_check_out);
    if let Some(threshold) = leak_threshold {
        builder = builder.leak_threshold(threshold);
    }
    builder.build(":memory:").expect("pool")
}

fn checkout(c: &mut Criterion) {
    for tested in [false, true] {
        let name = if tested {
            "checkout/test_on_check_out"
        } else {
            "checkout"
        };
        let mut group = c.benchmark_group(name);
        let pool = pool(tested, None);
        group.bench_function("r2d2_get_drop", |b| {
            b.iter(|| drop(black_box(pool.r2d2().get().unwrap())))
        });
        // What dbkit calls when a connection is idle: the registry's own cost
        // is dbkit_get_drop minus this.
        group.bench_function("r2d2_try_get_drop", |b| {
            b.iter(|| drop(black_box(pool.r2d2().try_get().unwrap())))
        });
        group.bench_function("dbkit_get_drop", |b| {
            b.iter(|| drop(black_box(pool.get().unwrap())))
        });
        if !tested {
            let watched = pool_with_leaks();
            group.bench_function("dbkit_get_drop_leak_threshold", |b| {
                b.iter(|| drop(black_box(watched.get().unwrap())))
            });
            POOL.get_or_init(|| pool.clone());
            group.bench_function("with_session_call", |b| b.iter(|| noop().unwrap()));
        }
        group.finish();
    }
}

fn pool_with_leaks() -> Pool<SqliteConnection> {
    pool(false, Some(Duration::from_secs(30)))
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = checkout
}
criterion_main!(benches);
