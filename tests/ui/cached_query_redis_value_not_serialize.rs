use dbkit::cached_query;
use diesel::prelude::*;

#[derive(Clone)]
pub struct User {
    pub id: i32,
}

#[cached_query(ttl = 300, tables = "users", redis)]
fn user(conn: &mut SqliteConnection, id: i32) -> QueryResult<User> {
    let _ = conn;
    Ok(User { id })
}

fn main() {}
