use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "users")]
fn user(conn: &mut SqliteConnection, name: impl AsRef<str>) -> QueryResult<String> {
    let _ = conn;
    Ok(name.as_ref().to_owned())
}

fn main() {}
