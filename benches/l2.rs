//! What an L2 hit costs: a `#[cached_query(redis)]` call answered by Redis
//! (L1 missed) against a raw `GET` of the same payload with the `redis`
//! crate, in one run, on a `redis-server` over loopback that the benchmark
//! starts itself.
//!
//! L1 is taken out of the way honestly: the function keeps one entry and
//! the benchmark alternates two keys, so every call misses L1, looks the
//! key up in Redis (one `MGET` of the table's marks, generations and the
//! value), decodes it and fills L1, evicting the other key. The raw side is
//! what a hand-written Redis cache does: `GET`, then (second variant)
//! decode the same postcard payload.
//!
//! Run: `cargo bench --bench l2 --features redis`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use serde::{Deserialize, Serialize};

#[allow(dead_code)] // the tests use the rest of it
#[path = "../tests/common/redis.rs"]
mod redis_server;

/// What `redis_server` waits with (it lives in the tests' `common`).
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Debug)]
struct User {
    id: i64,
    name: String,
    email: String,
}

fn user(id: i64) -> User {
    User {
        id,
        name: format!("user {id}"),
        email: format!("user{id}@example.com"),
    }
}

/// One entry: two alternating keys always miss L1.
#[dbkit::cached_query(ttl = 3600, tables = "bench_l2_users", redis, max_entries = 1)]
fn cached_user(id: i64) -> User {
    user(id)
}

fn l2(c: &mut Criterion) {
    let server = redis_server::RedisServer::start();
    dbkit::set_redis(dbkit::RedisConfig::new(server.url()).prefix("bench")).expect("a valid URL");
    server.wait_for_bus();
    // Start the table's generation, then store both keys in Redis.
    for _ in 0..3 {
        cached_user(1);
        cached_user(2);
    }
    let stores = dbkit::cache_stats()[0].l2_stores;
    assert_eq!(stores, 2, "both keys are in Redis");

    let mut raw = server.client();
    let payload = postcard::to_allocvec(&user(1)).expect("encode");
    redis::cmd("SET")
        .arg("raw:user:1")
        .arg(&payload)
        .exec(&mut raw)
        .expect("SET");

    // The same round trip dbkit makes (marks, generations, value), raw:
    // what the shared table clock costs on the wire.
    let clock_keys = [
        "bench:mark:*",
        "bench:mark:bench_l2_users",
        "bench:gen:*",
        "bench:gen:bench_l2_users",
        "raw:user:1",
    ];
    let mut other = server.client();
    let mut id = 0;
    let mut dbkit_hit = move || {
        id = 3 - id.max(1); // 1, 2, 1, 2, ...: every call misses L1
        black_box(cached_user(black_box(id)));
    };
    let get = |conn: &mut redis::Connection| {
        let bytes: Vec<u8> = redis::cmd("GET")
            .arg("raw:user:1")
            .query(conn)
            .expect("GET");
        black_box(bytes);
    };
    let get_decode = |conn: &mut redis::Connection| {
        let bytes: Vec<u8> = redis::cmd("GET")
            .arg("raw:user:1")
            .query(conn)
            .expect("GET");
        black_box(postcard::from_bytes::<User>(&bytes).expect("decode"));
    };
    let mget = |conn: &mut redis::Connection| {
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&clock_keys[..])
            .query(conn)
            .expect("MGET");
        black_box(values);
    };

    // Round trips over loopback swing with what the other core does. Each
    // variant is timed in blocks of 50 calls, with 50 untimed calls of the
    // other side between blocks, so both sides are measured in the same mix
    // of machine states rather than one after the other.
    let mut group = c.benchmark_group("l2");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("dbkit L2 hit (L1 missed)", |b| {
        b.iter_custom(|iters| alternating(iters, &mut dbkit_hit, &mut || get(&mut other)))
    });
    group.bench_function("raw GET (bytes)", |b| {
        b.iter_custom(|iters| alternating(iters, &mut || get(&mut raw), &mut dbkit_hit))
    });
    group.bench_function("raw GET + postcard decode", |b| {
        b.iter_custom(|iters| alternating(iters, &mut || get_decode(&mut raw), &mut dbkit_hit))
    });
    group.bench_function("raw MGET of marks, generations, value", |b| {
        b.iter_custom(|iters| alternating(iters, &mut || mget(&mut raw), &mut dbkit_hit))
    });
    group.finish();

    // What the tier adds to a write: its marks when it starts, then one
    // script that bumps the generations, releases the marks and publishes.
    let mut conn = diesel::SqliteConnection::establish(":memory:").expect("in-memory SQLite");
    conn.batch_execute("CREATE TABLE bench_l2_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .expect("schema");
    dbkit::instrument(&mut conn);
    let mut next = 0;
    let mut insert = move || {
        next += 1;
        diesel::sql_query("INSERT INTO bench_l2_users (id, name) VALUES (?, 'ada')")
            .bind::<diesel::sql_types::Integer, _>(next)
            .execute(&mut conn)
            .expect("insert");
    };
    let mut group = c.benchmark_group("l2-write");
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("insert, instrumented, with the Redis tier", |b| {
        b.iter(&mut insert)
    });
    dbkit::remove_redis();
    group.bench_function("insert, instrumented, without a tier", |b| {
        b.iter(&mut insert)
    });
    group.finish();

    let stats = dbkit::cache_stats().remove(0);
    assert_eq!(stats.l2_errors, 0, "{stats:?}");
    assert!(stats.hits <= 1, "every measured call missed L1: {stats:?}");
}

/// Times `iters` calls of `timed`, in blocks of 50 separated by 50 untimed
/// calls of `other`.
fn alternating(iters: u64, timed: &mut dyn FnMut(), other: &mut dyn FnMut()) -> Duration {
    const BLOCK: u64 = 50;
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = BLOCK.min(iters - done);
        for _ in 0..n {
            other();
        }
        let start = Instant::now();
        for _ in 0..n {
            timed();
        }
        total += start.elapsed();
        done += n;
    }
    total
}

criterion_group!(benches, l2);
criterion_main!(benches);
