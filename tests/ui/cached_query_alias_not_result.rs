use dbkit::cached_query;
use diesel::prelude::*;

type LookupResult = Vec<i32>;

#[cached_query(ttl = 300, tables = "users")]
fn ids(conn: &mut SqliteConnection) -> LookupResult {
    let _ = conn;
    Vec::new()
}

fn main() {}
