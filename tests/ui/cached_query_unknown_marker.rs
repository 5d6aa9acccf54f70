use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users")]
fn user(conn: &mut SqliteConnection, #[dbkit(ignore)] trace: u64) -> QueryResult<String> {
    let _ = (conn, trace);
    Ok(String::new())
}

fn main() {}
