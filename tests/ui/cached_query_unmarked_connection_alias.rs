use dbkit::cached_query;
use diesel::prelude::*;

type Db = SqliteConnection;

#[cached_query(ttl = 300, tables = "users")]
fn user(conn: &mut Db, id: i32) -> QueryResult<String> {
    let _ = (conn, id);
    Ok(String::new())
}

fn main() {}
