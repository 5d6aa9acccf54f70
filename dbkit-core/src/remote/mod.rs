//! The Redis tier (feature `redis`): a shared L2 behind the per-process L1,
//! a table clock shared by every process, and the invalidation bus.
//!
//! Three things live in Redis, under one application prefix `P`:
//!
//! - `P:gen:<table>`: the table's generation, incremented after each write to
//!   it commits (the moment the local clock is bumped);
//! - `P:mark:<table>`: writes to the table in flight (a counter that expires,
//!   so a crashed writer cannot block the table for ever);
//! - `P:v:<function>@<version>:<signature>:<key bytes>`: one cached value,
//!   stored with the generations its tables had before its query ran.
//!
//! An L2 lookup is one `MGET` of the marks, the generations and the value:
//! the value is served only if no mark is set and no generation moved. Each
//! commit also publishes its tables on `P:invalidate`; every process bumps its
//! local clock on receipt, so its L1 stops serving them. While that
//! subscription is down, no L1 entry is served or stored (every table is
//! held as if a write were in flight): another process may be writing.
//!
//! Redis never fails a call (Contract 4): every failure falls back to L1 and
//! the database, is counted in [`RedisReport`], and is logged at most once per
//! interval. A circuit breaker stops trying a dead server for a cool-down.
//!
//! This module is compiled without the feature too, so the report keeps its
//! shape and the write hooks are no-ops.

use serde::Serialize;

use crate::breaker::BreakerState;

#[cfg(feature = "redis")]
mod bus;
#[cfg(feature = "redis")]
mod client;
#[cfg(feature = "redis")]
mod clock;
#[cfg(feature = "redis")]
mod codec;
#[cfg(feature = "redis")]
mod config;
#[cfg(feature = "redis")]
mod l2;
#[cfg(feature = "redis")]
mod tier;

#[cfg(feature = "redis")]
pub use config::RedisConfig;
#[cfg(feature = "redis")]
pub use l2::{
    LazyRemoteCache, RemoteCache, RemoteKey, RemoteResultOutput, RemoteSpec, RemoteTicket,
    RemoteValue, RemoteValueOutput,
};
#[cfg(feature = "redis")]
pub use tier::{redis_tier_installed, remove_redis, set_redis};

/// The Redis tier's figures, in [`Report::redis`](crate::report::Report::redis).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[non_exhaustive]
pub struct RedisReport {
    /// The server's address, password removed.
    pub url: String,
    /// The application prefix of every key.
    pub prefix: String,
    /// Whether the invalidation bus is subscribed. While it is not, L1
    /// entries are not served (another process may be writing).
    pub bus_subscribed: bool,
    /// The circuit breaker in front of the server.
    pub breaker: BreakerState,
    /// Commands that failed (refused, timed out, connection lost, server
    /// error): each fell back to L1 and the database.
    pub failures: u64,
    /// Of which timeouts.
    pub timeouts: u64,
    /// Calls not sent because the breaker was open.
    pub short_circuited: u64,
    /// Values that did not decode (corrupt, or written by other code): misses.
    pub corrupt_values: u64,
    /// Invalidation messages this process published.
    pub invalidations_published: u64,
    /// Invalidation messages from other processes applied to the local clock.
    pub invalidations_received: u64,
    /// Times the bus subscription was lost.
    pub bus_losses: u64,
    /// Tables whose invalidation could not reach Redis yet; published as soon
    /// as it answers. L2 is not read while any is pending.
    pub pending_invalidations: usize,
}

/// The tier's figures, if one is installed.
pub fn report() -> Option<RedisReport> {
    #[cfg(feature = "redis")]
    {
        tier::current().map(|t| t.report())
    }
    #[cfg(not(feature = "redis"))]
    {
        None
    }
}
