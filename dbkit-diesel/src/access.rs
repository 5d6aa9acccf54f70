//! What a `#[cached_query]` call asks of the connection it was given:
//! whether it is inside a transaction, and what that transaction wrote. The
//! connection's own instrumentation knows, whichever thread the connection
//! is used on; a connection dbkit does not track cannot say, and is served
//! from the cache without storing into it.

use dbkit_core::cache::Access;
use dbkit_core::tables::TableState;
use diesel::connection::TransactionManager;
use diesel::r2d2::R2D2Connection;
use diesel::Connection;

use crate::instrument::dbkit_instrumentation;
use crate::pool::Session;

/// A connection a `#[cached_query]` function can be given: every diesel
/// connection, a pooled one and a [`Session`]. Implement it for a type of
/// your own that holds a connection by asking that connection.
///
/// ```
/// use diesel::prelude::*;
/// use dbkit_diesel::CacheConnection;
///
/// /// An application's handle around its connection.
/// struct Db {
///     conn: SqliteConnection,
/// }
///
/// impl CacheConnection for Db {
///     fn cache_access(
///         &mut self,
///         deps: &[&'static dbkit_core::tables::TableState],
///     ) -> dbkit_core::cache::Access {
///         self.conn.cache_access(deps)
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connection `#[cached_query]` can ask whether it is inside a transaction",
    label = "the connection parameter",
    note = "pass the diesel connection itself (`&mut PgConnection`, a pooled connection, a `dbkit::Session`), or implement `dbkit::CacheConnection` for your type by asking the connection it holds",
    note = "an argument that is not the connection (a pool, a handle) is marked `#[dbkit(skip)]`"
)]
pub trait CacheConnection {
    /// How a cached call whose results depend on `deps` may use the cache
    /// on this connection.
    fn cache_access(&mut self, deps: &[&'static TableState]) -> Access;
}

impl<C: Connection> CacheConnection for C {
    #[inline]
    fn cache_access(&mut self, deps: &[&'static TableState]) -> Access {
        let diesel_in_transaction = !matches!(
            C::TransactionManager::transaction_manager_status_mut(self).transaction_depth(),
            Ok(None)
        );
        match dbkit_instrumentation(self) {
            Some(instrumentation) => instrumentation.access(deps, diesel_in_transaction),
            // Inside diesel's own transaction it may have written anything.
            None if diesel_in_transaction => Access::Bypass,
            None => Access::Untracked,
        }
    }
}

impl<C: R2D2Connection + 'static> CacheConnection for Session<C> {
    #[inline]
    fn cache_access(&mut self, deps: &[&'static TableState]) -> Access {
        (**self).cache_access(deps)
    }
}

/// What `#[cached_query]` expansions call with their connection parameter.
#[doc(hidden)]
#[inline]
pub fn cache_access<T: CacheConnection + ?Sized>(
    conn: &mut T,
    deps: &[&'static TableState],
) -> Access {
    conn.cache_access(deps)
}
