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
/// ```
/// use diesel::prelude::*;
///
/// diesel::table! {
///     users (id) {
///         id -> Integer,
///         email -> Text,
///     }
/// }
///
/// #[dbkit::cached_query(ttl = 300, tables = "users")]
/// fn user_id(conn: &mut SqliteConnection, email: &str) -> QueryResult<Option<i32>> {
///     users::table.filter(users::email.eq(email)).select(users::id).get_result(conn).optional()
/// }
/// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// # diesel::sql_query("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL)").execute(&mut conn).unwrap();
/// # assert_eq!(user_id(&mut conn, "ada@example.com").unwrap(), None);
/// ```
///
/// Options: `ttl = 300` or `ttl = "5m"` (required), `tables = "a, b"`
/// (required), `max_entries = N` (default 10 000), `single_flight = false`,
/// `cache_none = false`, `crate = "path"`. Parameters: the connection (a
/// `&mut ...Connection`, or one marked `#[dbkit(conn)]`) is not keyed, nor is
/// one marked `#[dbkit(skip)]`; every other argument is, by value. A `Result`
/// stores only `Ok` values. The `dbkit` crate's documentation has the details.
#[proc_macro_attribute]
pub fn cached_query(args: TokenStream, item: TokenStream) -> TokenStream {
    cached_query::cached_query_inner(args.into(), item.into()).into()
}
