//! The diesel instrumentation that sees every statement of a connection and
//! drives the table clock through [`WriteTracker`].
//!
//! Per statement it renders the SQL once, without its bind values (they are
//! personal data, and formatting them costs time on every statement), into a
//! buffer reused for the connection's whole life, and classifies it without
//! allocating. Only writes touch the table clock. With query statistics on,
//! it also times the statement and records it under its shape, normalized
//! once per distinct statement text and connection.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use dbkit_core::guard;
use dbkit_core::queries::{self, SessionQueries, SessionScope, Shape};
use dbkit_core::tables;
use dbkit_core::tracker::{Step, WriteTracker, WriteVisibility};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::Connection;

use crate::classify::{statements, Effect, MAX_TABLES};
use crate::shape::shape_of;

/// The marker diesel's query rendering puts between the SQL and its binds.
const BINDS: &str = " -- binds: ";

/// Collects rendered SQL up to the binds, then stops the rendering.
struct SqlOnly<'a>(&'a mut String);

impl fmt::Write for SqlOnly<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(at) = s.find(BINDS) {
            self.0.push_str(&s[..at]);
            return Err(fmt::Error); // stop: the binds are never formatted
        }
        self.0.push_str(s);
        if self.0.ends_with(BINDS) {
            let keep = self.0.len() - BINDS.len();
            self.0.truncate(keep);
            return Err(fmt::Error);
        }
        Ok(())
    }
}

/// Distinct statements whose shape a connection remembers; past it the
/// memory starts over (a connection running more distinct statements than
/// this is building SQL from values, and pays one normalization each).
const SHAPES_PER_CONNECTION: usize = 256;

/// dbkit's instrumentation: invalidates cached reads when writes commit,
/// and records what each statement cost.
///
/// Install it with [`instrument`] (or [`Instrument`] for the options); a
/// pool does it on every connection it opens.
pub struct DbkitInstrumentation {
    tracker: WriteTracker,
    sql: String,
    /// Whether statements are timed and recorded by shape.
    query_stats: bool,
    /// Statement text (its hash) to shape, so normalizing happens once per
    /// distinct statement and connection.
    shapes: HashMap<u64, Arc<Shape>, foldhash::fast::RandomState>,
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
            .field("wraps_another", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl DbkitInstrumentation {
    fn new(
        visibility: WriteVisibility,
        query_stats: bool,
        inner: Option<Box<dyn Instrumentation>>,
    ) -> Self {
        DbkitInstrumentation {
            tracker: WriteTracker::new(visibility),
            sql: String::with_capacity(256),
            query_stats,
            shapes: HashMap::default(),
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

    fn statement_started(&mut self, query: &dyn diesel::connection::DebugQuery) {
        self.sql.clear();
        // An Err here only means the sink stopped at the binds.
        let _ = write!(SqlOnly(&mut self.sql), "{query}");
        if self.query_stats {
            let shape = self.shape();
            self.running = Some((shape, Instant::now()));
        }
        self.classify();
    }

    /// The shape of the statement in `self.sql`, normalized on first sight.
    fn shape(&mut self) -> Arc<Shape> {
        let hash = foldhash::fast::FixedState::default().hash_one(self.sql.as_str());
        if let Some(shape) = self.shapes.get(&hash) {
            return Arc::clone(shape);
        }
        if self.shapes.len() >= SHAPES_PER_CONNECTION {
            self.shapes.clear();
        }
        let shape = Arc::new(shape_of(&self.sql));
        self.shapes.insert(hash, Arc::clone(&shape));
        shape
    }

    fn statement_finished(&mut self, failed: bool) {
        self.tracker.statement_finished(failed);
        if let Some((shape, started)) = self.running.take() {
            queries::record(&shape, started.elapsed(), failed, self.session.scope());
            self.session.ran(&shape);
        }
    }

    /// Drives the table clock from what the statement in `self.sql` writes.
    fn classify(&mut self) {
        let check_reads = cfg!(debug_assertions) && guard::running();

        // Up to `BATCH` statements are tracked one by one, their tables
        // resolved into fixed arrays: no allocation per statement.
        const BATCH: usize = 4;
        let mut kinds = [Kind::NoWrite; BATCH];
        let mut written = [[tables::table_all(); MAX_TABLES]; BATCH];
        let mut count = 0;
        for effect in statements(&self.sql, check_reads) {
            if count == BATCH {
                // More statements than tracked one by one: whatever they do
                // is covered by invalidating everything.
                self.tracker.statement_started(&[Step::WriteAll]);
                return;
            }
            kinds[count] = match effect {
                Effect::Writes(t) if !t.overflowed() => {
                    for (slot, name) in written[count].iter_mut().zip(t.as_slice()) {
                        *slot = tables::table(name);
                    }
                    Kind::Write(t.as_slice().len())
                }
                Effect::Writes(_) | Effect::WritesUnknown => Kind::WriteAll,
                Effect::Begin => Kind::Begin,
                Effect::Commit => Kind::Commit,
                Effect::Rollback => Kind::Rollback,
                Effect::Reads(t) => {
                    if check_reads {
                        guard::check_reads(t.as_slice());
                    }
                    Kind::NoWrite
                }
                Effect::Savepoint | Effect::NoData | Effect::Empty => Kind::NoWrite,
            };
            count += 1;
        }
        let steps: [Step<'_>; BATCH] = std::array::from_fn(|i| match kinds[i] {
            Kind::NoWrite => Step::NoWrite,
            Kind::Write(n) => Step::Write(&written[i][..n]),
            Kind::WriteAll => Step::WriteAll,
            Kind::Begin => Step::Begin,
            Kind::Commit => Step::Commit,
            Kind::Rollback => Step::Rollback,
        });
        self.tracker.statement_started(&steps[..count]);
    }
}

/// A statement's effect before its tables are borrowed into a [`Step`].
#[derive(Clone, Copy)]
enum Kind {
    NoWrite,
    /// Writes the first `n` resolved tables.
    Write(usize),
    WriteAll,
    Begin,
    Commit,
    Rollback,
}

impl Instrumentation for DbkitInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::StartQuery { query, .. } => self.statement_started(*query),
            InstrumentationEvent::FinishQuery { error, .. } => {
                self.statement_finished(error.is_some())
            }
            InstrumentationEvent::BeginTransaction { depth, .. } => {
                self.tracker.transaction_began(depth.get())
            }
            InstrumentationEvent::CommitTransaction { depth, .. } => {
                self.tracker.transaction_committing(depth.get())
            }
            InstrumentationEvent::RollbackTransaction { depth, .. } => {
                self.tracker.transaction_rolled_back(depth.get())
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
    inner: Option<Box<dyn Instrumentation>>,
}

impl fmt::Debug for Instrument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrument")
            .field("visibility", &self.visibility)
            .field("query_stats", &!self.no_query_stats)
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
    /// commits: treat each write as committed when its statement ends, and
    /// let cached reads on the connection's thread behave as outside a
    /// transaction. Defaults to off.
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
        conn.set_instrumentation(DbkitInstrumentation::new(
            self.visibility,
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
