//! The fixture of the Redis tests: a `people` table in a SQLite file and a
//! `redis` cached lookup on it that keeps one L1 entry, so reading a second
//! key evicts the first and its next call must come from Redis or the
//! database.

use diesel::prelude::*;

use super::TempDb;

diesel::table! {
    people (id) {
        id -> Integer,
        name -> Text,
    }
}

#[dbkit::cached_query(ttl = 60, tables = "people", redis, max_entries = 1)]
pub fn name_of(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<String>> {
    people::table
        .find(id)
        .select(people::name)
        .first(conn)
        .optional()
}

/// People 1 `ada`, 2 `grace`, 3 `edsger`, in WAL mode (several processes
/// may open the file).
pub fn people_db() -> TempDb {
    TempDb::new(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO people VALUES (1, 'ada'), (2, 'grace'), (3, 'edsger');",
    )
}

/// Renames person `id`.
pub fn rename(conn: &mut SqliteConnection, id: i32, name: &str) {
    diesel::update(people::table.find(id))
        .set(people::name.eq(name))
        .execute(conn)
        .expect("rename");
}

/// The first miss on a table Redis has no generation for only starts the
/// generation (a value stored then could already be stale): make it.
pub fn start_generations(conn: &mut SqliteConnection) {
    name_of(conn, 3).expect("read person 3");
}
