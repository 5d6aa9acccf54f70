#[track_caller]
fn charge(__dbkit_arg1: (i64, i64)) -> AppResult<()> {
    let __dbkit_session = match ::dbkit::__private::checkout_from::<
        PgConnection,
        _,
    >(&crate::db::POOL, "billing::charge", ::core::panic::Location::caller()) {
        ::core::result::Result::Ok(session) => session,
        ::core::result::Result::Err(__dbkit_error) => {
            return ::core::result::Result::Err(
                ::dbkit::__private::session_error(__dbkit_error),
            );
        }
    };
    __dbkit_session.run(|__dbkit_conn| charge_with_conn(__dbkit_conn, __dbkit_arg1))
}
/// Like [`charge`], on a connection the caller already holds (inside another session or transaction): no checkout happens.
fn charge_with_conn(
    conn: &mut PgConnection,
    (account, cents): (i64, i64),
) -> AppResult<()> {
    ::dbkit::__private::diesel::Connection::transaction(
        conn,
        |conn| {
            debit(conn, account, cents)?;
            Ok(())
        },
    )
}
