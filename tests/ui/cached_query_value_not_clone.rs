use dbkit::cached_query;
use diesel::prelude::*;

struct User {
    name: String,
}

#[cached_query(ttl = 300, tables = "users")]
fn user(conn: &mut SqliteConnection, id: i32) -> QueryResult<User> {
    let _ = (conn, id);
    Ok(User { name: String::new() })
}

fn main() {}
