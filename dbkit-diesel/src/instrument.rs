//! The diesel instrumentation that sees every statement of a connection and
//! drives the table clock through [`WriteTracker`].
//!
//! Per statement it renders the SQL once, without its bind values (they are
//! personal data, and formatting them costs time on every statement), into a
//! buffer reused for the connection's whole life, and classifies it without
//! allocating. Only writes touch the table clock.

use std::fmt::{self, Write as _};

use dbkit_core::guard;
use dbkit_core::tables::{self, TableState};
use dbkit_core::tracker::{Step, WriteTracker, WriteVisibility};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::Connection;

use crate::classify::{statements, Effect, MAX_TABLES};

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

/// dbkit's instrumentation: invalidates cached reads when writes commit.
///
/// Install it with [`instrument`] (or [`Instrument`] for the options); a
/// pool does it on every connection it opens.
pub struct DbkitInstrumentation {
    tracker: WriteTracker,
    sql: String,
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
    fn new(visibility: WriteVisibility, inner: Option<Box<dyn Instrumentation>>) -> Self {
        DbkitInstrumentation {
            tracker: WriteTracker::new(visibility),
            sql: String::with_capacity(256),
            inner,
        }
    }

    fn statement_started(&mut self, query: &dyn diesel::connection::DebugQuery) {
        self.sql.clear();
        // An Err here only means the sink stopped at the binds.
        let _ = write!(SqlOnly(&mut self.sql), "{query}");
        let check_reads = cfg!(debug_assertions) && guard::running();

        // Tables are resolved into fixed arrays: no allocation per statement.
        let mut resolved: [[&'static TableState; MAX_TABLES]; 4] =
            [[tables::table_all(); MAX_TABLES]; 4];
        let mut steps: [Step<'_>; 4] = [Step::NoWrite; 4];
        let mut count = 0;
        let mut overflow = false;
        let mut effects = statements(&self.sql, check_reads).peekable();
        let mut lens = [0usize; 4];
        while let Some(effect) = effects.next() {
            if count == steps.len() {
                overflow = true;
                break;
            }
            let step = match effect {
                Effect::Writes(t) if !t.overflowed() => {
                    for (slot, name) in resolved[count].iter_mut().zip(t.as_slice()) {
                        *slot = tables::table(name);
                    }
                    lens[count] = t.as_slice().len();
                    Step::Write(&[])
                }
                Effect::Writes(_) | Effect::WritesUnknown => Step::WriteAll,
                Effect::Begin => Step::Begin,
                Effect::Commit => Step::Commit,
                Effect::Rollback => Step::Rollback,
                Effect::Reads(t) => {
                    if check_reads {
                        guard::check_reads(t.as_slice());
                    }
                    Step::NoWrite
                }
                Effect::Savepoint | Effect::NoData | Effect::Empty => Step::NoWrite,
            };
            steps[count] = step;
            count += 1;
        }
        if overflow {
            // More statements than we track one by one: whatever they do, it
            // is covered by invalidating everything.
            self.tracker.statement_started(&[Step::WriteAll]);
            return;
        }
        for i in 0..count {
            if let Step::Write(_) = steps[i] {
                steps[i] = Step::Write(&resolved[i][..lens[i]]);
            }
        }
        self.tracker.statement_started(&steps[..count]);
    }
}

impl Instrumentation for DbkitInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::StartQuery { query, .. } => self.statement_started(*query),
            InstrumentationEvent::FinishQuery { error, .. } => {
                self.tracker.statement_finished(error.is_some())
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
    inner: Option<Box<dyn Instrumentation>>,
}

impl fmt::Debug for Instrument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrument")
            .field("visibility", &self.visibility)
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
        conn.set_instrumentation(DbkitInstrumentation::new(self.visibility, inner));
    }
}

/// Whether dbkit's instrumentation is installed on `conn`.
pub fn is_instrumented<C: Connection>(conn: &mut C) -> bool {
    conn.instrumentation().as_any().is::<DbkitInstrumentation>()
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
