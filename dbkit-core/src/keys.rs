//! The traits `#[cached_query]` expansions rely on to key arguments and store
//! results. Their `on_unimplemented` messages are what a user reads when a
//! signature cannot be cached, so they speak in dbkit's words.

use std::borrow::Borrow;
use std::hash::Hash;

/// An argument type that can be part of a cache key: hashed and compared in
/// its borrowed form on a hit, stored in its owned form on a miss.
///
/// `&str` arguments are stored as `String`, `&[T]` as `Vec<T>`, `&T` and `T`
/// as `T`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a `#[cached_query]` key",
    label = "this argument is part of the cache key",
    note = "a key argument must be `Hash + Eq`, and its owned form `Send + Sync + 'static` (floats are not `Eq`: key on their bits or a fixed-point integer)",
    note = "if it does not change the result, mark it `#[dbkit(skip)]`; if it is the database connection, mark it `#[dbkit(conn)]`"
)]
pub trait CacheKey {
    /// What the cache keeps.
    type Owned: Eq + Send + Sync + 'static;
    /// Feeds the borrowed form to the key's hasher.
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H);
    /// The owned form, built on a miss only.
    fn to_key(&self) -> Self::Owned;
    /// Whether a stored key equals this argument.
    fn matches(&self, owned: &Self::Owned) -> bool;
}

#[diagnostic::do_not_recommend]
impl<T> CacheKey for T
where
    T: ?Sized + Hash + Eq + ToOwned,
    T::Owned: Eq + Send + Sync + 'static,
{
    type Owned = T::Owned;

    #[inline]
    fn hash_key<H: std::hash::Hasher>(&self, state: &mut H) {
        self.hash(state);
    }

    #[inline]
    fn to_key(&self) -> T::Owned {
        self.to_owned()
    }

    #[inline]
    fn matches(&self, owned: &T::Owned) -> bool {
        owned.borrow() == self
    }
}

/// A value the cache can keep and hand out copies of.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored by `#[cached_query]`",
    label = "the cached value",
    note = "a cached value must be `Clone + Send + Sync + 'static`: derive `Clone` on it, or wrap it in `Arc`"
)]
pub trait CacheValue: Clone + Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<T: Clone + Send + Sync + 'static> CacheValue for T {}

/// A `Result` whose `Ok` value is cached; errors are never stored.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a `Result`",
    label = "`#[cached_query]` treats a return type named `...Result` as a `Result` and caches its `Ok` value",
    note = "rename the alias, or return `Result<T, E>` / `diesel::QueryResult<T>`"
)]
pub trait CachedResult {
    /// The value stored on success.
    type Ok;
    /// The `Ok` value, if any.
    fn ok_ref(&self) -> Option<&Self::Ok>;
    /// A result rebuilt from a cached value.
    fn from_ok(ok: Self::Ok) -> Self;
}

impl<T, E> CachedResult for Result<T, E> {
    type Ok = T;

    #[inline]
    fn ok_ref(&self) -> Option<&T> {
        self.as_ref().ok()
    }

    #[inline]
    fn from_ok(ok: T) -> Self {
        Ok(ok)
    }
}
