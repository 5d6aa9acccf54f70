//! # dbkit
//!
//! Caching and tracked sessions for diesel, through attribute macros.
//!
//! `#[cached_query]` caches a function's results in process, keyed on its
//! arguments, and refuses them the moment a write to one of its tables is
//! committed, so a cached read is never staler than the last committed write.
//!
//! ```
//! use diesel::prelude::*;
//! use dbkit::cached_query;
//!
//! diesel::table! {
//!     users (id) {
//!         id -> Integer,
//!         name -> Text,
//!     }
//! }
//!
//! #[cached_query(ttl = 300, tables = "users")]
//! fn user_name(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<String>> {
//!     users::table.find(id).select(users::name).first(conn).optional()
//! }
//!
//! let mut conn = SqliteConnection::establish(":memory:").unwrap();
//! // Instrumented, the connection tells dbkit what it writes and whether it
//! // is inside a transaction (a `dbkit::Pool` does this for you).
//! dbkit::instrument(&mut conn);
//! diesel::sql_query("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
//!     .execute(&mut conn).unwrap();
//! diesel::sql_query("INSERT INTO users VALUES (1, 'ada')").execute(&mut conn).unwrap();
//!
//! assert_eq!(user_name(&mut conn, 1).unwrap().as_deref(), Some("ada")); // runs the query
//! assert_eq!(user_name(&mut conn, 1).unwrap().as_deref(), Some("ada")); // from the cache
//!
//! // A committed write invalidates by itself.
//! diesel::sql_query("UPDATE users SET name = 'grace' WHERE id = 1").execute(&mut conn).unwrap();
//! assert_eq!(user_name(&mut conn, 1).unwrap().as_deref(), Some("grace"));
//! ```
//!
//! [`Pool`] instruments every connection it opens; a plain r2d2 pool does
//! with [`InstrumentConnections`] as its connection customizer.
//!
//! ## Sessions
//!
//! `#[with_session]` gives a function a connection checked out of a
//! [`Pool`] for the call. On `fn f(conn: &mut C, args..) -> Result<T, E>` it
//! generates `f(args..)`, which checks out (from the default pool of `C`, see
//! [`set_default_pool`], or from `pool = PATH`), and `f_with_conn(conn,
//! args..)` for callers that already hold a connection: inside another
//! session, call that one, and no second checkout happens. Options:
//! `pool = PATH`, `transaction` (committed on `Ok`, rolled back on `Err` or
//! panic), `label = "..."`, `crate = "path"`. `E` needs `From<dbkit::Error>`.
//!
//! Every checkout, through the macro or [`Pool::get`], is a session with a
//! label, a call site, a thread and a start time. From that registry: a pool
//! timeout names the holders ([`Error::PoolTimeout`]), a nested checkout on a
//! full pool fails at once ([`Error::NestedCheckout`]), sessions held past
//! [`PoolBuilder::leak_threshold`] are logged, a database that refuses
//! connections opens a circuit breaker ([`Error::CircuitOpen`]), and
//! [`report`] lists what is open. [`PoolConfig::from_env`] reads
//! `DATABASE_URL`, `DB_POOL_SIZE`, `DB_MAX_OVERFLOW`, `DB_POOL_TIMEOUT` and
//! `DB_POOL_RECYCLE`.
//!
//! ## Statements, slow queries, N+1, the report
//!
//! An instrumented connection also times each statement and records it by
//! shape (literals and bind parameters as `?`, lists folded; bind values are
//! never seen): calls, errors, total, mean and longest time, bounded in
//! memory. Statements over the slow threshold are logged and kept; the same
//! SELECT shape run more than the N+1 threshold in one session is reported
//! with the session's call site. [`set_query_settings`] sets the thresholds
//! (1 s, 10) and bounds.
//!
//! [`report`] gathers it all into one [`Report`] (`serde::Serialize`):
//! caches, tables, pools, sessions, statements, slow queries, N+1 findings,
//! warnings and pool advice; [`Report::to_prometheus`] renders it as
//! Prometheus text. With the `metrics` feature, `Report::emit_metrics` hands
//! the same figures to the `metrics` facade. Sessions and cached calls open
//! `db_session` and `cached_query` spans (`cache = "hit" | "miss" |
//! "bypass"`) at `debug`. [`set_caching`] turns every cache off and on.
//!
//! ```
//! use std::time::Duration;
//!
//! dbkit::set_query_settings(
//!     dbkit::QuerySettings::default().slow_threshold(Duration::from_millis(200)),
//! );
//! let report = dbkit::report();
//! assert!(serde_json::to_string(&report).unwrap().contains("\"slow_queries\""));
//! assert!(report.to_prometheus().contains("# TYPE dbkit_cache_hits_total counter"));
//! ```
//!
//! ## `#[cached_query]` options
//!
//! | option | meaning | default |
//! |---|---|---|
//! | `ttl = 300` / `ttl = "5m"` | how long an entry may be served, in seconds or as a duration string (`ms`, `s`, `m`, `h`, `d`) | required |
//! | `tables = "users, posts"` | tables the query reads; a committed write to any of them invalidates its results (`schema.table` allowed) | required |
//! | `max_entries = 1000` | most entries kept, least recently used evicted first | 10 000 |
//! | `single_flight = false` | let concurrent misses of one key each run the query | on |
//! | `cache_none = false` | do not store `None` (for `Option<T>` and `Result<Option<T>, E>`) | `None` is cached |
//! | `redis` | also keep results in Redis, shared by every process (feature `redis`; see below) | in process only |
//! | `crate = "path"` | where dbkit is, when re-exported under another name | `::dbkit` |
//!
//! ## What is keyed, what is stored
//!
//! - Every argument is part of the key except the connection: a `&mut`
//!   parameter whose type name ends in `Connection` (`SqliteConnection`,
//!   `PgConnection`, `PooledConnection<..>`), or a `&mut` one marked
//!   `#[dbkit(conn)]` (a [`Session`], or a type implementing
//!   [`CacheConnection`]). An argument that does not change the result can
//!   be left out, visibly, with `#[dbkit(skip)]`. Any other `&mut` argument
//!   is a compile error (a hit skips the body, and what it would do to the
//!   argument), unless marked `#[dbkit(skip)]` or `#[dbkit(key)]`.
//! - Borrowed arguments are keyed by value: `&str` is stored as a `String`,
//!   `&[T]` as `Vec<T>`, `&T` as `T`. A hit compares them in borrowed form and
//!   allocates nothing.
//! - What is stored is the type checker's decision, never a type name's: a
//!   `Result` under any alias (`QueryResult<T>`, `type Fallible<T> =
//!   Result<T, AppError>`) stores only `Ok` values; anything else (`Option<T>`,
//!   a struct named `SearchResult`) is stored as it is.
//! - Misuse is a compile error on the offending token: unknown or duplicate
//!   options, a missing `tables` or `ttl`, a zero ttl, an argument that is not
//!   `Hash + Eq` or borrows data, a return type that is `()` or not `Clone`,
//!   generic, `async`, `impl Trait` or method signatures.
//!
//! ## Freshness
//!
//! A cached result is stamped with a process-wide write clock read *before*
//! its query ran; it is served only while no table it depends on has been
//! written since and its ttl has not run out. Invalidating a table is O(1)
//! whatever the caches hold.
//!
//! An instrumented connection ([`instrument`]) reports every statement: a
//! write marks its tables before it runs and bumps them once it has
//! committed. Writes dbkit cannot see (other programs, triggers) are covered
//! by the ttl or by [`invalidate_table`].
//!
//! Transaction state belongs to the **connection**: its own statements,
//! with what each one answered, decide whether it is inside a transaction,
//! whoever sent them (diesel's `transaction()`, raw `BEGIN`/`COMMIT`/
//! `SAVEPOINT` in a `batch_execute`, MySQL's `SET autocommit = 0`, a second
//! `BEGIN` or DDL that commits implicitly), and diesel's own transaction
//! manager is checked against them. A cached call asks the connection it is
//! given, on whatever thread: inside a transaction it never stores, and it
//! bypasses the cache for tables the transaction wrote.
//!
//! The rule for every doubtful case:
//!
//! - **An outcome dbkit is not certain of counts as a commit.** A failed or
//!   interrupted `COMMIT`, a batch of statements that failed somewhere, a
//!   statement that may open or end a transaction in a way dbkit cannot
//!   follow, a connection dropped or moved out of dbkit's sight
//!   mid-transaction: the tables are bumped at once.
//! - **Marks are released without a bump only when a rollback is certain**:
//!   a `ROLLBACK` that succeeded on a transaction dbkit saw begin and never
//!   lost track of. Until a `COMMIT` or `ROLLBACK` is seen to succeed,
//!   whatever may still be pending stays marked (no entry of those tables is
//!   served or stored), and is bumped again when it ends. A [`Pool`] rolls
//!   back a session that returns in that state.
//!
//! A connection dbkit does not track cannot say what it writes or whether it
//! is inside a transaction: a cached call given one is served hits but never
//! stores, and a warning names the function and the fix, once.
//!
//! ## Several processes: the Redis tier (feature `redis`)
//!
//! `set_redis(RedisConfig::new(url))` at startup (or
//! `RedisConfig::from_env()`, reading `DBKIT_REDIS_URL` and
//! `DBKIT_REDIS_PREFIX`) connects the process to Redis:
//!
//! - functions declared `#[cached_query(..., redis)]` keep their results in
//!   Redis too: L1, then Redis, then the database, and a Redis hit fills L1.
//!   Values are [postcard](https://docs.rs/postcard) (compact, serde-driven),
//!   framed with a checksum; the key holds the prefix, the function's path,
//!   its crate version and a hash of its signature, so changed code never
//!   reads old bytes (a cached type that changes shape behind an unchanged
//!   signature needs a version or prefix bump: postcard is not
//!   self-describing). Key arguments need `Serialize`, the value `Serialize +
//!   Deserialize`; functions without `redis` need neither.
//! - every write bumps its tables' generations in Redis when it commits, and
//!   marks them while it runs; a value in Redis is served only if no mark is
//!   set and no generation moved since its query ran (one `MGET` per lookup).
//! - every commit is published on an invalidation channel; every process
//!   bumps its local clock when it arrives, so its L1 refuses those entries.
//!   While that subscription is down, L1 serves nothing (another process
//!   might be writing) and the bus reconnects with backoff.
//!
//! Redis never fails a call: refused, timed out, dead mid-run or returning
//! garbage, the call falls back to L1 and the database, the failure is
//! counted in [`Report::redis`](Report) and logged at most once a minute,
//! and a circuit breaker stops trying a dead server for a cool-down.
//! `redis://:password@host` URLs work; `rediss://` needs the `redis-tls`
//! feature (rustls), with the system's roots or
//! `RedisConfig::tls_root_certificate`.
#![warn(missing_docs)]

extern crate self as dbkit;

pub use dbkit_core::pool::{
    Advice, BreakerConfig, BreakerState, PoolConfig, PoolReport, SessionInfo, Verdict,
};
pub use dbkit_core::queries::{
    query_settings, reset_query_stats, set_query_settings, NPlusOne, QuerySettings, QueryStats,
    SlowQuery,
};
pub use dbkit_core::registry::{cache_stats, caching, clear_all, set_caching};
pub use dbkit_core::remote::RedisReport;
#[cfg(feature = "redis")]
pub use dbkit_core::remote::{redis_tier_installed, remove_redis, set_redis, RedisConfig};
pub use dbkit_core::report::{report, Report};
pub use dbkit_core::stats::CacheStats;
pub use dbkit_core::tables::{invalidate_all, invalidate_table, TableStats};
pub use dbkit_core::{Error, NestedCheckout, PoolTimeout};
pub use dbkit_diesel::classify::Dialect;
pub use dbkit_diesel::{
    default_pool, instrument, is_instrumented, set_default_pool, Builder as PoolBuilder,
    CacheConnection, Health, Instrument, InstrumentConnections, Pool, PoolSource, Session,
};
/// A cached service function:
///
/// ```
/// use diesel::prelude::*;
///
/// diesel::table! {
///     users (id) {
///         id -> Integer,
///         email -> Text,
///     }
/// }
///
/// #[dbkit::cached_query(ttl = 300, tables = "users")]
/// fn user_id(conn: &mut SqliteConnection, email: &str) -> QueryResult<Option<i32>> {
///     users::table.filter(users::email.eq(email)).select(users::id).get_result(conn).optional()
/// }
/// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// # dbkit::instrument(&mut conn);
/// # diesel::sql_query("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)")
/// #     .execute(&mut conn).unwrap();
/// assert_eq!(user_id(&mut conn, "ada@example.com").unwrap(), None); // runs the query
/// assert_eq!(user_id(&mut conn, "ada@example.com").unwrap(), None); // `None` is cached too
/// ```
///
/// The options and rules are in the [crate documentation](crate).
pub use dbkit_macros::cached_query;
/// A service function with a connection checked out of a pool for the call:
///
/// ```
/// use diesel::prelude::*;
/// use dbkit::with_session;
///
/// #[derive(Debug)]
/// enum AppError {
///     Db(diesel::result::Error),
///     Pool(dbkit::Error),
/// }
/// impl From<diesel::result::Error> for AppError {
///     fn from(e: diesel::result::Error) -> Self { AppError::Db(e) }
/// }
/// impl From<dbkit::Error> for AppError {
///     fn from(e: dbkit::Error) -> Self { AppError::Pool(e) }
/// }
///
/// #[with_session(transaction)]
/// fn add_note(conn: &mut SqliteConnection, text: &str) -> Result<usize, AppError> {
///     diesel::sql_query("CREATE TABLE IF NOT EXISTS notes (text TEXT NOT NULL)").execute(conn)?;
///     diesel::sql_query("INSERT INTO notes VALUES (?)")
///         .bind::<diesel::sql_types::Text, _>(text)
///         .execute(conn)
///         .map_err(Into::into)
/// }
///
/// dbkit::set_default_pool(dbkit::Pool::<SqliteConnection>::builder().max_size(1).build(":memory:").unwrap());
/// assert_eq!(add_note("checked out, run in a transaction, returned").unwrap(), 1);
///
/// // A caller that already holds a connection passes it: no second checkout.
/// let mut conn = dbkit::default_pool::<SqliteConnection>().unwrap().get().unwrap();
/// assert_eq!(add_note_with_conn(&mut conn, "on the caller's connection").unwrap(), 1);
/// ```
///
/// The options and rules are in the [crate documentation](crate).
pub use dbkit_macros::with_session;

/// Helpers for tests of code that uses dbkit.
pub mod testing {
    pub use dbkit_core::guard::panic_on_undeclared_tables;
    pub use dbkit_core::time::advance as advance_clock;
}

/// What the macros expand to. Not a stable interface: it changes with the
/// macros, which is why dbkit pins its own crates to exact versions.
#[doc(hidden)]
pub mod __private {
    pub use dbkit_core::cache::{Access, CacheSpec, QueryCache, Ticket};
    pub use dbkit_core::keys::{
        is_some_value, CacheKey, CacheValue, Output, ResultOutput, ValueOutput,
    };
    pub use dbkit_core::registry::LazyCache;
    #[cfg(feature = "redis")]
    pub use dbkit_core::remote::{
        LazyRemoteCache, RemoteCache, RemoteKey, RemoteResultOutput, RemoteSpec, RemoteTicket,
        RemoteValue, RemoteValueOutput,
    };
    pub use dbkit_core::session_error;
    pub use dbkit_diesel::diesel;
    pub use dbkit_diesel::{cache_access, checkout_default, checkout_from};
}
