use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "prices")]
fn price_above(conn: &mut SqliteConnection, threshold: f64) -> QueryResult<Vec<i32>> {
    let _ = (conn, threshold);
    Ok(Vec::new())
}

fn main() {}
