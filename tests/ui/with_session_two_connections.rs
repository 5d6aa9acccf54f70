use dbkit::with_session;
use diesel::prelude::*;

#[derive(Debug)]
struct AppError;
impl From<dbkit::Error> for AppError {
    fn from(_: dbkit::Error) -> Self {
        AppError
    }
}

#[with_session]
fn copy(conn: &mut SqliteConnection, other: &mut SqliteConnection) -> Result<(), AppError> {
    let _ = (conn, other);
    Ok(())
}

fn main() {}
