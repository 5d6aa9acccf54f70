use dbkit::with_session;
use diesel::prelude::*;

#[derive(Debug)]
struct AppError;
impl From<dbkit::Error> for AppError {
    fn from(_: dbkit::Error) -> Self {
        AppError
    }
}

#[with_session(transaction = "yes")]
fn touch(conn: &mut SqliteConnection) -> Result<(), AppError> {
    let _ = conn;
    Ok(())
}

fn main() {}
