//! Shared helpers: throwaway SQLite databases and a statement counter.
#![allow(dead_code)] // each test binary uses part of it

pub mod classify_diff;
pub mod freshness;
pub mod logs;
#[cfg(feature = "mysql")]
pub mod mariadb;
pub mod model;
#[cfg(feature = "redis")]
pub mod people;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod redis;
pub mod regress;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::InstrumentationEvent;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// Counts the statements a connection sends to the database.
#[derive(Clone, Default)]
pub struct Statements(Arc<AtomicUsize>);

impl Statements {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    /// An instrumentation that counts into this counter.
    pub fn instrumentation(&self) -> Box<dyn diesel::connection::Instrumentation> {
        let counter = self.0.clone();
        Box::new(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
    }

    /// Whether `call` sent a statement.
    pub fn reached<T>(&self, call: impl FnOnce() -> T) -> (T, bool) {
        let before = self.count();
        let out = call();
        (out, self.count() > before)
    }
}

/// An SQLite database file in its own temporary directory, removed on drop.
pub struct TempDb {
    dir: PathBuf,
}

impl TempDb {
    /// A new database with `schema` applied.
    pub fn new(schema: &str) -> TempDb {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dbkit-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        let db = TempDb { dir };
        let (mut conn, _) = db.connect();
        conn.batch_execute(schema).expect("apply schema");
        db
    }

    /// The database file, as diesel's SQLite URL.
    pub fn url(&self) -> String {
        self.dir.join("db.sqlite").to_string_lossy().into_owned()
    }

    /// A connection that counts its statements, with dbkit's
    /// instrumentation (what a `dbkit::Pool` hands out).
    pub fn connect(&self) -> (SqliteConnection, Statements) {
        self.connect_instrumented(dbkit::Instrument::new())
    }

    /// A connection that counts its statements, which dbkit does not track
    /// (another program's, a raw driver's).
    pub fn connect_untracked(&self) -> (SqliteConnection, Statements) {
        self.connect_with(|conn, counter| conn.set_instrumentation(counter))
    }

    /// A connection with dbkit's instrumentation as `instrument` says,
    /// wrapping the statement counter.
    pub fn connect_instrumented(
        &self,
        instrument: dbkit::Instrument,
    ) -> (SqliteConnection, Statements) {
        self.connect_with(|conn, counter| instrument.wrapping(counter).install(conn))
    }

    fn connect_with(
        &self,
        install: impl FnOnce(&mut SqliteConnection, Box<dyn diesel::connection::Instrumentation>),
    ) -> (SqliteConnection, Statements) {
        let mut conn = SqliteConnection::establish(&self.url()).expect("open sqlite");
        conn.batch_execute("PRAGMA busy_timeout = 10000;")
            .expect("busy timeout");
        let statements = Statements::default();
        install(&mut conn, statements.instrumentation());
        (conn, statements)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A door test threads wait at until the test opens it.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    pub const fn new() -> Gate {
        Gate {
            open: Mutex::new(false),
            changed: Condvar::new(),
        }
    }

    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.changed.wait(open).unwrap();
        }
    }

    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

/// Waits until `condition` holds; panics with `what` after 30 s, which only a
/// broken implementation takes (the wait itself is not what is tested).
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Statistics of one cached function, by the end of its path.
pub fn stats_of(function_suffix: &str) -> dbkit::CacheStats {
    dbkit::cache_stats()
        .into_iter()
        .find(|s| s.function.ends_with(function_suffix))
        .unwrap_or_else(|| panic!("no cached function ending in {function_suffix}"))
}

/// The error type of the test services: a database error, a pool error, or
/// a refusal of the service's own.
#[derive(Debug)]
pub enum AppError {
    Db(diesel::result::Error),
    Pool(dbkit::Error),
    Rejected,
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Db(e)
    }
}

impl From<dbkit::Error> for AppError {
    fn from(e: dbkit::Error) -> Self {
        AppError::Pool(e)
    }
}
