use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users")]
fn user(conn: &mut SqliteConnection, id: i32) -> impl Clone {
    let _ = (conn, id);
    0
}

fn main() {}
