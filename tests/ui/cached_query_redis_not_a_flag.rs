use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users", redis = "yes")]
fn user_name(conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
    let _ = (conn, id);
    Ok(String::new())
}

fn main() {}
