use dbkit::cached_query;
use diesel::prelude::*;

/// An application's handle around its connection, which dbkit cannot ask
/// whether it is inside a transaction.
pub struct Db {
    pub conn: SqliteConnection,
}

#[cached_query(ttl = 300, tables = "users")]
fn user_name(#[dbkit(conn)] db: &mut Db, id: i32) -> QueryResult<String> {
    let _ = (db, id);
    Ok(String::new())
}

fn main() {}
