//! The service's data: users and posts, read through `#[cached_query]`,
//! written through `#[with_session(transaction)]`. Writes need no
//! invalidation code: the pool's instrumentation sees them commit.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde::Serialize;

use dbkit::{cached_query, with_session};

/// SQLite by default; PostgreSQL too when built with `--features postgres`
/// (the URL decides which).
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    #[cfg(feature = "postgres")]
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

diesel::table! {
    users (id) {
        id -> Integer,
        name -> Text,
        email -> Text,
    }
}

diesel::table! {
    posts (id) {
        id -> Integer,
        user_id -> Integer,
        title -> Text,
        body -> Text,
    }
}

diesel::joinable!(posts -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, posts);

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i32,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = posts)]
pub struct Post {
    pub id: i32,
    pub user_id: i32,
    pub title: String,
    pub body: String,
}

/// `GET /users/{id}`: the user and their latest posts.
#[derive(Debug, Clone, Serialize)]
pub struct UserPage {
    pub user: User,
    pub latest_posts: Vec<Post>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostWithAuthor {
    pub post: Post,
    pub author: String,
}

/// The service's errors; the routes turn them into status codes.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("database: {0}")]
    AnyConnection(#[from] diesel::result::Error),
    #[error("{0}")]
    Pool(#[from] dbkit::Error),
    #[error("{0}")]
    Internal(String),
}

/// How many latest posts a user page shows.
const LATEST: i64 = 5;

#[cached_query(ttl = 60, tables = "users")]
pub fn user_by_id(conn: &mut AnyConnection, id: i32) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

#[cached_query(ttl = 60, tables = "posts")]
pub fn latest_posts(conn: &mut AnyConnection, user_id: i32, limit: i64) -> QueryResult<Vec<Post>> {
    posts::table
        .filter(posts::user_id.eq(user_id))
        .order(posts::id.desc())
        .limit(limit)
        .select(Post::as_select())
        .load(conn)
}

#[with_session]
pub fn user_page(conn: &mut AnyConnection, id: i32) -> Result<Option<UserPage>, AppError> {
    let Some(user) = user_by_id(conn, id)? else {
        return Ok(None);
    };
    let latest_posts = latest_posts(conn, id, LATEST)?;
    Ok(Some(UserPage { user, latest_posts }))
}

#[with_session]
pub fn posts_page(conn: &mut AnyConnection, user_id: i32) -> Result<Vec<Post>, AppError> {
    if user_by_id(conn, user_id)?.is_none() {
        return Err(AppError::NotFound);
    }
    Ok(latest_posts(conn, user_id, 50)?)
}

#[with_session(transaction)]
pub fn rename_user(
    conn: &mut AnyConnection,
    id: i32,
    name: &str,
) -> Result<Option<User>, AppError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::Invalid("a name cannot be empty".into()));
    }
    let changed = diesel::update(users::table.find(id))
        .set(users::name.eq(name))
        .execute(conn)?;
    if changed == 0 {
        return Ok(None);
    }
    // Inside the transaction the cache is bypassed for `users`: this reads
    // the row just written.
    Ok(user_by_id(conn, id)?)
}

#[with_session(transaction)]
pub fn add_post(
    conn: &mut AnyConnection,
    user_id: i32,
    title: &str,
    body: &str,
) -> Result<Post, AppError> {
    if title.trim().is_empty() {
        return Err(AppError::Invalid("a post needs a title".into()));
    }
    // Write first: SQLite cannot turn a transaction that has read into a
    // writing one while another connection writes (`database is locked`,
    // whatever the busy timeout). An unknown user rolls the insert back.
    diesel::insert_into(posts::table)
        .values((
            posts::user_id.eq(user_id),
            posts::title.eq(title),
            posts::body.eq(body),
        ))
        .execute(conn)?;
    if user_by_id(conn, user_id)?.is_none() {
        return Err(AppError::NotFound);
    }
    Ok(posts::table
        .filter(posts::user_id.eq(user_id))
        .order(posts::id.desc())
        .select(Post::as_select())
        .first(conn)?)
}

/// `GET /posts/recent`: the 20 latest posts with their authors, loaded
/// author by author on purpose. It is the N+1 pattern the report's
/// `n_plus_one` section exists to catch; a join would be one query.
#[with_session]
pub fn recent_posts_with_authors(
    conn: &mut AnyConnection,
) -> Result<Vec<PostWithAuthor>, AppError> {
    let recent: Vec<Post> = posts::table
        .order(posts::id.desc())
        .limit(20)
        .select(Post::as_select())
        .load(conn)?;
    let mut out = Vec::with_capacity(recent.len());
    for post in recent {
        let author: String = users::table
            .find(post.user_id)
            .select(users::name)
            .first(conn)?;
        out.push(PostWithAuthor { post, author });
    }
    Ok(out)
}

/// Opens the pool, creates the tables and seeds `seed_users` users with
/// three posts each when the database is empty, and makes the pool the
/// default for `#[with_session]`.
pub fn open(
    config: &dbkit::PoolConfig,
    seed_users: i32,
) -> Result<dbkit::Pool<AnyConnection>, AppError> {
    let pool = dbkit::Pool::<AnyConnection>::builder()
        .name("service")
        .config(config)
        .leak_threshold(std::time::Duration::from_secs(10))
        .connection_customizer(Box::new(SqliteSettings))
        .build(&config.database_url)?;
    let mut conn = pool.get_labeled("schema and seed")?;
    let id = match &mut *conn {
        #[cfg(feature = "postgres")]
        AnyConnection::Pg(_) => "SERIAL PRIMARY KEY",
        AnyConnection::Sqlite(conn) => {
            // Readers do not wait for the writer; kept in the file, so once.
            conn.batch_execute("PRAGMA journal_mode = WAL;")?;
            "INTEGER PRIMARY KEY"
        }
    };
    conn.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS users (id {id}, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
         CREATE TABLE IF NOT EXISTS posts (id {id}, user_id INTEGER NOT NULL REFERENCES users (id),
                                           title TEXT NOT NULL, body TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS posts_by_user ON posts (user_id, id);"
    ))?;
    let existing: i64 = users::table.count().get_result(&mut *conn)?;
    if existing == 0 {
        conn.transaction(|conn| {
            for n in 1..=seed_users {
                diesel::insert_into(users::table)
                    .values((
                        users::name.eq(format!("user {n}")),
                        users::email.eq(format!("user{n}@example.com")),
                    ))
                    .execute(conn)?;
            }
            let ids: Vec<i32> = users::table.select(users::id).load(conn)?;
            for id in ids {
                for p in 1..=3 {
                    diesel::insert_into(posts::table)
                        .values((
                            posts::user_id.eq(id),
                            posts::title.eq(format!("post {p} of user {id}")),
                            posts::body
                                .eq("Lorem ipsum dolor sit amet, consectetur adipiscing elit."),
                        ))
                        .execute(conn)?;
                }
            }
            QueryResult::Ok(())
        })?;
    }
    drop(conn);
    dbkit::set_default_pool(pool.clone());
    Ok(pool)
}

/// SQLite's busy timeout on every connection, instead of `database is
/// locked` errors under concurrent writes.
#[derive(Debug)]
struct SqliteSettings;

impl diesel::r2d2::CustomizeConnection<AnyConnection, diesel::r2d2::Error> for SqliteSettings {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        #[allow(irrefutable_let_patterns)] // one variant without `postgres`
        if let AnyConnection::Sqlite(conn) = conn {
            conn.batch_execute("PRAGMA busy_timeout = 5000;")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}
