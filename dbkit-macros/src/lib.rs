//! Attribute macros of [dbkit](https://docs.rs/dbkit). Use them through the
//! `dbkit` crate, which re-exports them and provides the runtime they expand to.
#![warn(missing_docs)]

mod cached_query;
mod ctxt;
mod duration;
mod suggest;

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
