//! `Report::emit_metrics` (feature `metrics`): the report's figures reach the
//! application's `metrics` recorder with the same names and labels as the
//! Prometheus text.
#![cfg(feature = "metrics")]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::TempDb;
use dbkit::{cached_query, Pool};
use diesel::prelude::*;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

/// What the recorder was last told, by `name{labels}`.
static VALUES: Mutex<Option<HashMap<String, f64>>> = Mutex::new(None);

struct Cell(String);

impl Cell {
    fn put(&self, value: f64) {
        VALUES
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .insert(self.0.clone(), value);
    }
}

impl CounterFn for Cell {
    fn increment(&self, _: u64) {
        panic!("dbkit reports counters with `absolute`");
    }
    fn absolute(&self, value: u64) {
        self.put(value as f64);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.put(value);
    }
}

struct Captured;

fn series(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Captured {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Cell(series(key))))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Cell(series(key))))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

diesel::table! {
    items (id) {
        id -> Integer,
    }
}

#[cached_query(ttl = 60, tables = "items")]
fn item(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<i32>> {
    items::table
        .find(id)
        .select(items::id)
        .first(conn)
        .optional()
}

#[test]
fn the_report_reaches_the_installed_recorder() {
    metrics::set_global_recorder(Captured).expect("first recorder");
    let db =
        TempDb::new("CREATE TABLE items (id INTEGER PRIMARY KEY); INSERT INTO items VALUES (1);");
    let pool = Pool::<SqliteConnection>::builder()
        .name("metered")
        .max_size(2)
        .build(&db.url())
        .unwrap();
    let mut conn = pool.get().unwrap();
    for _ in 0..3 {
        assert_eq!(item(&mut conn, 1).unwrap(), Some(1));
    }
    drop(conn);

    let report = dbkit::report();
    report.emit_metrics();
    let values = VALUES.lock().unwrap().clone().unwrap_or_default();
    let function = &report
        .caches
        .iter()
        .find(|c| c.function.ends_with("::item"))
        .unwrap()
        .function;
    let get = |series: String| {
        *values
            .get(&series)
            .unwrap_or_else(|| panic!("no {series} in {:?}", values.keys()))
    };
    assert_eq!(
        get(format!("dbkit_cache_hits_total{{function=\"{function}\"}}")),
        2.0
    );
    assert_eq!(
        get(format!(
            "dbkit_cache_misses_total{{function=\"{function}\"}}"
        )),
        1.0
    );
    assert_eq!(
        get("dbkit_pool_checkouts_total{pool=\"metered\"}".into()),
        1.0
    );
    assert_eq!(
        get("dbkit_pool_connections{pool=\"metered\",state=\"in_use\"}".into()),
        0.0
    );
    assert_eq!(
        get("dbkit_pool_max_connections{pool=\"metered\"}".into()),
        2.0
    );
    let shape = report
        .queries
        .iter()
        .find(|q| q.shape.contains("FROM `items`"))
        .unwrap();
    let calls = values
        .iter()
        .find(|(k, _)| k.starts_with("dbkit_query_calls_total{") && k.contains(&shape.id))
        .map(|(_, v)| *v);
    assert_eq!(calls, Some(shape.calls as f64));
}
