use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users")]
fn users_named(conn: &mut SqliteConnection, names: &[&str]) -> QueryResult<Vec<i32>> {
    let _ = (conn, names);
    Ok(Vec::new())
}

fn main() {}
