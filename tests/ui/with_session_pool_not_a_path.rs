use dbkit::with_session;
use diesel::prelude::*;

#[derive(Debug)]
struct AppError;
impl From<dbkit::Error> for AppError {
    fn from(_: dbkit::Error) -> Self {
        AppError
    }
}

fn main_pool() -> dbkit::Pool<SqliteConnection> {
    unimplemented!()
}

#[with_session(pool = main_pool())]
fn touch(conn: &mut SqliteConnection) -> Result<(), AppError> {
    let _ = conn;
    Ok(())
}

#[with_session(pool = "main")]
fn touch_again(conn: &mut SqliteConnection) -> Result<(), AppError> {
    let _ = conn;
    Ok(())
}

fn main() {}
