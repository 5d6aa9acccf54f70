//! The diesel instrumentation that sees every statement of a connection and
//! drives the table clock through [`WriteTracker`].
//!
//! Per statement it renders the SQL once, without its bind values (they are
//! personal data, and formatting them costs time on every statement), into a
//! buffer reused for the connection's whole life. What a statement text does
//! (its steps for the tracker, its shape for the statistics) is worked out
//! once per distinct text and connection and remembered, so a statement the
//! connection has run before costs a hash and a comparison on top of diesel's
//! own rendering.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use dbkit_core::cache::Access;
use dbkit_core::guard;
use dbkit_core::queries::{self, SessionQueries, SessionScope, Shape};
use dbkit_core::tables::{self, TableState};
use dbkit_core::tracker::{Backend, Outcome, Step, WriteTracker, WriteVisibility};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::Connection;

use crate::classify::{statements, Dialect, Effect};
use crate::shape::shape_of;

/// The marker diesel's query rendering puts between the SQL and its binds.
const BINDS: &str = " -- binds: ";

/// Collects rendered SQL up to the binds, then stops the rendering.
///
/// diesel writes a query as `write!(f, "{sql} -- binds: {binds:?}")`: the
/// SQL in one piece, then the marker as a piece of its own. Only that second
/// piece stops the rendering; the same text inside the SQL (a user's own
/// comment, a `batch_execute` string, which arrives in one piece) is kept.
struct SqlOnly<'a> {
    sql: &'a mut String,
    pieces: usize,
}

impl fmt::Write for SqlOnly<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.pieces > 0 && s == BINDS {
            return Err(fmt::Error); // stop: the binds are never formatted
        }
        self.pieces += 1;
        self.sql.push_str(s);
        Ok(())
    }
}

/// Distinct statements a connection remembers; past it the memory starts
/// over (a connection running more distinct statements than this is
/// building SQL from values, and pays one classification each).
const STATEMENTS_PER_CONNECTION: usize = 256;

/// What one statement text does, worked out once.
struct Known {
    /// The text itself: a lookup compares it, so two texts sharing a hash
    /// are never taken for each other.
    sql: Box<str>,
    steps: Box<[Step]>,
    tables: Box<[&'static TableState]>,
    /// Several statements in the text.
    batch: bool,
    /// With query statistics on.
    shape: Option<Arc<Shape>>,
}

/// The rules a connection's SQL is read by, from its diesel backend.
pub(crate) fn dialect_of<C: Connection>() -> Dialect {
    // By name: a backend type need not be `'static`, which `TypeId` asks.
    let backend = std::any::type_name::<C::Backend>();
    #[cfg(feature = "sqlite")]
    if backend == std::any::type_name::<diesel::sqlite::Sqlite>() {
        return Dialect::Sqlite;
    }
    #[cfg(feature = "postgres")]
    if backend == std::any::type_name::<diesel::pg::Pg>() {
        return Dialect::Postgres;
    }
    #[cfg(feature = "mysql")]
    if backend == std::any::type_name::<diesel::mysql::Mysql>() {
        return Dialect::Mysql;
    }
    let _ = backend;
    Dialect::Any
}

/// The dialect a database URL names, for connections whose backend type
/// does not say (a diesel `MultiConnection`).
pub(crate) fn dialect_of_url(url: &str) -> Dialect {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Dialect::Postgres,
        Some("mysql" | "mariadb") => Dialect::Mysql,
        Some("sqlite" | "file") | None => Dialect::Sqlite,
        Some(_) => Dialect::Any,
    }
}

fn backend_of(dialect: Dialect) -> Backend {
    match dialect {
        Dialect::Sqlite => Backend::Sqlite,
        Dialect::Postgres => Backend::Postgres,
        Dialect::Mysql => Backend::Mysql,
        Dialect::Any => Backend::Other,
    }
}

/// A hash of a savepoint name or prepared transaction id, as the tracker
/// compares them (names case-insensitively, ids exactly).
fn name_hash(name: &str, fold_case: bool) -> u64 {
    let hasher = foldhash::fast::FixedState::default();
    if fold_case {
        hasher.hash_one(name.to_ascii_lowercase())
    } else {
        hasher.hash_one(name)
    }
}

/// dbkit's instrumentation: invalidates cached reads when writes commit,
/// tells cached calls whether the connection is inside a transaction, and
/// records what each statement cost.
///
/// Install it with [`instrument`] (or [`Instrument`] for the options); a
/// pool does it on every connection it opens.
pub struct DbkitInstrumentation {
    tracker: WriteTracker,
    dialect: Dialect,
    sql: String,
    /// Whether statements are timed and recorded by shape.
    query_stats: bool,
    /// Statement texts (by hash) and what they do.
    known: HashMap<u64, Known, foldhash::fast::RandomState>,
    /// The statement running now and when it started.
    running: Option<(Arc<Shape>, Instant)>,
    /// SELECT counts of the session the connection is checked out for.
    session: SessionQueries,
    /// The user's own instrumentation, called after dbkit's.
    inner: Option<Box<dyn Instrumentation>>,
}

impl fmt::Debug for DbkitInstrumentation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbkitInstrumentation")
            .field("tracker", &self.tracker)
            .field("dialect", &self.dialect)
            .field("wraps_another", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl DbkitInstrumentation {
    fn new(
        visibility: WriteVisibility,
        dialect: Dialect,
        query_stats: bool,
        inner: Option<Box<dyn Instrumentation>>,
    ) -> Self {
        DbkitInstrumentation {
            tracker: WriteTracker::new(visibility, backend_of(dialect)),
            dialect,
            sql: String::with_capacity(256),
            query_stats,
            known: HashMap::default(),
            running: None,
            session: SessionQueries::default(),
            inner,
        }
    }

    /// The connection was checked out for `scope`: its statements count
    /// towards that session's N+1 detection and carry its label in the slow
    /// log. Called by [`Pool`](crate::Pool).
    #[doc(hidden)]
    pub fn begin_session(&mut self, scope: SessionScope) {
        self.session.begin(scope);
    }

    /// The session ended: its N+1 findings get their final counts.
    #[doc(hidden)]
    pub fn end_session(&mut self) {
        self.session.end();
    }

    /// How a cached call on this connection may use a cache whose results
    /// depend on `deps`; `diesel_in_transaction` is what diesel's own
    /// transaction manager believes. Where the two disagree, the
    /// connection is taken to be inside a transaction of unknown writes.
    #[doc(hidden)]
    #[inline]
    pub fn access(&mut self, deps: &[&'static TableState], diesel_in_transaction: bool) -> Access {
        if diesel_in_transaction {
            self.tracker.diesel_in_transaction();
        }
        self.tracker.access(deps)
    }

    /// Whether the connection may be inside a transaction dbkit saw opened
    /// by raw SQL, or whose state it lost track of: the pool rolls it back
    /// when the session ends.
    #[doc(hidden)]
    pub fn in_transaction(&self) -> bool {
        self.tracker.in_transaction()
    }

    /// Whether MySQL's `autocommit` may have been turned off on the
    /// connection (by `SET autocommit = 0`, or unseen, in a procedure): the
    /// pool turns it back on when the session ends.
    #[doc(hidden)]
    pub fn autocommit_may_be_off(&self) -> bool {
        self.dialect == Dialect::Mysql && self.tracker.autocommit_may_be_off()
    }

    fn statement_started(&mut self, query: &dyn diesel::connection::DebugQuery) {
        self.sql.clear();
        // An Err here only means the sink stopped at the binds.
        let _ = write!(
            SqlOnly {
                sql: &mut self.sql,
                pieces: 0
            },
            "{query}"
        );
        let hash = foldhash::fast::FixedState::default().hash_one(self.sql.as_str());
        let known = match self.known.get(&hash) {
            Some(known) if *known.sql == *self.sql => known,
            _ => learn(
                &mut self.known,
                &self.sql,
                self.dialect,
                self.query_stats,
                hash,
            ),
        };
        if self.query_stats {
            if let Some(shape) = &known.shape {
                self.running = Some((Arc::clone(shape), Instant::now()));
            }
        }
        self.tracker
            .statement_started(&known.steps, &known.tables, known.batch);
        if cfg!(debug_assertions) && guard::running() {
            for statement in statements(&self.sql, self.dialect, true) {
                if let Effect::Reads(t) = statement.effect {
                    guard::check_reads(t.as_slice());
                }
            }
        }
    }

    fn statement_finished(&mut self, error: Option<&diesel::result::Error>) {
        let outcome = match error {
            None => Outcome::Succeeded,
            Some(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("no transaction is active") =>
            {
                Outcome::FailedOutsideTransaction
            }
            Some(_) => Outcome::Failed,
        };
        self.tracker.statement_finished(outcome);
        if let Some((shape, started)) = self.running.take() {
            queries::record(
                &shape,
                started.elapsed(),
                error.is_some(),
                self.session.scope(),
            );
            self.session.ran(&shape);
        }
    }
}

/// Works out what statement text `sql` does, and remembers it in `known`.
#[cold]
fn learn<'k>(
    known: &'k mut HashMap<u64, Known, foldhash::fast::RandomState>,
    sql: &str,
    dialect: Dialect,
    query_stats: bool,
    hash: u64,
) -> &'k Known {
    let mut steps = Vec::new();
    let mut written: Vec<&'static TableState> = Vec::new();
    let mut count = 0usize;
    for statement in statements(sql, dialect, false) {
        count += 1;
        if statement.commits_first {
            steps.push(Step::ImplicitCommit);
        } else if statement.may_commit_first {
            steps.push(Step::MaybeCommit);
        }
        let fold = |name: &str| name_hash(name, true);
        let exact = |id: &str| name_hash(id, false);
        steps.push(match statement.effect {
            Effect::Writes(t) if !t.overflowed() => {
                let from = u32::try_from(written.len()).unwrap_or(u32::MAX);
                written.extend(t.as_slice().iter().map(|name| tables::table(name)));
                let to = u32::try_from(written.len()).unwrap_or(u32::MAX);
                Step::Write(from..to)
            }
            Effect::Writes(_) | Effect::WritesUnknown => Step::WriteAll,
            Effect::Reads(_) | Effect::NoData | Effect::Empty => Step::NoWrite,
            Effect::Begin => Step::Begin,
            Effect::Commit { chain } => Step::Commit { chain },
            Effect::Rollback { chain } => Step::Rollback { chain },
            Effect::Savepoint(name) => Step::Savepoint(fold(name)),
            Effect::Release(name) => Step::Release(fold(name)),
            Effect::RollbackTo(name) => Step::RollbackTo(fold(name)),
            Effect::PrepareTransaction(id) => Step::PrepareTransaction(exact(id)),
            Effect::CommitPrepared(id) => Step::CommitPrepared(exact(id)),
            Effect::RollbackPrepared(id) => Step::RollbackPrepared(exact(id)),
            Effect::Autocommit(value) => Step::Autocommit(value),
            Effect::UnknownControl => Step::UnknownControl,
        });
    }
    let shape = query_stats.then(|| Arc::new(shape_of(sql, dialect)));
    if known.len() >= STATEMENTS_PER_CONNECTION {
        known.clear();
    }
    let learned = Known {
        sql: sql.into(),
        steps: steps.into_boxed_slice(),
        tables: written.into_boxed_slice(),
        batch: count > 1,
        shape,
    };
    known.insert(hash, learned);
    &known[&hash]
}

impl Instrumentation for DbkitInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::StartQuery { query, .. } => self.statement_started(*query),
            InstrumentationEvent::FinishQuery { error, .. } => self.statement_finished(*error),
            InstrumentationEvent::BeginTransaction { .. } => self.tracker.transaction_began(),
            InstrumentationEvent::CommitTransaction { .. } => self.tracker.transaction_committing(),
            InstrumentationEvent::RollbackTransaction { .. } => {
                self.tracker.transaction_rolling_back()
            }
            _ => {}
        }
        if let Some(inner) = &mut self.inner {
            inner.on_connection_event(event);
        }
    }
}

/// How to instrument a connection.
///
/// ```
/// use diesel::prelude::*;
///
/// let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// dbkit_diesel::Instrument::new().install(&mut conn);
/// ```
#[derive(Default)]
pub struct Instrument {
    visibility: WriteVisibility,
    no_query_stats: bool,
    dialect: Option<Dialect>,
    inner: Option<Box<dyn Instrumentation>>,
}

impl fmt::Debug for Instrument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrument")
            .field("visibility", &self.visibility)
            .field("query_stats", &!self.no_query_stats)
            .field("dialect", &self.dialect)
            .field("wraps_another", &self.inner.is_some())
            .finish()
    }
}

impl Instrument {
    /// The defaults: writes count when their transaction commits; diesel's
    /// default instrumentation (`set_default_instrumentation`) is kept.
    pub fn new() -> Self {
        Instrument::default()
    }

    /// For a connection inside `begin_test_transaction`, which never
    /// commits: treat each write as committed when its statement ends (and
    /// each rollback, of the transaction or to a savepoint, as a write of
    /// what it undid), and let cached reads on the connection behave as
    /// outside a transaction. Defaults to off.
    pub fn test_transaction(mut self) -> Self {
        self.visibility = WriteVisibility::AtStatement;
        self
    }

    /// Whether the connection's statements are timed and recorded by shape
    /// (query statistics, slow-query log, N+1 detection). Defaults to on.
    pub fn query_stats(mut self, enabled: bool) -> Self {
        self.no_query_stats = !enabled;
        self
    }

    /// Whose SQL rules the connection's statements are read by. Defaults to
    /// the connection's diesel backend; a `MultiConnection`, whose backend
    /// type does not say, is read by rules on which every dialect agrees
    /// (what they disagree on counts as a write of every table, and DDL as
    /// a transaction of unknown state). [`Pool`](crate::Pool) sets it from
    /// the database URL for such connections.
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = Some(dialect);
        self
    }

    /// Your own instrumentation, called after dbkit's for every event.
    /// Defaults to diesel's default instrumentation, if one is set.
    pub fn wrapping(mut self, instrumentation: impl Instrumentation) -> Self {
        self.inner = Some(Box::new(instrumentation));
        self
    }

    /// Installs it on `conn`. A connection already instrumented by dbkit is
    /// left as it is.
    pub fn install<C: Connection>(self, conn: &mut C) {
        if is_instrumented(conn) {
            return;
        }
        let inner = self
            .inner
            .or_else(diesel::connection::get_default_instrumentation);
        let dialect = self.dialect.unwrap_or_else(dialect_of::<C>);
        conn.set_instrumentation(DbkitInstrumentation::new(
            self.visibility,
            dialect,
            !self.no_query_stats,
            inner,
        ));
    }
}

/// Whether dbkit's instrumentation is installed on `conn`.
pub fn is_instrumented<C: Connection>(conn: &mut C) -> bool {
    dbkit_instrumentation(conn).is_some()
}

/// dbkit's instrumentation of `conn`, if installed.
pub(crate) fn dbkit_instrumentation<C: Connection>(
    conn: &mut C,
) -> Option<&mut DbkitInstrumentation> {
    conn.instrumentation()
        .downcast_mut::<DbkitInstrumentation>()
}

/// Installs dbkit's instrumentation on a connection established by hand, so
/// its committed writes invalidate cached reads. Diesel's default
/// instrumentation, if set, keeps being called.
///
/// ```
/// use diesel::prelude::*;
///
/// let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// dbkit_diesel::instrument(&mut conn);
/// assert!(dbkit_diesel::is_instrumented(&mut conn));
/// ```
pub fn instrument<C: Connection>(conn: &mut C) {
    Instrument::new().install(conn);
}

/// An r2d2 connection customizer that instruments every connection the pool
/// opens.
///
/// ```
/// # #[cfg(feature = "sqlite")] {
/// use diesel::r2d2::{ConnectionManager, Pool};
/// use diesel::SqliteConnection;
///
/// let pool = Pool::builder()
///     .max_size(1)
///     .connection_customizer(Box::new(dbkit_diesel::InstrumentConnections))
///     .build(ConnectionManager::<SqliteConnection>::new(":memory:"))
///     .unwrap();
/// assert!(dbkit_diesel::is_instrumented(&mut *pool.get().unwrap()));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct InstrumentConnections;

impl<C: Connection> diesel::r2d2::CustomizeConnection<C, diesel::r2d2::Error>
    for InstrumentConnections
{
    fn on_acquire(&self, conn: &mut C) -> Result<(), diesel::r2d2::Error> {
        instrument(conn);
        Ok(())
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use diesel::sql_types::Integer;

    fn sql_only(query: &dyn fmt::Display) -> String {
        let mut sql = String::new();
        let _ = write!(
            SqlOnly {
                sql: &mut sql,
                pieces: 0
            },
            "{query}"
        );
        sql
    }

    /// Pins how diesel renders a query (the SQL in one piece, then the
    /// marker in a piece of its own): the text stops at diesel's marker,
    /// and the same text written by the user is kept.
    #[test]
    fn the_sql_stops_at_diesels_marker_and_keeps_the_users_own() {
        let query = diesel::sql_query("SELECT ' -- binds: x' AS a -- binds: y\nWHERE ? = 1")
            .bind::<Integer, _>(5);
        let rendered = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query);
        assert_eq!(
            sql_only(&rendered),
            "SELECT ' -- binds: x' AS a -- binds: y\nWHERE ? = 1"
        );
        assert!(rendered.to_string().ends_with(" -- binds: [5]"));
        // `batch_execute` strings arrive whole, the marker text included.
        assert_eq!(
            sql_only(&"SELECT 1; -- binds: x\nUPDATE t SET a = 1"),
            "SELECT 1; -- binds: x\nUPDATE t SET a = 1"
        );
    }

    #[test]
    fn dialects_come_from_the_backend_or_the_url() {
        assert_eq!(dialect_of::<diesel::SqliteConnection>(), Dialect::Sqlite);
        assert_eq!(dialect_of_url("postgres://u@h/db"), Dialect::Postgres);
        assert_eq!(dialect_of_url("postgresql://h/db"), Dialect::Postgres);
        assert_eq!(dialect_of_url("mysql://root@127.0.0.1/x"), Dialect::Mysql);
        assert_eq!(dialect_of_url("/var/lib/app.db"), Dialect::Sqlite);
        assert_eq!(dialect_of_url("file:app.db?mode=ro"), Dialect::Sqlite);
        assert_eq!(dialect_of_url("weird://x"), Dialect::Any);
    }
}
