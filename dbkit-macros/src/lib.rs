//! Attribute macros of [dbkit](https://docs.rs/dbkit). Use them through the
//! `dbkit` crate, which re-exports them and provides the runtime they expand to.
#![warn(missing_docs)]

mod cached_query;
mod ctxt;
mod duration;
mod suggest;

use proc_macro::TokenStream;

/// Caches a function's results in process, keyed on its arguments, and drops
/// them the moment a write to one of its `tables` commits.
///
/// ```ignore
/// #[dbkit::cached_query(ttl = 300, tables = "users")]
/// fn user_by_email(conn: &mut SqliteConnection, email: &str) -> QueryResult<Option<User>> {
///     users::table.filter(users::email.eq(email)).first(conn).optional()
/// }
/// ```
///
/// See the `dbkit` crate's documentation for the options and the rules.
#[proc_macro_attribute]
pub fn cached_query(args: TokenStream, item: TokenStream) -> TokenStream {
    cached_query::cached_query_inner(args.into(), item.into()).into()
}
