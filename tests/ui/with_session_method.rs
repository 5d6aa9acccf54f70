use dbkit::with_session;
use diesel::prelude::*;

#[derive(Debug)]
struct AppError;
impl From<dbkit::Error> for AppError {
    fn from(_: dbkit::Error) -> Self {
        AppError
    }
}

struct Repo;

impl Repo {
    #[with_session]
    fn count(&self, conn: &mut SqliteConnection) -> Result<i64, AppError> {
        let _ = conn;
        Ok(0)
    }
}

fn main() {}
