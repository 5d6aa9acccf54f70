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
fn count() -> Result<i64, AppError> {
    Ok(0)
}

fn main() {}
