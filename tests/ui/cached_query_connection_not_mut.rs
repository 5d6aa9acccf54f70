use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users")]
fn user_name(#[dbkit(conn)] pool: &dbkit::Pool<SqliteConnection>, id: i32) -> QueryResult<String> {
    let _ = (pool, id);
    Ok(String::new())
}

fn main() {}
