//! dbkit in one minute: a users-and-posts service on bundled SQLite.
//!
//! Run it with `cargo run --example quickstart`. It shows a miss, then hits,
//! then a write that invalidates exactly the cached reads of its table (no
//! invalidation code: the connection is instrumented), and ends with the
//! cache statistics dbkit keeps for every cached function.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dbkit::cached_query;
use diesel::connection::{InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
        name -> Text,
    }
}

diesel::table! {
    posts (id) {
        id -> Integer,
        author_id -> Integer,
        title -> Text,
    }
}

diesel::joinable!(posts -> users (author_id));
diesel::allow_tables_to_appear_in_same_query!(users, posts);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
struct User {
    id: i32,
    email: String,
    name: String,
}

/// Cached for five minutes; any committed write to `users` invalidates it.
#[cached_query(ttl = 300, tables = "users")]
fn user_by_email(conn: &mut SqliteConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .get_result(conn)
        .optional()
}

/// Reads two tables, so a write to either invalidates it.
#[cached_query(ttl = "10m", tables = "posts, users")]
fn posts_by_author(conn: &mut SqliteConnection, email: &str) -> QueryResult<Vec<(String, String)>> {
    posts::table
        .inner_join(users::table)
        .filter(users::email.eq(email))
        .select((users::name, posts::title))
        .order(posts::id)
        .load(conn)
}

fn rename_user(conn: &mut SqliteConnection, id: i32, name: &str) -> QueryResult<usize> {
    // No invalidation code: dbkit's instrumentation sees the UPDATE commit and
    // refuses every cached read of `users` from then on.
    diesel::update(users::table.find(id))
        .set(users::name.eq(name))
        .execute(conn)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = SqliteConnection::establish(":memory:")?;
    conn.batch_execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
         CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES users(id), title TEXT NOT NULL);
         INSERT INTO users VALUES (1, 'ada@example.com', 'Ada'), (2, 'alan@example.com', 'Alan');
         INSERT INTO posts VALUES (1, 1, 'Notes on the Analytical Engine'), (2, 2, 'On Computable Numbers'),
                                  (3, 1, 'Sketch of the Engine');",
    )?;

    // dbkit's instrumentation makes committed writes invalidate cached reads;
    // the closure it wraps counts what reaches SQLite, to make hits visible.
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    dbkit::Instrument::new()
        .wrapping(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
        .install(&mut conn);
    // Runs one call and says whether it reached the database.
    let step = |what: &str, call: &mut dyn FnMut() -> QueryResult<String>| -> QueryResult<()> {
        let before = statements.load(Ordering::Relaxed);
        let shown = call()?;
        let ran = statements.load(Ordering::Relaxed) - before;
        let outcome = if ran == 0 { "hit" } else { "miss (query ran)" };
        println!("{what:<30} {outcome:<17} {shown}");
        Ok(())
    };
    let user = |u: Option<User>| {
        u.map(|u| format!("#{} {} <{}>", u.id, u.name, u.email))
            .unwrap_or_else(|| "None".into())
    };
    let ada = "ada@example.com";

    step("user_by_email(ada)", &mut || {
        user_by_email(&mut conn, ada).map(user)
    })?;
    step("user_by_email(ada)", &mut || {
        user_by_email(&mut conn, ada).map(user)
    })?;
    step("user_by_email(nobody)", &mut || {
        user_by_email(&mut conn, "nobody@example.com").map(user)
    })?;
    step("user_by_email(nobody)", &mut || {
        user_by_email(&mut conn, "nobody@example.com").map(user)
    })?;
    step("posts_by_author(ada)", &mut || {
        posts_by_author(&mut conn, ada).map(|p| format!("{p:?}"))
    })?;
    step("posts_by_author(ada)", &mut || {
        posts_by_author(&mut conn, ada).map(|p| format!("{p:?}"))
    })?;

    println!("-- rename_user(1, \"Ada Lovelace\"): a write to `users` --");
    rename_user(&mut conn, 1, "Ada Lovelace")?;

    step("user_by_email(ada)", &mut || {
        user_by_email(&mut conn, ada).map(user)
    })?;
    step("posts_by_author(ada)", &mut || {
        posts_by_author(&mut conn, ada).map(|p| format!("{p:?}"))
    })?;
    step("user_by_email(ada)", &mut || {
        user_by_email(&mut conn, ada).map(user)
    })?;

    println!("\ncache statistics");
    println!(
        "{:<40} {:>5} {:>6} {:>6} {:>7} {:>8}",
        "function", "hits", "misses", "stale", "entries", "hit rate"
    );
    for s in dbkit::cache_stats() {
        println!(
            "{:<40} {:>5} {:>6} {:>6} {:>7} {:>7.0}%",
            s.function,
            s.hits,
            s.misses,
            s.stale_rejections,
            s.entries,
            s.hit_rate() * 100.0
        );
    }
    Ok(())
}
