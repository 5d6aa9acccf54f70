use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users")]
fn touch(conn: &mut SqliteConnection, id: i32) -> QueryResult<()> {
    let _ = (conn, id);
    Ok(())
}

fn main() {}
