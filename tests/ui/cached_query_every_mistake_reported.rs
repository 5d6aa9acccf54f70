use dbkit::cached_query;
use diesel::prelude::*;

#[cached_query(tll = 300, tables = "", max_entries = 0)]
fn user<T>(conn: &mut SqliteConnection, threshold: impl Copy) -> () {
    let _ = (conn, threshold);
}

fn main() {}
