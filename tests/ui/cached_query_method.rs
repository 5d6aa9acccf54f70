use dbkit::cached_query;
use diesel::prelude::*;

struct Repo;

impl Repo {
    #[cached_query(ttl = 300, tables = "users")]
    fn user(&self, conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
        let _ = (conn, id);
        Ok(String::new())
    }
}

fn main() {}
