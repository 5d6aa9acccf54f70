//! dbkit's diesel glue. It selects the diesel backends (`sqlite` with a
//! bundled libsqlite3, `postgres`, `mysql`) for the `dbkit` facade, and holds
//! the statement classification the write hook relies on; the
//! instrumentation, the tracked r2d2 pool and the health check live here as
//! they land.
#![warn(missing_docs)]

pub mod classify;
mod instrument;
mod lexer;

pub use instrument::{
    instrument, is_instrumented, DbkitInstrumentation, Instrument, InstrumentConnections,
};

pub use diesel;
