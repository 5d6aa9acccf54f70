//! The runtime of [dbkit](https://docs.rs/dbkit), free of diesel: the table
//! clock that decides freshness, the per-function L1 cache, statistics and the
//! report. Users depend on the `dbkit` facade; this crate's items are re-exported
//! there, and its `cache` and `registry` modules are what `#[cached_query]`
//! expands to.
#![warn(missing_docs)]

mod breaker;
pub mod cache;
mod error;
mod flight;
pub mod guard;
pub mod keys;
pub mod pool;
pub mod queries;
pub mod registry;
pub mod remote;
pub mod report;
pub mod stats;
pub mod tables;
pub mod time;
pub mod tracker;

pub use error::{session_error, Error, NestedCheckout, PoolTimeout, SessionError};
