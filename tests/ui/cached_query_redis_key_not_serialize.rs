use dbkit::cached_query;
use diesel::prelude::*;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Query {
    name: String,
}

#[cached_query(ttl = 300, tables = "users", redis)]
fn search(conn: &mut SqliteConnection, query: &Query) -> QueryResult<Vec<i32>> {
    let _ = (conn, &query.name);
    Ok(Vec::new())
}

fn main() {}
