/// Renames a user.
#[track_caller]
pub fn rename(id: i32, name: &str) -> Result<usize, AppError> {
    let __dbkit_session = match ::dbkit::__private::checkout_default::<
        PgConnection,
    >(
        ::core::concat!(::core::module_path!(), "::", ::core::stringify!(rename)),
        ::core::panic::Location::caller(),
    ) {
        ::core::result::Result::Ok(session) => session,
        ::core::result::Result::Err(__dbkit_error) => {
            return ::core::result::Result::Err(
                ::dbkit::__private::session_error(__dbkit_error),
            );
        }
    };
    __dbkit_session.run(|__dbkit_conn| rename_with_conn(__dbkit_conn, id, name))
}
/// Like [`rename`], on a connection the caller already holds (inside another session or transaction): no checkout happens.
pub fn rename_with_conn(
    conn: &mut PgConnection,
    id: i32,
    name: &str,
) -> Result<usize, AppError> {
    diesel::update(users::table.find(id))
        .set(users::name.eq(name))
        .execute(conn)
        .map_err(Into::into)
}
