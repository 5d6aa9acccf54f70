//! dbkit's diesel glue: the instrumentation that sees every statement, the
//! statement classification it relies on, and the tracked r2d2 pool with
//! its health check. It also selects the diesel backends (`sqlite` with a
//! bundled libsqlite3, `postgres`, `mysql`) for the `dbkit` facade.
#![warn(missing_docs)]

mod access;
pub mod classify;
mod default_pool;
mod instrument;
mod lexer;
mod pool;
mod shape;

pub use access::{cache_access, CacheConnection};
pub use default_pool::{
    checkout_default, checkout_from, default_pool, set_default_pool, PoolSource,
};
pub use instrument::{
    instrument, is_instrumented, DbkitInstrumentation, Instrument, InstrumentConnections,
};
pub use pool::{Builder, Health, Pool, Session};

pub use diesel;
