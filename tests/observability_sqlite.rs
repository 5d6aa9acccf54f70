//! Query statistics, the slow-query log, N+1 detection, pool advice and the
//! report, on real SQLite through a tracked pool: what a dashboard built on
//! `dbkit::report()` shows.
//!
//! The settings are process-wide, so every test here shares one: slow from
//! 20 ms, N+1 above 10 runs.

mod common;

use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use common::{logs, AppError, TempDb};
use dbkit::{cached_query, with_session, Pool, QuerySettings};
use diesel::prelude::*;
use diesel::sql_types::Integer;
use tracing::Level;

const SCHEMA: &str = "
    CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title TEXT NOT NULL);
    INSERT INTO users (id, name) VALUES (1, 'ada'), (2, 'grace'), (3, 'edsger');
";

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
    }
}

diesel::table! {
    posts (id) {
        id -> Integer,
        user_id -> Integer,
        title -> Text,
    }
}

/// The pool every test uses, over one database, with `sleep_ms(n)`
/// registered on each connection so a statement can be made slow on purpose.
static POOL: LazyLock<Pool<SqliteConnection>> = LazyLock::new(|| {
    static DB: OnceLock<TempDb> = OnceLock::new();
    logs::capture();
    dbkit::set_query_settings(
        QuerySettings::default()
            .slow_threshold(Duration::from_millis(20))
            .n_plus_one_threshold(10),
    );
    let db = DB.get_or_init(|| TempDb::new(SCHEMA));
    Pool::builder()
        .name("observed")
        .max_size(4)
        .connection_customizer(Box::new(SleepFunction))
        .build(&db.url())
        .expect("build pool")
});

fn pool() -> &'static Pool<SqliteConnection> {
    &POOL
}

#[derive(Debug)]
struct SleepFunction;

impl diesel::r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SleepFunction {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.register_sql_function::<(Integer,), Integer, _, _, _>(
            "sleep_ms",
            false,
            |(ms,): (i32,)| {
                std::thread::sleep(Duration::from_millis(ms as u64));
                ms
            },
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

fn name_of(conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
    users::table.find(id).select(users::name).first(conn)
}

#[with_session(pool = POOL)]
fn names_one_by_one(conn: &mut SqliteConnection, ids: &[i32]) -> Result<Vec<String>, AppError> {
    ids.iter()
        .map(|&id| name_of(conn, id).map_err(AppError::from))
        .collect()
}

#[with_session(pool = POOL)]
fn a_few_names(conn: &mut SqliteConnection, ids: &[i32]) -> Result<Vec<String>, AppError> {
    ids.iter()
        .map(|&id| name_of(conn, id).map_err(AppError::from))
        .collect()
}

fn shape_calls(needle: &str) -> Vec<dbkit::QueryStats> {
    dbkit::report()
        .queries
        .into_iter()
        .filter(|q| q.shape.contains(needle))
        .collect()
}

#[test]
fn statements_differing_only_in_literals_are_one_shape() {
    let mut conn = pool().get().unwrap();
    for id in [1, 2, 3, 2] {
        diesel::sql_query(format!(
            "SELECT name FROM users WHERE id = {id} AND 'lit' = 'lit'"
        ))
        .execute(&mut *conn)
        .unwrap();
    }
    diesel::sql_query("SELECT name FROM users WHERE id IN (1, 2, 3) AND 'lit' = 'lit'")
        .execute(&mut *conn)
        .unwrap();
    diesel::sql_query("SELECT name FROM users WHERE id IN (1) AND 'lit' = 'lit'")
        .execute(&mut *conn)
        .unwrap();

    let by_id = shape_calls("WHERE id = ? AND ? = ?");
    assert_eq!(by_id.len(), 1, "one shape for four literals: {by_id:?}");
    assert_eq!(
        by_id[0].shape,
        "SELECT name FROM users WHERE id = ? AND ? = ?"
    );
    assert_eq!(by_id[0].calls, 4);
    assert!(by_id[0].select);
    assert!(by_id[0].max_us <= by_id[0].total_us);

    let in_list = shape_calls("WHERE id IN (...) AND ? = ?");
    assert_eq!(
        in_list.len(),
        1,
        "lists of any length are one shape: {in_list:?}"
    );
    assert_eq!(in_list[0].calls, 2);

    // Bind values never reach the statistics; diesel's own statements have
    // placeholders where the values go.
    name_of(&mut conn, 2).unwrap();
    let dsl = shape_calls("FROM `users` WHERE (`users`.`id` = ?)");
    assert_eq!(dsl.len(), 1, "{:?}", dbkit::report().queries);
    let report = serde_json::to_string(&dbkit::report()).unwrap();
    assert!(!report.contains("edsger") && !report.contains("'lit'"));
}

#[test]
fn a_failed_statement_counts_as_an_error_of_its_shape() {
    let mut conn = pool().get().unwrap();
    for _ in 0..2 {
        diesel::sql_query("SELECT missing_column FROM users WHERE id = 7")
            .execute(&mut *conn)
            .unwrap_err();
    }
    let failed = shape_calls("SELECT missing_column FROM users");
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].calls, failed[0].errors), (2, 2));
}

#[with_session(pool = POOL, label = "nightly report")]
fn slow_report(conn: &mut SqliteConnection) -> Result<i32, AppError> {
    #[derive(QueryableByName)]
    struct Slept {
        #[diesel(sql_type = Integer)]
        ms: i32,
    }
    let slept: Slept = diesel::sql_query("SELECT sleep_ms(40) AS ms").get_result(conn)?;
    Ok(slept.ms)
}

#[test]
fn a_statement_over_the_threshold_is_logged_and_kept_with_its_session() {
    assert_eq!(slow_report().unwrap(), 40);
    let report = dbkit::report();
    let slow: Vec<_> = report
        .slow_queries
        .iter()
        .filter(|q| q.shape == "SELECT sleep_ms(?) AS ms")
        .collect();
    assert_eq!(slow.len(), 1, "{:?}", report.slow_queries);
    assert!(slow[0].duration_us >= 40_000);
    assert_eq!(slow[0].session.as_deref(), Some("nightly report"));
    assert_eq!(slow[0].pool.as_deref(), Some("observed"));
    assert!(!slow[0].failed);
    assert!(report.slow_queries_total >= 1);
    assert!(
        report
            .slow_queries
            .iter()
            .all(|q| q.shape != "SELECT name FROM users WHERE id = ? AND ? = ?"),
        "fast statements are not slow"
    );
    let logged = logs::events(Level::WARN, "slow query");
    assert!(logged
        .iter()
        .any(|l| l.contains("sleep_ms(?)") && l.contains("nightly report")));
}

#[test]
fn twenty_lookups_in_one_session_are_an_n_plus_one_and_three_are_not() {
    let ids: Vec<i32> = (0..20).map(|i| i % 3 + 1).collect();
    let call_site = format!("{}:{}:", file!(), line!() + 1);
    assert_eq!(names_one_by_one(&ids).unwrap().len(), 20);
    assert_eq!(a_few_names(&[1, 2, 3]).unwrap().len(), 3);
    // Twelve lookups spread over four sessions: no session crosses 10.
    for _ in 0..4 {
        a_few_names(&[1, 2, 3]).unwrap();
    }

    let findings = dbkit::report().n_plus_one;
    let mine: Vec<_> = findings
        .iter()
        .filter(|f| f.location.starts_with(&call_site))
        .collect();
    assert_eq!(
        mine.len(),
        1,
        "reported once per session and shape: {findings:?}"
    );
    assert_eq!(
        mine[0].count, 20,
        "the count is final once the session ended"
    );
    assert_eq!(mine[0].pool, "observed");
    assert!(mine[0].label.ends_with("names_one_by_one"));
    assert!(mine[0]
        .shape
        .contains("FROM `users` WHERE (`users`.`id` = ?)"));
    assert!(
        findings.iter().all(|f| !f.label.ends_with("a_few_names")),
        "3 lookups per session are not N+1: {findings:?}"
    );
    let warned = logs::events(Level::WARN, "N+1 queries");
    assert!(warned.iter().any(|w| w.contains("names_one_by_one")));
}

#[cached_query(ttl = 60, tables = "users")]
fn cached_name(conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
    name_of(conn, id)
}

#[test]
fn cached_calls_and_sessions_open_spans() {
    let mut conn = pool().get_labeled("span check").unwrap();
    cached_name(&mut conn, 3).unwrap();
    cached_name(&mut conn, 3).unwrap();
    drop(conn);
    let function = "cached_name";
    assert_eq!(
        logs::spans("cached_query", "cache=miss")
            .iter()
            .filter(|s| s.contains(function))
            .count(),
        1
    );
    assert!(!logs::spans("cached_query", "cache=hit")
        .iter()
        .filter(|s| s.contains(function))
        .count()
        .eq(&0));
    assert!(!logs::spans("db_session", "label=span check").is_empty());
}

#[test]
fn the_report_serializes_and_its_prometheus_text_parses() {
    // Something in every section.
    names_one_by_one(&[1; 12]).unwrap();
    cached_name(&mut pool().get().unwrap(), 1).unwrap();
    dbkit::invalidate_table("posts");

    let report = dbkit::report();
    let json = serde_json::to_value(&report).unwrap();
    for section in [
        "caches",
        "tables",
        "pools",
        "sessions",
        "queries",
        "slow_queries",
        "n_plus_one",
        "warnings",
        "advice",
    ] {
        assert!(json.get(section).is_some(), "report lacks `{section}`");
    }
    let pool_json = &json["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "observed")
        .unwrap();
    assert!(pool_json["checkouts"].as_u64().unwrap() >= 2);
    assert!(pool_json["peak_in_use"].as_u64().unwrap() >= 1);

    let text = report.to_prometheus();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        assert!(
            !matches!(
                prometheus_parse::LineInfo::parse(line),
                prometheus_parse::LineInfo::Ignored
            ),
            "the parser does not understand `{line}`"
        );
    }
    let scrape = prometheus_parse::Scrape::parse(lines.iter().map(|l| Ok(l.to_string()))).unwrap();
    let samples = lines.iter().filter(|l| !l.starts_with('#')).count();
    assert_eq!(scrape.samples.len(), samples);

    let sample = |metric: &str, label: &str, value: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && s.labels.get(label) == Some(value))
            .unwrap_or_else(|| panic!("no {metric}{{{label}=\"{value}\"}}"))
            .value
            .clone()
    };
    let posts = report.tables.iter().find(|t| t.table == "posts").unwrap();
    assert_eq!(
        sample("dbkit_table_invalidations_total", "table", "posts"),
        prometheus_parse::Value::Counter(posts.invalidations as f64)
    );
    let observed = report.pools.iter().find(|p| p.name == "observed").unwrap();
    assert_eq!(
        sample("dbkit_pool_checkouts_total", "pool", "observed"),
        prometheus_parse::Value::Counter(observed.checkouts as f64)
    );
    assert!(matches!(
        sample("dbkit_pool_max_connections", "pool", "observed"),
        prometheus_parse::Value::Gauge(v) if v == 4.0
    ));
    let cached = report
        .caches
        .iter()
        .find(|c| c.function.ends_with("cached_name"))
        .unwrap();
    assert_eq!(
        sample("dbkit_cache_misses_total", "function", &cached.function),
        prometheus_parse::Value::Counter(cached.misses as f64)
    );
    // A shape with quotes and backquotes survives escaping.
    let shape = report
        .queries
        .iter()
        .find(|q| q.shape.contains("`users`.`id` = ?"))
        .unwrap();
    match sample("dbkit_query_calls_total", "id", &shape.id) {
        prometheus_parse::Value::Counter(calls) => assert!(calls >= 12.0),
        other => panic!("calls is {other:?}"),
    }
    assert!(scrape.docs.contains_key("dbkit_query_seconds_total"));
}

#[test]
fn with_caching_off_every_call_runs_its_query_and_counts_as_a_bypass() {
    #[cached_query(ttl = 60, tables = "users")]
    fn switched(conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
        name_of(conn, id)
    }
    let mut conn = pool().get().unwrap();
    switched(&mut conn, 1).unwrap();
    switched(&mut conn, 1).unwrap();
    dbkit::set_caching(false);
    switched(&mut conn, 1).unwrap();
    dbkit::set_caching(true);
    switched(&mut conn, 1).unwrap();
    let stats = common::stats_of("switched");
    assert_eq!((stats.misses, stats.hits, stats.bypasses), (1, 2, 1));
}
