//! The traits `#[cached_query]` expansions rely on to key arguments and store
//! results. Their `on_unimplemented` messages are what a user reads when a
//! signature cannot be cached, so they speak in dbkit's words.

use std::borrow::Borrow;
use std::hash::Hash;
use std::marker::PhantomData;

use crate::cache::QueryCache;
use crate::registry::LazyCache;

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

/// What `#[cached_query]` stores of a function's output, decided by the
/// type checker, never by a type's name: for any `Result` (an alias such as
/// `type Fallible<T> = Result<T, AppError>` included) the `Ok` value, and an
/// error is never stored; for any other type (an `Option`, a struct named
/// `SearchResult`) the output whole.
///
/// The expansion calls the methods of [`ResultOutput`] and [`ValueOutput`]
/// on `&&Output::<R>::new()`: method resolution picks the `Result` one when
/// `R` is a `Result` (it needs no auto-deref), the other otherwise.
///
/// ```
/// use dbkit_core::keys::{Output, ResultOutput as _, ValueOutput as _};
///
/// type Fallible<T> = Result<T, String>;
/// let failed: Fallible<u32> = Err("no".into());
/// assert_eq!((&&Output::<Fallible<u32>>::new()).dbkit_stored(&failed), None);
///
/// struct SearchResult(u32);
/// let found = SearchResult(3);
/// assert!((&&Output::<SearchResult>::new()).dbkit_stored(&found).is_some());
/// ```
pub struct Output<R>(PhantomData<fn() -> R>);

impl<R> Output<R> {
    /// The probe for output type `R`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Output(PhantomData)
    }
}

/// The output is a `Result`: its `Ok` value is stored.
pub trait ResultOutput {
    /// The function's output.
    type Output;
    /// What is stored.
    type Value;
    /// What of `output` to store, if anything.
    fn dbkit_stored<'o>(&self, output: &'o Self::Output) -> Option<&'o Self::Value>;
    /// The output a hit returns.
    fn dbkit_from_hit(&self, value: Self::Value) -> Self::Output;
    /// The function's cache, its value type this output's.
    fn dbkit_cache<K>(&self, lazy: &'static LazyCache<K>) -> &'static QueryCache<K, Self::Value>
    where
        K: Eq + Send + Sync + 'static,
        Self::Value: CacheValue;
}

impl<T, E> ResultOutput for &Output<Result<T, E>> {
    type Output = Result<T, E>;
    type Value = T;

    #[inline]
    fn dbkit_stored<'o>(&self, output: &'o Result<T, E>) -> Option<&'o T> {
        output.as_ref().ok()
    }

    #[inline]
    fn dbkit_from_hit(&self, value: T) -> Result<T, E> {
        Ok(value)
    }

    #[inline]
    fn dbkit_cache<K>(&self, lazy: &'static LazyCache<K>) -> &'static QueryCache<K, T>
    where
        K: Eq + Send + Sync + 'static,
        T: CacheValue,
    {
        lazy.get::<T>()
    }
}

/// The output is anything but a `Result`: it is stored whole.
pub trait ValueOutput {
    /// The function's output.
    type Output;
    /// What is stored.
    type Value;
    /// What of `output` to store, if anything.
    fn dbkit_stored<'o>(&self, output: &'o Self::Output) -> Option<&'o Self::Value>;
    /// The output a hit returns.
    fn dbkit_from_hit(&self, value: Self::Value) -> Self::Output;
    /// The function's cache, its value type this output's.
    fn dbkit_cache<K>(&self, lazy: &'static LazyCache<K>) -> &'static QueryCache<K, Self::Value>
    where
        K: Eq + Send + Sync + 'static,
        Self::Value: CacheValue;
}

impl<R> ValueOutput for Output<R> {
    type Output = R;
    type Value = R;

    #[inline]
    fn dbkit_stored<'o>(&self, output: &'o R) -> Option<&'o R> {
        Some(output)
    }

    #[inline]
    fn dbkit_from_hit(&self, value: R) -> R {
        value
    }

    #[inline]
    fn dbkit_cache<K>(&self, lazy: &'static LazyCache<K>) -> &'static QueryCache<K, R>
    where
        K: Eq + Send + Sync + 'static,
        R: CacheValue,
    {
        lazy.get::<R>()
    }
}

/// A stored value that may be `None`: what `cache_none = false` asks of it.
#[diagnostic::on_unimplemented(
    message = "`cache_none = false` needs an `Option` to leave out, but the cached value is `{Self}`",
    label = "the function's cached value",
    note = "it applies to functions returning `Option<T>` or a `Result` of `Option<T>`; remove it"
)]
pub trait OptionValue {
    /// Whether it is `Some`.
    fn is_some_value(&self) -> bool;
}

impl<T> OptionValue for Option<T> {
    #[inline]
    fn is_some_value(&self) -> bool {
        self.is_some()
    }
}

/// Whether a value `cache_none = false` keeps is `Some`.
#[inline]
pub fn is_some_value<V: OptionValue + ?Sized>(value: &V) -> bool {
    value.is_some_value()
}
