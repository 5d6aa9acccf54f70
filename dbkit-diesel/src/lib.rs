//! dbkit's diesel glue. It selects the diesel backends (`sqlite` with a
//! bundled libsqlite3, `postgres`, `mysql`) for the `dbkit` facade; the
//! statement instrumentation, the tracked r2d2 pool and the health check live
//! here as they land.
#![warn(missing_docs)]

pub use diesel;
