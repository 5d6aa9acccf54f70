use dbkit::cached_query;
use diesel::prelude::*;

// `log` is keyed by its value, but on a cache hit the body does not run, so
// its push is skipped: the caller's vector silently differs between a hit
// and a miss.
#[cached_query(ttl = 300, tables = "users")]
fn user_name(conn: &mut SqliteConnection, log: &mut Vec<String>, id: i32) -> QueryResult<String> {
    log.push(format!("looked up user {id}"));
    let _ = conn;
    Ok(String::new())
}

fn main() {}
