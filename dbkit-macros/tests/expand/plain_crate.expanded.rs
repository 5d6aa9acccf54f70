fn tag_names(conn: &mut SqliteConnection, ids: &[i32]) -> Vec<String> {
    #[inline]
    fn __dbkit_query(conn: &mut SqliteConnection, ids: &[i32]) -> Vec<String> {
        load(conn, ids)
    }
    static __DBKIT_CACHE: ::my_app::dbkit::__private::LazyCache<
        (<[i32] as ::my_app::dbkit::__private::CacheKey>::Owned,),
    > = ::my_app::dbkit::__private::LazyCache::new(::my_app::dbkit::__private::CacheSpec {
        function: ::core::concat!(::core::module_path!(), "::", "tag_names"),
        tables: &["tags"],
        ttl: ::core::time::Duration::from_millis(60000u64),
        max_entries: 10000usize,
        single_flight: true,
    });
    #[allow(unused_imports)]
    use ::my_app::dbkit::__private::{ResultOutput as _, ValueOutput as _};
    let __dbkit_output_kind = &&::my_app::dbkit::__private::Output::<Vec<String>>::new();
    let __dbkit_cache = __dbkit_output_kind.dbkit_cache(&__DBKIT_CACHE);
    let __dbkit_ticket = match ::my_app::dbkit::__private::QueryCache::get_or_begin_with(
        __dbkit_cache,
        |__dbkit_deps| ::my_app::dbkit::__private::cache_access::<
            SqliteConnection,
        >(&mut *conn, __dbkit_deps),
        |__dbkit_hasher| {
            <[i32] as ::my_app::dbkit::__private::CacheKey>::hash_key(
                &*ids,
                __dbkit_hasher,
            );
        },
        |__dbkit_key| <[i32] as ::my_app::dbkit::__private::CacheKey>::matches(
            &*ids,
            &__dbkit_key.0,
        ),
        || (<[i32] as ::my_app::dbkit::__private::CacheKey>::to_key(&*ids),),
    ) {
        ::core::result::Result::Ok(__dbkit_hit) => {
            return __dbkit_output_kind.dbkit_from_hit(__dbkit_hit);
        }
        ::core::result::Result::Err(__dbkit_ticket) => __dbkit_ticket,
    };
    let __dbkit_span = ::my_app::dbkit::__private::Ticket::span(&__dbkit_ticket);
    let __dbkit_entered = __dbkit_span.enter();
    let __dbkit_output = __dbkit_query(conn, ids);
    ::core::mem::drop(__dbkit_entered);
    if let ::core::option::Option::Some(__dbkit_value) = __dbkit_output_kind
        .dbkit_stored(&__dbkit_output)
    {
        ::my_app::dbkit::__private::Ticket::store(
            __dbkit_ticket,
            ::core::clone::Clone::clone(__dbkit_value),
        );
    }
    __dbkit_output
}
