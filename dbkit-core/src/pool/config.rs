//! Pool settings from the environment, with the seed applications' names
//! and meanings (those of SQLAlchemy's `QueuePool`).

use std::time::Duration;

use crate::error::Error;

/// Pool settings read from the environment.
///
/// | variable | meaning | default |
/// |---|---|---|
/// | `DATABASE_URL` | what to connect to | required |
/// | `DB_POOL_SIZE` | connections kept open | 5 |
/// | `DB_MAX_OVERFLOW` | extra connections opened under load, closed again when idle | 10 |
/// | `DB_POOL_TIMEOUT` | seconds a checkout waits for a connection | 30 |
/// | `DB_POOL_RECYCLE` | seconds a connection lives before it is replaced; `-1` never | -1 |
///
/// Seconds may have a fraction (`0.5`).
///
/// ```
/// use dbkit_core::pool::PoolConfig;
///
/// let vars = [("DATABASE_URL", "postgres://localhost/app"), ("DB_POOL_SIZE", "20")];
/// let config = PoolConfig::from_lookup(|name| {
///     vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
/// })?;
/// assert_eq!(config.size, 20);
/// assert_eq!(config.max_size(), 30);
///
/// let err = PoolConfig::from_lookup(|name| match name {
///     "DATABASE_URL" => Some("app.db".into()),
///     "DB_POOL_TIMEOUT" => Some("soon".into()),
///     _ => None,
/// })
/// .unwrap_err();
/// assert!(err.to_string().contains("DB_POOL_TIMEOUT"));
/// # Ok::<(), dbkit_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// What to connect to.
    pub database_url: String,
    /// Connections kept open.
    pub size: u32,
    /// Extra connections allowed under load.
    pub max_overflow: u32,
    /// How long a checkout waits.
    pub timeout: Duration,
    /// How long a connection lives; `None` for ever.
    pub recycle: Option<Duration>,
}

impl PoolConfig {
    /// Defaults for `database_url`: 5 kept, 10 overflow, 30 s timeout, no recycling.
    pub fn new(database_url: impl Into<String>) -> Self {
        PoolConfig {
            database_url: database_url.into(),
            size: 5,
            max_overflow: 10,
            timeout: Duration::from_secs(30),
            recycle: None,
        }
    }

    /// The most connections open at once: `size + max_overflow`.
    pub fn max_size(&self) -> u32 {
        self.size.saturating_add(self.max_overflow)
    }

    /// Reads the process environment.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the first variable that is missing
    /// (`DATABASE_URL`) or malformed.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` instead of the environment.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let url = lookup("DATABASE_URL").unwrap_or_default();
        if url.trim().is_empty() {
            return Err(config_error(
                "DATABASE_URL",
                &url,
                "is not set; it says what to connect to (`postgres://user@host/db`, or a SQLite file path)",
            ));
        }
        let mut config = PoolConfig::new(url.trim());
        if let Some(v) = lookup("DB_POOL_SIZE") {
            config.size = count("DB_POOL_SIZE", &v, 1)?;
        }
        if let Some(v) = lookup("DB_MAX_OVERFLOW") {
            config.max_overflow = count("DB_MAX_OVERFLOW", &v, 0)?;
        }
        if let Some(v) = lookup("DB_POOL_TIMEOUT") {
            config.timeout = seconds("DB_POOL_TIMEOUT", &v)?;
        }
        if let Some(v) = lookup("DB_POOL_RECYCLE") {
            config.recycle = match v.trim() {
                "-1" => None,
                _ => Some(seconds("DB_POOL_RECYCLE", &v)?),
            };
        }
        Ok(config)
    }
}

fn config_error(variable: &'static str, value: &str, reason: &str) -> Error {
    Error::Config {
        variable,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn count(variable: &'static str, value: &str, min: u32) -> Result<u32, Error> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(config_error(
            variable,
            value,
            &format!("is not a whole number of connections of at least {min}"),
        )),
    }
}

fn seconds(variable: &'static str, value: &str) -> Result<Duration, Error> {
    let reason = if variable == "DB_POOL_RECYCLE" {
        "is not a positive number of seconds (or -1 for never)"
    } else {
        "is not a positive number of seconds"
    };
    match value.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
        _ => Err(config_error(variable, value, reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<PoolConfig, Error> {
        PoolConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_need_only_the_url() {
        let c = parse(&[("DATABASE_URL", "postgres://db/app")]).unwrap();
        assert_eq!(c, PoolConfig::new("postgres://db/app"));
        assert_eq!(c.max_size(), 15);
    }

    #[test]
    fn every_variable_is_read() {
        let c = parse(&[
            ("DATABASE_URL", " app.db "),
            ("DB_POOL_SIZE", "3"),
            ("DB_MAX_OVERFLOW", "0"),
            ("DB_POOL_TIMEOUT", "2.5"),
            ("DB_POOL_RECYCLE", "3600"),
        ])
        .unwrap();
        assert_eq!(c.database_url, "app.db");
        assert_eq!((c.size, c.max_overflow, c.max_size()), (3, 0, 3));
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.recycle, Some(Duration::from_secs(3600)));
        let never = parse(&[("DATABASE_URL", "x"), ("DB_POOL_RECYCLE", "-1")]).unwrap();
        assert_eq!(never.recycle, None);
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&str, &str)] = &[
            ("DB_POOL_SIZE", "ten"),
            ("DB_POOL_SIZE", "0"),
            ("DB_POOL_SIZE", "-3"),
            ("DB_MAX_OVERFLOW", "1.5"),
            ("DB_POOL_TIMEOUT", "0"),
            ("DB_POOL_TIMEOUT", "30s"),
            ("DB_POOL_TIMEOUT", "NaN"),
            ("DB_POOL_RECYCLE", "-2"),
            ("DB_POOL_RECYCLE", ""),
        ];
        for (var, value) in cases {
            let err = parse(&[("DATABASE_URL", "x"), (var, value)]).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(&err, Error::Config { variable, .. } if variable == var),
                "{var}={value:?}: {msg}"
            );
            assert!(
                msg.contains(var) && msg.contains(&format!("{value:?}")),
                "{msg}"
            );
        }
    }

    #[test]
    fn missing_url_is_an_error() {
        let err = parse(&[("DB_POOL_SIZE", "3")]).unwrap_err();
        assert!(err.to_string().contains("`DATABASE_URL`"), "{err}");
        assert!(err.to_string().contains("is not set"), "{err}");
    }
}
