//! `dbkit::Error`: the one error type of dbkit's runtime.
//!
//! Every variant says what happened and what to do about it, in words a
//! person on call can act on: a pool timeout names the sessions holding the
//! connections, a configuration error names the variable.

use std::fmt;
use std::time::Duration;

use crate::pool::SessionInfo;

/// What can go wrong checking out a connection or configuring a pool.
///
/// Functions under `#[with_session]` return it through their own error type,
/// which implements `From<dbkit::Error>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection became free within the pool's timeout.
    #[error("{0}")]
    PoolTimeout(Box<PoolTimeout>),
    /// A thread that already holds a connection of a full pool asked it for
    /// another: it would wait for itself.
    #[error("{0}")]
    NestedCheckout(Box<NestedCheckout>),
    /// The database has refused connections too many times in a row;
    /// checkouts fail at once until the cool-down has passed.
    #[error(
        "pool `{pool}` is not connecting: {failures} attempts in a row failed (last: {last_error}); {}",
        refusal_period(*retry_in)
    )]
    CircuitOpen {
        /// The pool's name.
        pool: String,
        /// Consecutive failed attempts.
        failures: u32,
        /// How long until a checkout is let through to try again.
        retry_in: Duration,
        /// The last connection error.
        last_error: String,
    },
    /// An environment variable of [`PoolConfig`](crate::pool::PoolConfig)
    /// is missing or malformed.
    #[error("`{variable}`={value:?} {reason}")]
    Config {
        /// The variable, such as `DB_POOL_SIZE`.
        variable: &'static str,
        /// Its value (empty when unset).
        value: String,
        /// What is wrong with it and what is expected.
        reason: String,
    },
    /// `#[with_session]` found no pool to check out from.
    #[error(
        "no default pool for `{connection}`; call `dbkit::set_default_pool(pool)` at startup, \
         or name one with `#[with_session(pool = PATH)]`"
    )]
    NoDefaultPool {
        /// The connection type whose pool was asked for.
        connection: &'static str,
    },
    /// The pool could not be built or a connection could not be used.
    #[error("pool `{pool}`: {message}")]
    Pool {
        /// The pool's name.
        pool: String,
        /// What went wrong.
        message: String,
    },
}

/// How long checkouts keep failing at once, in words.
fn refusal_period(retry_in: Duration) -> String {
    if retry_in.is_zero() {
        "one checkout is trying the database; the others fail at once until it succeeds".into()
    } else {
        format!("checkouts fail at once for another {retry_in:.1?}")
    }
}

/// The details of [`Error::PoolTimeout`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolTimeout {
    /// The pool's name.
    pub pool: String,
    /// How long the checkout waited.
    pub waited: Duration,
    /// The most connections the pool opens.
    pub max_size: u32,
    /// Where the checkout that timed out came from.
    pub requested_at: String,
    /// The sessions holding the pool's connections, longest held first.
    pub holders: Vec<SessionInfo>,
    /// The last error opening a connection, if the pool could not connect.
    pub connect_error: Option<String>,
}

impl fmt::Display for PoolTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool `{}` had no free connection for {:.1?} (checkout at {}); ",
            self.pool, self.waited, self.requested_at
        )?;
        if self.holders.is_empty() {
            write!(f, "no session holds one")?;
        } else {
            write!(
                f,
                "{} of its {} connections are held by:",
                self.holders.len(),
                self.max_size
            )?;
            for holder in &self.holders {
                write!(f, "\n  - {holder}")?;
            }
        }
        if let Some(e) = &self.connect_error {
            write!(f, "\nlast connection error: {e}")?;
        }
        Ok(())
    }
}

/// The details of [`Error::NestedCheckout`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NestedCheckout {
    /// The pool's name.
    pub pool: String,
    /// The session this thread already holds.
    pub held: SessionInfo,
    /// Where the second checkout came from.
    pub requested_at: String,
    /// The label of the second checkout.
    pub requested_by: String,
}

impl fmt::Display for NestedCheckout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nested checkout from pool `{}`: `{}` at {} asked for a connection while this thread \
             already holds {}, and the pool has none free, so it would wait for itself; \
             pass the connection you hold instead (`#[with_session]` functions have a \
             `..._with_conn(conn, ...)` form for that)",
            self.pool, self.requested_by, self.requested_at, self.held
        )
    }
}

/// An error type a `#[with_session]` function can return a failed checkout
/// through.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a dbkit pool error",
    label = "a failed checkout is returned through this type",
    note = "`#[with_session]` returns a failed checkout as `E::from(dbkit::Error)`: implement `From<dbkit::Error>` for `{Self}` (with thiserror: a variant `#[error(transparent)] Pool(#[from] dbkit::Error)`)"
)]
pub trait SessionError {
    /// Wraps the checkout error.
    fn from_dbkit(error: Error) -> Self;
}

#[diagnostic::do_not_recommend]
impl<E: From<Error>> SessionError for E {
    fn from_dbkit(error: Error) -> Self {
        E::from(error)
    }
}

/// What `#[with_session]` expands to on a failed checkout.
#[doc(hidden)]
pub fn session_error<E: SessionError>(error: Error) -> E {
    E::from_dbkit(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(retry_in: Duration) -> String {
        Error::CircuitOpen {
            pool: "main".into(),
            failures: 5,
            retry_in,
            last_error: "connection refused".into(),
        }
        .to_string()
    }

    #[test]
    fn circuit_open_says_how_long_or_that_a_probe_is_running() {
        let cooling = open(Duration::from_millis(2500));
        assert!(
            cooling.contains("5 attempts in a row failed (last: connection refused)"),
            "{cooling}"
        );
        assert!(cooling.contains("for another 2.5s"), "{cooling}");
        let probing = open(Duration::ZERO);
        assert!(
            probing.contains("one checkout is trying the database"),
            "{probing}"
        );
    }
}
