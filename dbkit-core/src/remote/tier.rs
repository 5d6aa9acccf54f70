//! The installed tier: one per process, replaced or removed as a whole.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

use super::client::Client;
use super::clock::{self, Seen};
use super::config::RedisConfig;
use super::{bus, RedisReport};
use crate::error::Error;
use crate::tables::{self, TableState};

/// Whether a tier is installed: the one load the write hooks pay without one.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static TIER: RwLock<Option<Installed>> = RwLock::new(None);

struct Installed {
    tier: Arc<Tier>,
    bus: Option<JoinHandle<()>>,
}

/// The tier installed now, if any.
#[inline]
pub(crate) fn current() -> Option<Arc<Tier>> {
    if !ACTIVE.load(Relaxed) {
        return None;
    }
    TIER.read().as_ref().map(|i| Arc::clone(&i.tier))
}

/// Connects the process to Redis: cached functions declared with `redis`
/// use it as their L2, every write bumps the shared table clock and is
/// published on the invalidation bus, and invalidations from other processes
/// reach this one's L1.
///
/// Only a malformed URL is an error: a server that is down is a fallback,
/// tried again after the breaker's cool-down. Until the bus has subscribed,
/// L1 entries are not served (another process may be writing). Calling it
/// again replaces the tier.
///
/// ```no_run
/// use dbkit_core::remote::{set_redis, RedisConfig};
///
/// set_redis(RedisConfig::new("redis://127.0.0.1:6379").prefix("shop"))?;
/// # Ok::<(), dbkit_core::Error>(())
/// ```
pub fn set_redis(config: RedisConfig) -> Result<(), Error> {
    let tier = Arc::new(Tier::new(&config)?);
    // Not trusted until the bus is subscribed: hold every table first.
    tier.distrust();
    let bus = bus::spawn(Arc::clone(&tier));
    // Values already in Redis may predate writes this process committed
    // without a tier (or with another): their generations move first.
    // Until that reaches Redis, this process reads no L2 (it is pending).
    let written = tables::written_tables();
    if !written.is_empty() {
        tier.commit(&written, false);
    }
    let listener: Arc<dyn tables::ClockListener> = Arc::clone(&tier) as _;
    let previous = TIER.write().replace(Installed { tier, bus });
    ACTIVE.store(true, SeqCst);
    tables::set_listener(Some(listener));
    if let Some(previous) = previous {
        previous.stop();
    }
    tracing::info!(redis = %config.url_redacted(), prefix = %config.prefix, "Redis tier installed");
    Ok(())
}

/// Disconnects the process from Redis: L1 works alone again, as without
/// [`set_redis`]. Waits for the bus thread to finish.
pub fn remove_redis() {
    let previous = TIER.write().take();
    ACTIVE.store(false, SeqCst);
    tables::set_listener(None);
    if let Some(previous) = previous {
        previous.stop();
    }
}

/// Whether [`set_redis`] installed a tier.
pub fn redis_tier_installed() -> bool {
    ACTIVE.load(Relaxed)
}

impl Installed {
    fn stop(self) {
        self.tier.stopping.store(true, SeqCst);
        if self.bus.is_some_and(|bus| bus.join().is_err()) {
            tracing::error!("the Redis invalidation bus thread panicked");
        }
        // Entries stored while this tier held the tables were refused; trust
        // what the local clock says from here on.
        self.tier.trust();
    }
}

/// One tier: the server, the clock's scripts, the bus's state.
pub(crate) struct Tier {
    pub(crate) client: Client,
    pub(crate) prefix: String,
    pub(crate) channel: String,
    /// Tells this process's own messages apart on the bus.
    pub(crate) origin: u64,
    mark_ttl_ms: u64,
    mark_script: redis::Script,
    release_script: redis::Script,
    commit_script: redis::Script,
    /// Tables whose invalidation has not reached Redis yet.
    pending: Mutex<Vec<&'static TableState>>,
    has_pending: AtomicBool,
    /// Whether this tier holds every table (its L1 is not trusted).
    holding: Mutex<bool>,
    pub(crate) subscribed: AtomicBool,
    pub(crate) stopping: AtomicBool,
}

impl Tier {
    fn new(config: &RedisConfig) -> Result<Self, Error> {
        Ok(Tier {
            client: Client::new(config)?,
            prefix: config.prefix.clone(),
            channel: clock::channel(&config.prefix),
            origin: clock::fresh_generation(),
            mark_ttl_ms: u64::try_from(config.mark_ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            mark_script: redis::Script::new(clock::MARK),
            release_script: redis::Script::new(clock::RELEASE),
            commit_script: redis::Script::new(clock::COMMIT),
            pending: Mutex::new(Vec::new()),
            has_pending: AtomicBool::new(false),
            holding: Mutex::new(false),
            subscribed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        })
    }

    /// Stops serving L1 entries: another process may write unseen.
    pub(crate) fn distrust(&self) {
        let mut holding = self.holding.lock();
        if !*holding {
            tables::hold_every_table();
            *holding = true;
        }
    }

    /// Serves L1 entries again, refusing every one stored before (messages
    /// may have been missed meanwhile).
    pub(crate) fn trust(&self) {
        let mut holding = self.holding.lock();
        if *holding {
            tables::release_every_table();
            *holding = false;
        }
    }

    fn keys(
        &self,
        tables: &[&'static TableState],
        key: fn(&str, &TableState) -> String,
    ) -> Vec<String> {
        tables.iter().map(|t| key(&self.prefix, t)).collect()
    }

    /// Sets the marks of a write that starts.
    fn mark(&self, tables: &[&'static TableState]) {
        let marks = self.keys(tables, clock::mark_key);
        self.client.run("write mark", |conn| {
            let mut call = self.mark_script.prepare_invoke();
            call.key(marks).arg(self.mark_ttl_ms);
            call.invoke::<i64>(conn)
        });
    }

    /// Bumps the generations of `tables` (and releases their marks if
    /// `release`), publishing them on the bus; remembered if Redis cannot
    /// be reached, and published when it can.
    fn commit(&self, tables: &[&'static TableState], release: bool) {
        if tables.is_empty() {
            return;
        }
        if !self.publish(tables, release) {
            self.remember(tables);
        }
    }

    /// Keeps `tables` to publish once Redis answers (each table once).
    fn remember(&self, tables: &[&'static TableState]) {
        let mut pending = self.pending.lock();
        for t in tables {
            if !pending.iter().any(|p| std::ptr::eq(*p, *t)) {
                pending.push(t);
            }
        }
        self.has_pending.store(true, SeqCst);
    }

    fn publish(&self, tables: &[&'static TableState], release: bool) -> bool {
        let mut keys = self.keys(tables, clock::generation_key);
        if release {
            keys.extend(self.keys(tables, clock::mark_key));
        }
        let message = clock::message(self.origin, tables);
        let done = self
            .client
            .run("invalidation", |conn| {
                let mut call = self.commit_script.prepare_invoke();
                call.key(keys)
                    .arg(tables.len())
                    .arg(if release { "1" } else { "0" })
                    .arg(&self.channel)
                    .arg(&message)
                    .arg(clock::fresh_generation());
                call.invoke::<i64>(conn)
            })
            .is_some();
        if done {
            self.client.counters.published.fetch_add(1, Relaxed);
        }
        done
    }

    /// Releases the marks of a write rolled back. If Redis cannot be
    /// reached they expire on their own.
    fn release(&self, tables: &[&'static TableState]) {
        let marks = self.keys(tables, clock::mark_key);
        self.client.run("write mark release", |conn| {
            let mut call = self.release_script.prepare_invoke();
            call.key(marks);
            call.invoke::<i64>(conn)
        });
    }

    /// Publishes the invalidations Redis missed. `false` if some are still
    /// pending.
    pub(crate) fn flush_pending(&self) -> bool {
        if !self.has_pending.load(SeqCst) {
            return true;
        }
        let tables: Vec<&'static TableState> = std::mem::take(&mut *self.pending.lock());
        if tables.is_empty() || self.publish(&tables, false) {
            let still = !self.pending.lock().is_empty();
            self.has_pending.store(still, SeqCst);
            if !tables.is_empty() {
                tracing::info!(redis = %self.client.url, tables = tables.len(), "published the invalidations Redis missed");
            }
            return !still;
        }
        self.remember(&tables);
        false
    }

    /// One round trip: the marks and generations of `tables`, and the value
    /// at `key`. `None` when Redis cannot answer, or when this process has
    /// invalidations Redis has not seen (its values could be stale).
    pub(crate) fn lookup(&self, tables: &[&'static TableState], key: &[u8]) -> Option<Seen> {
        if !self.flush_pending() {
            return None;
        }
        let marks = self.keys(tables, clock::mark_key);
        let generations = self.keys(tables, clock::generation_key);
        let reply = self.client.run("lookup", |conn| {
            redis::cmd("MGET")
                .arg(marks)
                .arg(generations)
                .arg(key)
                .query::<Vec<Option<Vec<u8>>>>(conn)
        })?;
        clock::read_reply(tables.len(), reply)
    }

    /// Stores a frame for `ttl_ms`.
    pub(crate) fn store(&self, key: &[u8], frame: &[u8], ttl_ms: u64) -> bool {
        self.client
            .run("store", |conn| {
                redis::cmd("SET")
                    .arg(key)
                    .arg(frame)
                    .arg("PX")
                    .arg(ttl_ms.max(1))
                    .query::<()>(conn)
            })
            .is_some()
    }

    /// Gives the tables Redis has no generation for a random one.
    pub(crate) fn start_generations(&self, tables: &[&'static TableState]) {
        let generations = self.keys(tables, clock::generation_key);
        self.client.run("generation start", |conn| {
            let mut pipe = redis::pipe();
            for key in generations {
                pipe.cmd("SET")
                    .arg(key)
                    .arg(clock::fresh_generation())
                    .arg("NX")
                    .ignore();
            }
            pipe.query::<()>(conn)
        });
    }

    /// Counts a value that did not decode, logging it at most once per interval.
    pub(crate) fn corrupt(&self, function: &'static str, why: &str) {
        self.client.counters.corrupt.fetch_add(1, Relaxed);
        self.client.throttle.warn("corrupt value", |suppressed| {
            tracing::warn!(
                redis = %self.client.url,
                function,
                suppressed,
                "a value in Redis for `{function}` does not decode ({why}); treated as a miss and replaced"
            );
        });
    }

    pub(crate) fn report(&self) -> RedisReport {
        let c = &self.client.counters;
        RedisReport {
            url: self.client.url.clone(),
            prefix: self.prefix.clone(),
            bus_subscribed: self.subscribed.load(Relaxed),
            breaker: self.client.breaker.state(),
            failures: c.failures.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            short_circuited: c.short_circuited.load(Relaxed),
            corrupt_values: c.corrupt.load(Relaxed),
            invalidations_published: c.published.load(Relaxed),
            invalidations_received: c.received.load(Relaxed),
            bus_losses: c.bus_losses.load(Relaxed),
            pending_invalidations: self.pending.lock().len(),
        }
    }
}

/// The table clock tells the tier of every mark and bump.
impl tables::ClockListener for Tier {
    fn marked(&self, tables: &[&'static TableState]) {
        self.mark(tables);
    }

    fn committed(&self, tables: &[&'static TableState], released: bool) {
        self.commit(tables, released);
    }

    fn released(&self, tables: &[&'static TableState]) {
        self.release(tables);
    }
}
