//! Attribute macros of [dbkit](https://docs.rs/dbkit). Use them through the
//! `dbkit` crate, which re-exports them and provides the runtime they expand to.
#![warn(missing_docs)]

mod args;
mod cached_query;
mod ctxt;
mod duration;
mod fn_rules;
#[cfg(test)]
mod snapshot;
mod suggest;
mod with_session;

use proc_macro::TokenStream;

/// Caches a function's results in process, keyed on its arguments, and
/// refuses them the moment a write to one of its `tables` is committed.
///
/// Options: `ttl = 300` or `ttl = "5m"` (required), `tables = "a, b"`
/// (required), `max_entries = N` (default 10 000), `single_flight = false`,
/// `cache_none = false`, `crate = "path"`. Parameters: the connection (a
/// `&mut ...Connection`, or one marked `#[dbkit(conn)]`) is not keyed, nor is
/// one marked `#[dbkit(skip)]`; every other argument is, by value. A `Result`
/// stores only `Ok` values. Use it through the `dbkit` crate, whose
/// documentation has examples.
#[proc_macro_attribute]
pub fn cached_query(args: TokenStream, item: TokenStream) -> TokenStream {
    cached_query::cached_query_inner(args.into(), item.into()).into()
}

/// Gives a function a connection checked out of a pool for the call, tracked
/// as a session from checkout to return.
///
/// On `fn name(conn: &mut C, args...) -> Result<T, E>` it generates
/// `name(args...)`, which checks out from the default pool of `C`
/// (`dbkit::set_default_pool`) or from `pool = PATH`, and
/// `name_with_conn(conn, args...)`, the body, for callers that already hold
/// a connection. Options: `pool = PATH`, `transaction` (the body runs in
/// `conn.transaction`, rolled back on `Err` or panic), `label = "..."`,
/// `crate = "path"`. A failed checkout is returned as `E::from(dbkit::Error)`.
/// Use it through the `dbkit` crate, whose documentation has examples.
#[proc_macro_attribute]
pub fn with_session(args: TokenStream, item: TokenStream) -> TokenStream {
    with_session::with_session_inner(args.into(), item.into()).into()
}
