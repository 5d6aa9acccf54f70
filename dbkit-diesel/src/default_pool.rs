//! Where `#[with_session]` finds its pool: the default pool of the
//! function's connection type, or the one it names.

use std::any::{Any, TypeId};
use std::panic::Location;
use std::sync::{LazyLock, OnceLock, RwLock};

use dbkit_core::Error;
use diesel::r2d2::R2D2Connection;

use crate::pool::{Pool, Session};

type Registered = (TypeId, Box<dyn Any + Send + Sync>);

fn defaults() -> &'static RwLock<Vec<Registered>> {
    static DEFAULTS: RwLock<Vec<Registered>> = RwLock::new(Vec::new());
    &DEFAULTS
}

/// Makes `pool` the one `#[with_session]` functions on `C` connections
/// check out from when they name none. Replaces an earlier default for `C`.
///
/// ```
/// use diesel::prelude::*;
///
/// let pool = dbkit_diesel::Pool::<SqliteConnection>::builder().build(":memory:")?;
/// dbkit_diesel::set_default_pool(pool);
/// assert!(dbkit_diesel::default_pool::<SqliteConnection>().is_ok());
/// # Ok::<(), dbkit_core::Error>(())
/// ```
pub fn set_default_pool<C: R2D2Connection + 'static>(pool: Pool<C>) {
    let mut all = defaults().write().unwrap_or_else(|e| e.into_inner());
    let key = TypeId::of::<C>();
    all.retain(|(k, _)| *k != key);
    all.push((key, Box::new(pool)));
}

/// The default pool for `C` connections.
///
/// # Errors
///
/// [`Error::NoDefaultPool`] if [`set_default_pool`] was not called for `C`.
pub fn default_pool<C: R2D2Connection + 'static>() -> Result<Pool<C>, Error> {
    let all = defaults().read().unwrap_or_else(|e| e.into_inner());
    let key = TypeId::of::<C>();
    all.iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, pool)| pool.downcast_ref::<Pool<C>>())
        .cloned()
        .ok_or(Error::NoDefaultPool {
            connection: std::any::type_name::<C>(),
        })
}

/// What `#[with_session(pool = PATH)]` may name: a [`Pool`], or a
/// `LazyLock` or `OnceLock` holding one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a dbkit pool of `{C}` connections",
    label = "named by `#[with_session(pool = ...)]`",
    note = "`pool = PATH` must name a `dbkit::Pool<C>` for the function's connection type `C`, or a `static` `LazyLock`/`OnceLock` holding one"
)]
pub trait PoolSource<C: R2D2Connection + 'static> {
    /// The pool.
    ///
    /// # Errors
    ///
    /// [`Error::NoDefaultPool`] for a `OnceLock` not yet set.
    fn pool(&self) -> Result<&Pool<C>, Error>;
}

impl<C: R2D2Connection + 'static> PoolSource<C> for Pool<C> {
    fn pool(&self) -> Result<&Pool<C>, Error> {
        Ok(self)
    }
}

impl<C: R2D2Connection + 'static, F: FnOnce() -> Pool<C>> PoolSource<C> for LazyLock<Pool<C>, F> {
    fn pool(&self) -> Result<&Pool<C>, Error> {
        Ok(self)
    }
}

impl<C: R2D2Connection + 'static> PoolSource<C> for OnceLock<Pool<C>> {
    fn pool(&self) -> Result<&Pool<C>, Error> {
        self.get().ok_or(Error::NoDefaultPool {
            connection: std::any::type_name::<C>(),
        })
    }
}

/// The checkout of a `#[with_session]` function without `pool = ...`.
#[doc(hidden)]
pub fn checkout_default<C: R2D2Connection + 'static>(
    label: &'static str,
    location: &'static Location<'static>,
) -> Result<Session<C>, Error> {
    default_pool::<C>()?.checkout_at(label, location)
}

/// The checkout of a `#[with_session(pool = PATH)]` function.
#[doc(hidden)]
pub fn checkout_from<C: R2D2Connection + 'static, P: PoolSource<C> + ?Sized>(
    source: &P,
    label: &'static str,
    location: &'static Location<'static>,
) -> Result<Session<C>, Error> {
    source.pool()?.checkout_at(label, location)
}
