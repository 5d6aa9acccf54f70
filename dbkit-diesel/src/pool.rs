//! `dbkit::Pool`: an r2d2 pool of diesel connections whose every checkout
//! is a tracked session (Contract 2) and whose every connection is
//! instrumented (Contract 1).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbkit_core::pool::{
    BreakerConfig, BreakerState, PoolConfig, PoolReport, PoolTracker, SessionInfo, SessionToken,
    TrackerConfig,
};
use dbkit_core::queries::SessionScope;
use dbkit_core::Error;
use diesel::connection::{Instrumentation, TransactionManager};
use diesel::r2d2::{
    self, ConnectionManager, CustomizeConnection, PooledConnection, R2D2Connection,
};
use diesel::Connection;
use serde::Serialize;

use crate::classify::Dialect;
use crate::instrument::{
    dbkit_instrumentation, dialect_of, dialect_of_url, is_instrumented, Instrument,
};

/// Makes the instrumentation of each new connection that dbkit's wraps.
type InstrumentationFactory = Arc<dyn Fn() -> Box<dyn Instrumentation> + Send + Sync>;

/// A pool of diesel connections whose checkouts are tracked sessions.
///
/// Cloning it is cheap and gives another handle to the same pool.
///
/// ```
/// use diesel::prelude::*;
///
/// let pool = dbkit_diesel::Pool::<SqliteConnection>::builder()
///     .max_size(2)
///     .build(":memory:")?;
/// let mut conn = pool.get()?; // a session, labelled with this line
/// diesel::sql_query("SELECT 1").execute(&mut *conn)?;
/// assert_eq!(pool.sessions().len(), 1);
/// drop(conn);
/// assert!(pool.sessions().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Pool<C: R2D2Connection + 'static> {
    inner: r2d2::Pool<ConnectionManager<C>>,
    tracker: Arc<PoolTracker>,
    timeout: Duration,
}

impl<C: R2D2Connection + 'static> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
            tracker: Arc::clone(&self.tracker),
            timeout: self.timeout,
        }
    }
}

impl<C: R2D2Connection + 'static> fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.tracker.name())
            .field("state", &self.inner.state())
            .finish_non_exhaustive()
    }
}

impl<C: R2D2Connection + 'static> Pool<C> {
    /// Settings for a new pool.
    pub fn builder() -> Builder<C> {
        Builder::new()
    }

    /// A pool configured from the environment (see [`PoolConfig`]), with
    /// connections opened in the background.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable that is missing or malformed.
    pub fn from_env() -> Result<Self, Error> {
        let config = PoolConfig::from_env()?;
        Builder::new()
            .config(&config)
            .build_unchecked(&config.database_url)
    }

    /// Checks out a connection, waiting at most the pool's
    /// `connection_timeout`. The session is labelled with the caller's
    /// location and ends when the returned [`Session`] drops.
    ///
    /// # Errors
    ///
    /// [`Error::PoolTimeout`] naming the sessions that hold the
    /// connections, [`Error::NestedCheckout`] when this thread already holds
    /// one and none is free, [`Error::CircuitOpen`] while the database
    /// refuses connections.
    #[track_caller]
    pub fn get(&self) -> Result<Session<C>, Error> {
        self.checkout(None, Location::caller(), self.timeout)
    }

    /// As [`get`](Self::get), with a label of your own for the report.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_labeled(&self, label: &'static str) -> Result<Session<C>, Error> {
        self.checkout(Some(label), Location::caller(), self.timeout)
    }

    /// The checkout `#[with_session]` expands to.
    #[doc(hidden)]
    pub fn checkout_at(
        &self,
        label: &'static str,
        location: &'static Location<'static>,
    ) -> Result<Session<C>, Error> {
        self.checkout(Some(label), location, self.timeout)
    }

    fn checkout(
        &self,
        label: Option<&'static str>,
        location: &'static Location<'static>,
        timeout: Duration,
    ) -> Result<Session<C>, Error> {
        let admission = self.tracker.admit(label, location, || {
            let state = self.inner.state();
            state.idle_connections > 0 || state.connections < self.inner.max_size()
        })?;
        // An idle connection is taken without counting a waiter; only a
        // checkout that has to wait is one.
        if let Some(conn) = self.inner.try_get() {
            return Ok(self.session(conn, admission.checked_out(), label, location));
        }
        let admission = admission.waiting();
        match self.inner.get_timeout(timeout) {
            Ok(conn) => Ok(self.session(conn, admission.checked_out(), label, location)),
            Err(e) => Err(admission.timed_out(timeout, connect_error(&e))),
        }
    }

    /// Tells the connection's statements which session they run for.
    fn session(
        &self,
        mut conn: PooledConnection<ConnectionManager<C>>,
        token: SessionToken,
        label: Option<&'static str>,
        location: &'static Location<'static>,
    ) -> Session<C> {
        if let Some(instrumentation) = dbkit_instrumentation(&mut *conn) {
            instrumentation.begin_session(SessionScope {
                pool: self.tracker.shared_name(),
                session: token.id(),
                label,
                location,
            });
        }
        let span = tracing::debug_span!(
            "db_session",
            pool = %self.tracker.name(),
            session = token.id(),
            label = label.unwrap_or_default(),
            location = %location,
        );
        Session {
            conn,
            token,
            span,
            after_panic: false,
        }
    }

    /// The r2d2 pool underneath. Checkouts made through it are not
    /// tracked: no session, no leak detection, no nested-checkout check.
    /// For code that must hand an r2d2 pool to a library.
    pub fn r2d2(&self) -> &r2d2::Pool<ConnectionManager<C>> {
        &self.inner
    }

    /// The pool's name, as reports and errors show it.
    pub fn name(&self) -> &str {
        self.tracker.name()
    }

    /// The sessions open now, longest held first.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.tracker.sessions()
    }

    /// The pool's figures and open sessions.
    pub fn report(&self) -> PoolReport {
        self.tracker.report()
    }

    /// Reports sessions held past the leak threshold now rather than at the
    /// watchdog's next look; returns how many were newly reported.
    pub fn check_leaks(&self) -> u64 {
        self.tracker.check_leaks()
    }

    /// Checks out a connection within `timeout` and runs diesel's ping
    /// (`SELECT 1`) on it. Never fails: a failure is reported in the result.
    ///
    /// ```
    /// # use diesel::prelude::*;
    /// let pool = dbkit_diesel::Pool::<SqliteConnection>::builder().build(":memory:")?;
    /// let health = pool.health(std::time::Duration::from_secs(1));
    /// assert!(health.ok, "{:?}", health.error);
    /// # Ok::<(), dbkit_core::Error>(())
    /// ```
    #[track_caller]
    pub fn health(&self, timeout: Duration) -> Health {
        let start = Instant::now();
        let result = self
            .checkout(Some("dbkit::health"), Location::caller(), timeout)
            .and_then(|mut session| {
                session.ping().map_err(|e| Error::Pool {
                    pool: self.name().to_owned(),
                    message: format!("health query failed: {e}"),
                })
            });
        let latency = start.elapsed();
        let report = self.tracker.report();
        Health {
            ok: result.is_ok(),
            latency_us: latency.as_micros() as u64,
            error: result.err().map(|e| e.to_string()),
            max_size: report.max_size,
            connections: report.connections,
            idle: report.idle,
            in_use: report.in_use,
            waiters: report.waiters,
            breaker: report.breaker,
        }
    }
}

/// The text r2d2 puts before the last connection error in a timeout.
fn connect_error(e: &r2d2::PoolError) -> Option<String> {
    let text = e.to_string();
    let rest = text.strip_prefix("timed out waiting for connection")?;
    rest.strip_prefix(": ").map(str::to_owned)
}

/// The result of [`Pool::health`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Whether a connection was checked out and answered.
    pub ok: bool,
    /// Checkout and query, in microseconds.
    pub latency_us: u64,
    /// What failed, if anything.
    pub error: Option<String>,
    /// The most connections the pool opens.
    pub max_size: u32,
    /// Connections open.
    pub connections: u32,
    /// Connections open and free.
    pub idle: u32,
    /// Connections checked out (this check's own has been returned).
    pub in_use: u32,
    /// Checkouts waiting for a connection.
    pub waiters: u32,
    /// The circuit breaker.
    pub breaker: BreakerState,
}

/// A checked-out connection: derefs to `C`, returns to the pool when
/// dropped. A transaction left open (by a panic, or a forgotten
/// `begin_transaction`) is rolled back first, so the connection goes back
/// clean instead of being discarded.
pub struct Session<C: R2D2Connection + 'static> {
    conn: PooledConnection<ConnectionManager<C>>,
    token: SessionToken,
    /// `db_session`, entered while a `#[with_session]` body runs.
    span: tracing::Span,
    after_panic: bool,
}

impl<C: R2D2Connection + 'static> Session<C> {
    /// Runs `body` on the session's connection and ends the session. If
    /// `body` panics, the open transaction is rolled back and the connection
    /// returned to the pool before the panic continues: diesel's pool
    /// discards any connection dropped while the thread is panicking.
    #[doc(hidden)]
    pub fn run<R>(mut self, body: impl FnOnce(&mut C) -> R) -> R {
        let span = self.span.clone();
        let entered = span.enter();
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut self.conn)));
        drop(entered);
        match outcome {
            Ok(out) => out,
            Err(panic) => {
                self.after_panic = true;
                drop(self);
                resume_unwind(panic)
            }
        }
    }

    /// The session as the report shows it.
    pub fn info(&self) -> Option<SessionInfo> {
        self.token.info()
    }
}

impl<C: R2D2Connection + 'static> fmt::Debug for Session<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl<C: R2D2Connection + 'static> Deref for Session<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C: R2D2Connection + 'static> DerefMut for Session<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C: R2D2Connection + 'static> Drop for Session<C> {
    fn drop(&mut self) {
        let panicking = self.after_panic || std::thread::panicking();
        roll_back_open_transaction(&mut *self.conn, &self.token, panicking);
        if let Some(instrumentation) = dbkit_instrumentation(&mut *self.conn) {
            instrumentation.end_session();
        }
    }
}

fn roll_back_open_transaction<C: Connection>(conn: &mut C, token: &SessionToken, panicking: bool) {
    let depth = C::TransactionManager::transaction_manager_status_mut(conn).transaction_depth();
    let Ok(Some(depth)) = depth else {
        if depth.is_ok() {
            roll_back_raw_transaction(conn, token);
        }
        return; // broken: r2d2 discards a broken connection
    };
    let label = token.info().map(|i| i.label).unwrap_or_default();
    if panicking {
        tracing::info!(session = token.id(), label = %label, depth = depth.get(), "panic inside a session: rolling back its open transaction");
    } else {
        tracing::warn!(session = token.id(), label = %label, depth = depth.get(), "session ended with an open transaction: rolling it back");
    }
    for _ in 0..depth.get() {
        if let Err(e) = C::TransactionManager::rollback_transaction(conn) {
            tracing::warn!(
                session = token.id(),
                "rollback failed, the pool discards the connection: {e}"
            );
            return;
        }
    }
}

/// diesel has no transaction open, but the statements opened one by raw
/// SQL (`BEGIN` in a `batch_execute`), or dbkit cannot tell (a failed
/// COMMIT that may have left one open): a `ROLLBACK` ends it before the
/// connection goes back, and tells the tracker where it stands.
fn roll_back_raw_transaction<C: Connection>(conn: &mut C, token: &SessionToken) {
    let open = dbkit_instrumentation(conn).is_some_and(|i| i.in_transaction());
    if !open {
        return;
    }
    let autocommit_off = dbkit_instrumentation(conn).is_some_and(|i| i.autocommit_may_be_off());
    let label = token.info().map(|i| i.label).unwrap_or_default();
    tracing::warn!(session = token.id(), label = %label, "session ended inside a transaction opened by raw SQL, or of unknown state: rolling it back");
    if let Err(e) = conn.batch_execute("ROLLBACK") {
        // SQLite answers that none was open: the tracker learns it.
        tracing::debug!(
            session = token.id(),
            "rollback at the end of the session: {e}"
        );
    }
    if autocommit_off {
        // Left off, the next session's writes would wait in a transaction
        // nobody commits.
        if let Err(e) = conn.batch_execute("SET autocommit = 1") {
            tracing::warn!(
                session = token.id(),
                "could not turn autocommit back on: {e}"
            );
        }
    }
}

/// Settings of a [`Pool`]: r2d2's, plus leak detection, the circuit
/// breaker and the instrumentation.
pub struct Builder<C: R2D2Connection + 'static> {
    name: Option<String>,
    max_size: u32,
    min_idle: Option<u32>,
    connection_timeout: Duration,
    max_lifetime: Option<Duration>,
    idle_timeout: Option<Duration>,
    test_on_check_out: bool,
    leak_threshold: Option<Duration>,
    capture_backtraces: bool,
    breaker: BreakerConfig,
    instrument: bool,
    test_transaction: bool,
    query_stats: bool,
    instrumentation: Option<InstrumentationFactory>,
    customizer: Option<Box<dyn CustomizeConnection<C, r2d2::Error>>>,
}

impl<C: R2D2Connection + 'static> fmt::Debug for Builder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("max_size", &self.max_size)
            .field("min_idle", &self.min_idle)
            .field("connection_timeout", &self.connection_timeout)
            .field("leak_threshold", &self.leak_threshold)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl<C: R2D2Connection + 'static> Default for Builder<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: R2D2Connection + 'static> Builder<C> {
    /// r2d2's defaults, no leak threshold, the default breaker (5 failures,
    /// 5 s), instrumentation on.
    pub fn new() -> Self {
        Builder {
            name: None,
            max_size: 10,
            min_idle: None,
            connection_timeout: Duration::from_secs(30),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            test_on_check_out: true,
            leak_threshold: None,
            capture_backtraces: false,
            breaker: BreakerConfig::default(),
            instrument: true,
            test_transaction: false,
            query_stats: true,
            instrumentation: None,
            customizer: None,
        }
    }

    /// Applies a [`PoolConfig`]: `size` connections kept, `size +
    /// max_overflow` at most, its timeout and recycle time.
    pub fn config(mut self, config: &PoolConfig) -> Self {
        self.min_idle = Some(config.size);
        self.max_size = config.max_size();
        self.connection_timeout = config.timeout;
        self.max_lifetime = config.recycle;
        self
    }

    /// The name in reports and errors. Defaults to the database URL without
    /// its credentials and parameters.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The most connections open at once. Defaults to 10.
    pub fn max_size(mut self, max_size: u32) -> Self {
        self.max_size = max_size;
        self
    }

    /// Connections kept open when idle. Defaults to `max_size`.
    pub fn min_idle(mut self, min_idle: Option<u32>) -> Self {
        self.min_idle = min_idle;
        self
    }

    /// How long a checkout waits for a connection. Defaults to 30 s.
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long a connection lives before it is replaced. Defaults to 30 min.
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// How long a connection above `min_idle` stays open unused. Defaults
    /// to 10 min.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Ping each connection before handing it out, so a dead one is
    /// replaced rather than returned. Defaults to on.
    pub fn test_on_check_out(mut self, test: bool) -> Self {
        self.test_on_check_out = test;
        self
    }

    /// Report a session held longer than this as a possible leak (a warning
    /// with its label and call site, and a note when it comes back).
    /// Defaults to off.
    pub fn leak_threshold(mut self, threshold: Duration) -> Self {
        self.leak_threshold = Some(threshold);
        self
    }

    /// Capture a backtrace at each checkout, shown with leaks and in the
    /// report. Costs microseconds per checkout. Defaults to off.
    pub fn capture_backtraces(mut self, capture: bool) -> Self {
        self.capture_backtraces = capture;
        self
    }

    /// When checkouts start failing at once instead of waiting out the
    /// timeout. Defaults to 5 failed attempts in a row, for 5 s.
    pub fn circuit_breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Instrument every connection, so committed writes invalidate cached
    /// reads. Defaults to on; turning it off makes `#[cached_query]` results
    /// stale after writes through this pool.
    pub fn instrument(mut self, instrument: bool) -> Self {
        self.instrument = instrument;
        self
    }

    /// For pools of connections inside `begin_test_transaction` (r2d2's
    /// `TestCustomizer`): writes count as committed when their statement
    /// ends. Defaults to off.
    pub fn test_transaction(mut self, test_transaction: bool) -> Self {
        self.test_transaction = test_transaction;
        self
    }

    /// Time each statement and record it by shape (query statistics, the
    /// slow-query log, N+1 detection per session). Defaults to on.
    pub fn query_stats(mut self, enabled: bool) -> Self {
        self.query_stats = enabled;
        self
    }

    /// Your own instrumentation for each connection, called after dbkit's.
    /// Use this rather than `set_instrumentation` in a customizer, which
    /// would replace dbkit's. Defaults to diesel's default instrumentation.
    pub fn instrumentation<I: Instrumentation>(
        mut self,
        make: impl Fn() -> I + Send + Sync + 'static,
    ) -> Self {
        self.instrumentation = Some(Arc::new(move || Box::new(make())));
        self
    }

    /// Your own connection customizer, run after dbkit has instrumented
    /// the connection. Defaults to none.
    pub fn connection_customizer(
        mut self,
        customizer: Box<dyn CustomizeConnection<C, r2d2::Error>>,
    ) -> Self {
        self.customizer = Some(customizer);
        self
    }

    /// Builds the pool and waits (up to `connection_timeout`) until
    /// `min_idle` connections are open.
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] if the settings are inconsistent or the connections
    /// could not be opened in time.
    pub fn build(self, database_url: &str) -> Result<Pool<C>, Error> {
        self.finish(database_url, true)
    }

    /// Builds the pool without waiting: connections open in the background.
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] if the settings are inconsistent.
    pub fn build_unchecked(self, database_url: &str) -> Result<Pool<C>, Error> {
        self.finish(database_url, false)
    }

    fn finish(self, database_url: &str, wait: bool) -> Result<Pool<C>, Error> {
        let name = self.name.unwrap_or_else(|| redact(database_url));
        let min_idle = self.min_idle.unwrap_or(self.max_size);
        let invalid = |message: String| Error::Pool {
            pool: name.clone(),
            message,
        };
        if self.max_size == 0 {
            return Err(invalid("`max_size` must be at least 1".into()));
        }
        if min_idle > self.max_size {
            return Err(invalid(format!(
                "`min_idle` ({min_idle}) is larger than `max_size` ({})",
                self.max_size
            )));
        }
        if self.connection_timeout.is_zero() {
            return Err(invalid("`connection_timeout` must be positive".into()));
        }
        let mut tracker_config = TrackerConfig::new(name.clone(), self.max_size);
        tracker_config.min_idle = min_idle;
        tracker_config.leak_threshold = self.leak_threshold;
        tracker_config.capture_backtraces = self.capture_backtraces;
        tracker_config.breaker = self.breaker;
        let tracker = PoolTracker::new(tracker_config);
        let events = Events(Arc::clone(&tracker));
        let dialect = match dialect_of::<C>() {
            Dialect::Any => dialect_of_url(database_url),
            known => known,
        };
        let customizer = Customizer {
            instrument: self.instrument,
            dialect,
            test_transaction: self.test_transaction,
            query_stats: self.query_stats,
            instrumentation: self.instrumentation,
            user: self.customizer,
        };
        let builder = r2d2::Pool::builder()
            .max_size(self.max_size)
            .min_idle(Some(min_idle))
            .connection_timeout(self.connection_timeout)
            .max_lifetime(self.max_lifetime)
            .idle_timeout(self.idle_timeout)
            .test_on_check_out(self.test_on_check_out)
            .error_handler(Box::new(events.clone()))
            .event_handler(Box::new(events))
            .connection_customizer(Box::new(customizer));
        let manager = ConnectionManager::<C>::new(database_url);
        let inner = if wait {
            builder
                .build(manager)
                .map_err(|e| invalid(format!("could not open connections: {e}")))?
        } else {
            builder.build_unchecked(manager)
        };
        Ok(Pool {
            inner,
            tracker,
            timeout: self.connection_timeout,
        })
    }
}

/// A database URL fit for logs: no user, password or parameters.
fn redact(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{rest}")
        }
        None => url.to_owned(),
    }
}

/// Feeds r2d2's events to the tracker.
#[derive(Clone)]
struct Events(Arc<PoolTracker>);

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Events").field(&self.0.name()).finish()
    }
}

impl r2d2::HandleEvent for Events {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        self.0.connection_opened();
    }

    fn handle_release(&self, _: r2d2::event::ReleaseEvent) {
        self.0.connection_closed();
    }

    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        PoolTracker::record_wait(event.duration());
    }
}

impl r2d2::HandleError<r2d2::Error> for Events {
    fn handle_error(&self, error: r2d2::Error) {
        let message = error.to_string();
        tracing::debug!(pool = %self.0.name(), "connection error: {message}");
        self.0.connect_failed(&message);
    }
}

/// Instruments each new connection, then runs the user's customizer.
struct Customizer<C> {
    instrument: bool,
    dialect: Dialect,
    test_transaction: bool,
    query_stats: bool,
    instrumentation: Option<InstrumentationFactory>,
    user: Option<Box<dyn CustomizeConnection<C, r2d2::Error>>>,
}

impl<C> fmt::Debug for Customizer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Customizer")
            .field("instrument", &self.instrument)
            .finish_non_exhaustive()
    }
}

impl<C: R2D2Connection + 'static> CustomizeConnection<C, r2d2::Error> for Customizer<C> {
    fn on_acquire(&self, conn: &mut C) -> Result<(), r2d2::Error> {
        if self.instrument {
            let mut instrument = Instrument::new()
                .query_stats(self.query_stats)
                .dialect(self.dialect);
            if self.test_transaction {
                instrument = instrument.test_transaction();
            }
            if let Some(make) = &self.instrumentation {
                instrument = instrument.wrapping(make());
            }
            instrument.install(conn);
        }
        if let Some(user) = &self.user {
            user.on_acquire(conn)?;
            if self.instrument && !is_instrumented(conn) {
                // Going on would serve stale cached reads after this
                // connection's writes.
                return Err(r2d2::Error::ConnectionError(
                    diesel::ConnectionError::BadConnection(
                        "the pool's connection customizer replaced dbkit's instrumentation \
                         (`set_instrumentation`); give yours to `Builder::instrumentation` instead, \
                         and dbkit calls it after its own"
                            .into(),
                    ),
                ));
            }
        }
        Ok(())
    }

    fn on_release(&self, conn: C) {
        if let Some(user) = &self.user {
            user.on_release(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_drops_credentials_and_parameters() {
        assert_eq!(
            redact("postgres://app:s3cret@db.internal:5432/app?sslmode=require"),
            "postgres://db.internal:5432/app"
        );
        assert_eq!(redact("mysql://root@localhost/x"), "mysql://localhost/x");
        assert_eq!(redact("/var/lib/app.db"), "/var/lib/app.db");
    }
}
