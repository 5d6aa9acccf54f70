//! dbkit in one minute: a users-and-posts service on bundled SQLite.
//!
//! Run it with `cargo run --example quickstart`. It shows a miss, then hits,
//! then a write that invalidates exactly the cached reads of its table (no
//! invalidation code: the pool's connections are instrumented), a
//! `#[with_session]` function that checks out its own connection, and ends
//! with the cache statistics and the pool figures dbkit keeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dbkit::{cached_query, with_session};
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

/// Checks a connection out of the default pool for the call, in a
/// transaction. No invalidation code: dbkit's instrumentation sees the UPDATE
/// commit and refuses every cached read of `users` from then on.
#[with_session(transaction)]
fn rename_user(conn: &mut SqliteConnection, id: i32, name: &str) -> Result<usize, AppError> {
    let updated = diesel::update(users::table.find(id))
        .set(users::name.eq(name))
        .execute(conn)?;
    Ok(updated)
}

/// The service's error: a database error or a pool error.
#[derive(Debug)]
enum AppError {
    Database(diesel::result::Error),
    Pool(dbkit::Error),
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Database(e) => write!(f, "database: {e}"),
            AppError::Pool(e) => write!(f, "pool: {e}"),
        }
    }
}

impl std::error::Error for AppError {}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::Database(e)
    }
}

impl From<dbkit::Error> for AppError {
    fn from(e: dbkit::Error) -> Self {
        AppError::Pool(e)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One in-memory database, so one connection: the pool's only one.
    // dbkit's instrumentation on it makes committed writes invalidate cached
    // reads; the closure it wraps counts what reaches SQLite, to make hits
    // visible.
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    let pool = dbkit::Pool::<SqliteConnection>::builder()
        .name("quickstart")
        .max_size(1)
        .instrumentation(move || {
            let counter = counter.clone();
            move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::StartQuery { .. } = event {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .build(":memory:")?;
    dbkit::set_default_pool(pool.clone());

    let mut conn = pool.get()?;
    conn.batch_execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
         CREATE TABLE posts (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES users(id), title TEXT NOT NULL);
         INSERT INTO users VALUES (1, 'ada@example.com', 'Ada'), (2, 'alan@example.com', 'Alan');
         INSERT INTO posts VALUES (1, 1, 'Notes on the Analytical Engine'), (2, 2, 'On Computable Numbers'),
                                  (3, 1, 'Sketch of the Engine');",
    )?;

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
    // We hold the pool's only connection: pass it (`_with_conn`) rather than
    // have `rename_user` check out a second one, which dbkit would refuse as
    // a nested checkout instead of letting it wait for itself.
    rename_user_with_conn(&mut conn, 1, "Ada Lovelace")?;

    step("user_by_email(ada)", &mut || {
        user_by_email(&mut conn, ada).map(user)
    })?;
    step("posts_by_author(ada)", &mut || {
        posts_by_author(&mut conn, ada).map(|p| format!("{p:?}"))
    })?;
    step("user_by_email(ada)", &mut || {
        user_by_email(&mut conn, ada).map(user)
    })?;

    // Given back, the connection is free for a function that checks out its own.
    drop(conn);
    println!("-- rename_user(2, \"Alan Turing\"): its own session --");
    rename_user(2, "Alan Turing")?;
    let mut conn = pool.get()?;
    step("user_by_email(alan)", &mut || {
        user_by_email(&mut conn, "alan@example.com").map(user)
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
    let report = pool.report();
    println!(
        "\npool `{}`: {} connection(s), {} in use, {} checkouts, mean wait {} µs, breaker {:?}",
        report.name,
        report.connections,
        report.in_use,
        report.checkouts,
        report.wait_mean_us,
        report.breaker
    );
    for s in pool.sessions() {
        println!("open session #{} `{}` held {} ms", s.id, s.label, s.held_ms);
    }
    Ok(())
}
