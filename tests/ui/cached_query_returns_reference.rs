use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users")]
fn user<'a>(conn: &mut SqliteConnection, name: &'a str) -> QueryResult<&'a str> {
    let _ = conn;
    Ok(name)
}

fn main() {}
