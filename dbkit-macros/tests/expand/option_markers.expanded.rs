pub(crate) fn post(db: &mut Db, id: i64, trace: u64) -> Option<Post> {
    #[inline]
    fn __dbkit_query(db: &mut Db, mut id: i64, trace: u64) -> Option<Post> {
        id += 1;
        load(db, id, trace)
    }
    static __DBKIT_CACHE: ::dbkit::__private::LazyCache<
        (<i64 as ::dbkit::__private::CacheKey>::Owned,),
    > = ::dbkit::__private::LazyCache::new(::dbkit::__private::CacheSpec {
        function: ::core::concat!(::core::module_path!(), "::", "post"),
        tables: &["posts", "app.users"],
        ttl: ::core::time::Duration::from_millis(300000u64),
        max_entries: 100usize,
        single_flight: false,
    });
    #[allow(unused_imports)]
    use ::dbkit::__private::{ResultOutput as _, ValueOutput as _};
    let __dbkit_output_kind = &&::dbkit::__private::Output::<Option<Post>>::new();
    let __dbkit_cache = __dbkit_output_kind.dbkit_cache(&__DBKIT_CACHE);
    let __dbkit_ticket = match ::dbkit::__private::QueryCache::get_or_begin_with(
        __dbkit_cache,
        |__dbkit_deps| ::dbkit::__private::cache_access::<Db>(&mut *db, __dbkit_deps),
        |__dbkit_hasher| {
            <i64 as ::dbkit::__private::CacheKey>::hash_key(&id, __dbkit_hasher);
        },
        |__dbkit_key| <i64 as ::dbkit::__private::CacheKey>::matches(
            &id,
            &__dbkit_key.0,
        ),
        || (<i64 as ::dbkit::__private::CacheKey>::to_key(&id),),
    ) {
        ::core::result::Result::Ok(__dbkit_hit) => {
            return __dbkit_output_kind.dbkit_from_hit(__dbkit_hit);
        }
        ::core::result::Result::Err(__dbkit_ticket) => __dbkit_ticket,
    };
    let __dbkit_span = ::dbkit::__private::Ticket::span(&__dbkit_ticket);
    let __dbkit_entered = __dbkit_span.enter();
    let __dbkit_output = __dbkit_query(db, id, trace);
    ::core::mem::drop(__dbkit_entered);
    if let ::core::option::Option::Some(__dbkit_value) = __dbkit_output_kind
        .dbkit_stored(&__dbkit_output)
    {
        if ::dbkit::__private::is_some_value(__dbkit_value) {
            ::dbkit::__private::Ticket::store(
                __dbkit_ticket,
                ::core::clone::Clone::clone(__dbkit_value),
            );
        }
    }
    __dbkit_output
}
