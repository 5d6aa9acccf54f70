fn user_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
    #[inline]
    fn __dbkit_query(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
        users::table.filter(users::email.eq(email)).first(conn).optional()
    }
    static __DBKIT_CACHE: ::dbkit::__private::LazyRemoteCache<
        (<str as ::dbkit::__private::CacheKey>::Owned,),
    > = ::dbkit::__private::LazyRemoteCache::new(
        ::dbkit::__private::CacheSpec {
            function: ::core::concat!(::core::module_path!(), "::", "user_by_email"),
            tables: &["users"],
            ttl: ::core::time::Duration::from_millis(300000u64),
            max_entries: 10000usize,
            single_flight: true,
        },
        ::dbkit::__private::RemoteSpec {
            signature: 6384990726346192724u64,
            version: ::core::env!("CARGO_PKG_VERSION"),
        },
    );
    #[allow(dead_code)]
    fn __dbkit_remote_checks() {
        fn __dbkit_remote_key<T: ?::core::marker::Sized + ::dbkit::__private::RemoteKey>() {}
        __dbkit_remote_key::<<str as ::dbkit::__private::CacheKey>::Owned>();
    }
    #[allow(unused_imports)]
    use ::dbkit::__private::{
        ResultOutput as _, ValueOutput as _, RemoteResultOutput as _,
        RemoteValueOutput as _,
    };
    let __dbkit_output_kind = &&::dbkit::__private::Output::<
        QueryResult<Option<User>>,
    >::new();
    let __dbkit_cache = __dbkit_output_kind.dbkit_remote_cache(&__DBKIT_CACHE);
    let __dbkit_ticket = match ::dbkit::__private::RemoteCache::get_or_begin_with(
        __dbkit_cache,
        |__dbkit_deps| ::dbkit::__private::cache_access::<
            PgConnection,
        >(&mut *conn, __dbkit_deps),
        |__dbkit_hasher| {
            <str as ::dbkit::__private::CacheKey>::hash_key(&*email, __dbkit_hasher);
        },
        |__dbkit_key| <str as ::dbkit::__private::CacheKey>::matches(
            &*email,
            &__dbkit_key.0,
        ),
        || (<str as ::dbkit::__private::CacheKey>::to_key(&*email),),
    ) {
        ::core::result::Result::Ok(__dbkit_hit) => {
            return __dbkit_output_kind.dbkit_from_hit(__dbkit_hit);
        }
        ::core::result::Result::Err(__dbkit_ticket) => __dbkit_ticket,
    };
    let __dbkit_span = ::dbkit::__private::RemoteTicket::span(&__dbkit_ticket);
    let __dbkit_entered = __dbkit_span.enter();
    let __dbkit_output = __dbkit_query(conn, email);
    ::core::mem::drop(__dbkit_entered);
    if let ::core::option::Option::Some(__dbkit_value) = __dbkit_output_kind
        .dbkit_stored(&__dbkit_output)
    {
        ::dbkit::__private::RemoteTicket::store(
            __dbkit_ticket,
            ::core::clone::Clone::clone(__dbkit_value),
        );
    }
    __dbkit_output
}
