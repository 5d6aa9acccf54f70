use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users")]
fn touch(conn: &mut SqliteConnection, id: i32) -> () {
    let _ = (conn, id);
}

fn main() {}
