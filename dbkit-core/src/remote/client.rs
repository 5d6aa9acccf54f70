//! Commands to Redis that can fail without failing anything: a small pool of
//! synchronous connections, the circuit breaker, the failure counters and
//! the log throttle.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::config::RedisConfig;
use crate::breaker::{Breaker, Guarded};
use crate::error::Error;

/// What the report counts about the server.
#[derive(Debug, Default)]
pub(crate) struct TierCounters {
    pub failures: AtomicU64,
    pub timeouts: AtomicU64,
    pub short_circuited: AtomicU64,
    pub corrupt: AtomicU64,
    pub published: AtomicU64,
    pub received: AtomicU64,
    pub bus_losses: AtomicU64,
}

/// Logs one kind of trouble at most once per interval, counting the rest.
#[derive(Debug)]
pub(crate) struct Throttle {
    interval: Duration,
    last: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Throttle {
    pub(crate) fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Calls `log` with the number of times `kind` was suppressed since it
    /// was last logged, unless it was logged less than an interval ago.
    pub(crate) fn warn(&self, kind: &'static str, log: impl FnOnce(u64)) {
        let now = Instant::now();
        let suppressed = {
            let mut last = self.last.lock();
            match last.get_mut(kind) {
                Some((at, count)) if now.duration_since(*at) < self.interval => {
                    *count += 1;
                    return;
                }
                Some((at, count)) => {
                    *at = now;
                    std::mem::take(count)
                }
                None => {
                    last.insert(kind, (now, 0));
                    0
                }
            }
        };
        log(suppressed);
    }
}

/// The client for `config`'s URL: TLS for `rediss://` (with the
/// `redis-tls` feature), trusting `tls_root_certificate` if given.
fn open(config: &RedisConfig) -> redis::RedisResult<redis::Client> {
    #[cfg(feature = "redis-tls")]
    if config.url.starts_with("rediss://") {
        // rustls needs a process-wide crypto provider; an application that
        // installed its own keeps it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Some(pem) = &config.tls_root_certificate {
            return redis::Client::build_with_tls(
                config.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            );
        }
    }
    #[cfg(not(feature = "redis-tls"))]
    if config.url.starts_with("rediss://") {
        return Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "`rediss://` needs dbkit's `redis-tls` feature",
        )));
    }
    redis::Client::open(config.url.as_str())
}

/// Connections to one server, behind a breaker.
pub(crate) struct Client {
    client: redis::Client,
    idle: Mutex<Vec<redis::Connection>>,
    max_idle: usize,
    connect_timeout: Duration,
    command_timeout: Duration,
    pub(crate) url: String,
    pub(crate) breaker: Breaker,
    pub(crate) counters: TierCounters,
    pub(crate) throttle: Throttle,
}

impl Client {
    /// Checks the URL; connects lazily, so a server down at startup is a
    /// fallback like any other.
    pub(crate) fn new(config: &RedisConfig) -> Result<Self, Error> {
        let url = config.url_redacted();
        let invalid = |reason: String| Error::Config {
            variable: "DBKIT_REDIS_URL",
            value: url.clone(),
            reason,
        };
        let client = open(config).map_err(|e| {
            invalid(format!(
                "is not a usable Redis URL ({e}); write `redis://[:password@]host[:port][/db]`, or `rediss://...` with the `redis-tls` feature"
            ))
        })?;
        Ok(Client {
            client,
            idle: Mutex::new(Vec::new()),
            max_idle: config.max_idle,
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
            breaker: Breaker::new(&url, Guarded::Redis, config.breaker),
            url,
            counters: TierCounters::default(),
            throttle: Throttle::new(config.log_interval),
        })
    }

    /// A new connection with the tier's timeouts.
    pub(crate) fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let conn = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.command_timeout))?;
        conn.set_write_timeout(Some(self.command_timeout))?;
        Ok(conn)
    }

    /// Runs `command` on a pooled connection. `None` when Redis could not
    /// answer: the failure is counted, logged (throttled) and fed to the
    /// breaker, and the caller falls back.
    pub(crate) fn run<T>(
        &self,
        what: &'static str,
        command: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Option<T> {
        if self.breaker.admit().is_err() {
            self.counters.short_circuited.fetch_add(1, Relaxed);
            return None;
        }
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => match self.connect() {
                Ok(conn) => conn,
                Err(e) => {
                    self.failed(what, &e);
                    return None;
                }
            },
        };
        match command(&mut conn) {
            Ok(value) => {
                self.breaker.success();
                let mut idle = self.idle.lock();
                if idle.len() < self.max_idle {
                    idle.push(conn);
                }
                Some(value)
            }
            Err(e) => {
                // The connection may hold half a reply: never reuse it.
                self.failed(what, &e);
                None
            }
        }
    }

    /// Counts, logs (throttled) and reports a failed command to the breaker.
    pub(crate) fn failed(&self, what: &'static str, error: &redis::RedisError) {
        self.counters.failures.fetch_add(1, Relaxed);
        if error.is_timeout() {
            self.counters.timeouts.fetch_add(1, Relaxed);
        }
        let message = error.to_string();
        self.breaker.failure(&message);
        self.throttle.warn(what, |suppressed| {
            tracing::warn!(
                redis = %self.url,
                operation = what,
                suppressed,
                "Redis {what} failed, falling back to the local cache and the database: {message}"
            );
        });
    }

    /// Drops pooled connections (after the server restarted, say).
    pub(crate) fn forget_connections(&self) {
        self.idle.lock().clear();
    }
}
