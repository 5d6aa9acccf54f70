//! Where the Redis tier connects and how patient it is.

use std::time::Duration;

use crate::breaker::BreakerConfig;
use crate::error::Error;

/// Settings of the Redis tier, given to [`set_redis`](crate::remote::set_redis).
///
/// The defaults suit a Redis on the local network: 250 ms to connect and per
/// command, a breaker that opens after 3 failures in a row for 5 s, write
/// marks that expire after 30 s, failures logged at most once a minute.
///
/// ```
/// use std::time::Duration;
/// use dbkit_core::remote::RedisConfig;
///
/// let config = RedisConfig::new("redis://:secret@127.0.0.1:6379/0")
///     .prefix("shop")
///     .command_timeout(Duration::from_millis(100));
/// assert_eq!(config.url_redacted(), "redis://:***@127.0.0.1:6379/0");
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS
    /// (with the `redis-tls` feature), or `redis+unix:///path`.
    pub url: String,
    /// Namespace of every key and of the invalidation channel: processes
    /// share values and invalidations only within one prefix.
    pub prefix: String,
    /// Longest wait for a new connection.
    pub connect_timeout: Duration,
    /// Longest wait for one command's reply.
    pub command_timeout: Duration,
    /// When to stop trying a failing server, and for how long.
    pub breaker: BreakerConfig,
    /// How long a write's mark outlives a writer that crashed before
    /// releasing it. Longer than your longest write transaction.
    pub mark_ttl: Duration,
    /// The same failure is logged at most once per this interval (the
    /// report counts every one).
    pub log_interval: Duration,
    /// Connections kept open for lookups, besides the bus's own.
    pub max_idle: usize,
    /// A CA certificate (PEM) to trust for `rediss://` instead of the
    /// system's roots (feature `redis-tls`).
    pub tls_root_certificate: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url_redacted())
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("breaker", &self.breaker)
            .field("mark_ttl", &self.mark_ttl)
            .field("log_interval", &self.log_interval)
            .field("max_idle", &self.max_idle)
            .field("tls_root_certificate", &self.tls_root_certificate.is_some())
            .finish()
    }
}

impl RedisConfig {
    /// Settings for the server at `url`, prefix `dbkit`, defaults otherwise.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "dbkit".into(),
            connect_timeout: Duration::from_millis(250),
            command_timeout: Duration::from_millis(250),
            breaker: BreakerConfig::new(3, Duration::from_secs(5)),
            mark_ttl: Duration::from_secs(30),
            log_interval: Duration::from_secs(60),
            max_idle: 16,
            tls_root_certificate: None,
        }
    }

    /// Settings from the environment: `DBKIT_REDIS_URL` (or `REDIS_URL`),
    /// `DBKIT_REDIS_PREFIX` and `DBKIT_REDIS_CA_CERT` (a PEM file to trust
    /// for `rediss://`). `Ok(None)` when no URL is set: run without Redis.
    pub fn from_env() -> Result<Option<Self>, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading variables from `lookup` (tests,
    /// configuration files).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, Error> {
        let Some(url) = lookup("DBKIT_REDIS_URL").or_else(|| lookup("REDIS_URL")) else {
            return Ok(None);
        };
        let mut config = RedisConfig::new(url);
        if let Some(prefix) = lookup("DBKIT_REDIS_PREFIX") {
            if prefix.is_empty() || prefix.contains(char::is_whitespace) {
                return Err(Error::Config {
                    variable: "DBKIT_REDIS_PREFIX",
                    value: prefix,
                    reason: "must be a non-empty name without spaces, such as `shop`".into(),
                });
            }
            config.prefix = prefix;
        }
        if let Some(path) = lookup("DBKIT_REDIS_CA_CERT") {
            let pem = std::fs::read(&path).map_err(|e| Error::Config {
                variable: "DBKIT_REDIS_CA_CERT",
                value: path.clone(),
                reason: format!("cannot be read ({e}); give the path of a PEM certificate"),
            })?;
            config.tls_root_certificate = Some(pem);
        }
        Ok(Some(config))
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the per-command timeout.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets the circuit breaker.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Sets how long a crashed writer's mark blocks its tables.
    pub fn mark_ttl(mut self, ttl: Duration) -> Self {
        self.mark_ttl = ttl;
        self
    }

    /// Trusts the CA certificate `pem` for `rediss://` (a private CA)
    /// instead of the system's roots. Needs the `redis-tls` feature.
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificate = Some(pem.into());
        self
    }

    /// Sets how often one failure is logged at most.
    pub fn log_interval(mut self, interval: Duration) -> Self {
        self.log_interval = interval;
        self
    }

    /// The URL with its password replaced by `***`, for logs and reports.
    pub fn url_redacted(&self) -> String {
        redact(&self.url)
    }
}

/// `scheme://user:password@host...` → `scheme://user:***@host...`.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    if !userinfo.contains(':') && user.is_empty() {
        return url.to_owned();
    }
    let shown = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        // `redis://password@host` is read as a password by some clients.
        "***".to_owned()
    };
    format!("{}{shown}{}", &url[..scheme_end], &rest[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_report() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("rediss://default:s3cr@t@cache.internal:6380/2"),
            "rediss://default:***@cache.internal:6380/2"
        );
        assert_eq!(redact("redis://:pw@h/0"), "redis://:***@h/0");
        assert_eq!(redact("redis://pw@h"), "redis://***@h");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn from_lookup_reads_url_and_prefix() {
        let vars = |name: &str| match name {
            "REDIS_URL" => Some("redis://h:1".to_owned()),
            "DBKIT_REDIS_PREFIX" => Some("shop".to_owned()),
            _ => None,
        };
        let config = RedisConfig::from_lookup(vars).unwrap().unwrap();
        assert_eq!(
            (config.url.as_str(), config.prefix.as_str()),
            ("redis://h:1", "shop")
        );
        assert!(RedisConfig::from_lookup(|_| None).unwrap().is_none());
        let bad = |_: &str| Some("a b".to_owned());
        assert!(RedisConfig::from_lookup(bad).is_err());
    }
}
