//! The classifier against SQL as diesel generates it for each backend
//! (rendered by diesel's own query builder, binds stripped, exactly the text
//! the instrumentation sees) and against hand-written SQL.

use dbkit_diesel::classify::{classify, Effect};

/// The tables a text writes; `None` for "writes, tables unknown";
/// panics if it does not write.
fn writes(sql: &str) -> Option<Vec<String>> {
    match classify(sql, false) {
        Effect::Writes(t) => Some(
            t.as_slice()
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
        ),
        Effect::WritesUnknown => None,
        other => panic!("{sql:?} must be a write, was {other:?}"),
    }
}

fn reads(sql: &str) -> Vec<String> {
    match classify(sql, true) {
        Effect::Reads(t) => {
            let mut v: Vec<String> = t
                .as_slice()
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            v.sort();
            v
        }
        other => panic!("{sql:?} must be a read, was {other:?}"),
    }
}

#[test]
fn hand_written_writes() {
    let cases: &[(&str, &[&str])] = &[
        ("insert into users (name) values ('a')", &["users"]),
        ("INSERT INTO \"public\".\"users\" (\"name\") VALUES ($1) RETURNING \"users\".\"id\"", &["users"]),
        ("INSERT INTO users VALUES (1) ON CONFLICT (id) DO UPDATE SET name = excluded.name", &["users"]),
        ("INSERT OR REPLACE INTO `users` (`id`) VALUES (?)", &["users"]),
        ("insert or ignore into users default values", &["users"]),
        ("REPLACE INTO `users` (`id`, `name`) VALUES (?, ?)", &["users"]),
        ("INSERT IGNORE INTO users SET name = 'x'", &["users"]),
        ("INSERT LOW_PRIORITY INTO users VALUES (1)", &["users"]),
        ("insert into posts (title) select name from users", &["posts"]),
        ("UPDATE users SET name = 'x' WHERE id = 1", &["users"]),
        ("update only users u set name = 'x' from posts p where p.user_id = u.id", &["users"]),
        ("UPDATE LOW_PRIORITY IGNORE users SET a = 1", &["users"]),
        ("UPDATE users u JOIN posts p ON p.user_id = u.id SET u.n = p.n", &["users", "posts"]),
        ("UPDATE users, posts SET users.n = posts.n WHERE users.id = posts.user_id", &["users", "posts"]),
        ("update or rollback users set a = 1", &["users"]),
        ("DELETE FROM users WHERE id = 1", &["users"]),
        ("delete from only users using posts where posts.user_id = users.id", &["users"]),
        ("DELETE LOW_PRIORITY QUICK IGNORE FROM users", &["users"]),
        ("DELETE FROM users, posts USING users JOIN posts", &["users", "posts"]),
        ("DELETE u FROM users u JOIN posts p ON p.user_id = u.id", &["u", "users", "posts"]),
        ("TRUNCATE users", &["users"]),
        ("truncate table only users, posts restart identity", &["users", "posts"]),
        ("MERGE INTO accounts a USING staged s ON a.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v", &["accounts"]),
        ("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY)", &["users"]),
        ("create temporary table scratch as select * from users", &["scratch"]),
        ("DROP TABLE IF EXISTS users, posts", &["users", "posts"]),
        ("ALTER TABLE users ADD COLUMN age INTEGER DEFAULT 0", &["users"]),
        ("alter table users rename to people", &["users", "people"]),
        ("COPY users (id, name) FROM STDIN", &["users"]),
        ("LOAD DATA INFILE 'x.csv' INTO TABLE users", &["users"]),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY user_stats", &["user_stats"]),
        ("WITH moved AS (DELETE FROM queue WHERE id = 1 RETURNING *) INSERT INTO done SELECT * FROM moved", &["queue", "done"]),
        ("with recursive x(n) as (select 1) update users set n = (select n from x)", &["users"]),
        ("WITH u AS (UPDATE users SET n = 1 RETURNING id) SELECT * FROM u", &["users"]),
        ("EXPLAIN ANALYZE UPDATE users SET n = 1", &["users"]),
        ("explain (analyze, buffers) delete from users", &["users"]),
        ("/* leading */ -- line\n  InSeRt InTo Users VALUES (1)", &["users"]),
        ("INSERT INTO \"we\"\"ird\" VALUES (1)", &["we\"\"ird"]),
        ("INSERT INTO [users] VALUES (1)", &["users"]),
        ("UPDATE users SET note = 'it''s; DELETE FROM posts' WHERE id = 1", &["users"]),
        ("UPDATE users SET body = $$ ; DROP TABLE x; $$", &["users"]),
        ("BEGIN; UPDATE users SET a = 1; INSERT INTO posts VALUES (1); COMMIT;", &["users", "posts"]),
    ];
    for (sql, expected) in cases {
        let got = writes(sql).unwrap_or_else(|| panic!("{sql:?}: tables should be known"));
        let expected: Vec<String> = expected.iter().map(|s| s.to_ascii_lowercase()).collect();
        assert_eq!(got, expected, "{sql:?}");
    }
}

#[test]
fn what_cannot_be_placed_writes_everything() {
    for sql in [
        "CALL refresh_everything()",
        "DO $$ BEGIN UPDATE users SET a = 1; END $$",
        "EXECUTE prepared_update(1)",
        "TRUNCATE users CASCADE",
        "DROP TABLE users CASCADE",
        "DROP SCHEMA app CASCADE",
        "DROP VIEW v CASCADE",
        "SELECT * INTO new_users FROM users",
        "UPDATE users SET name = 'unterminated",
        "SELECT 1; /* unterminated",
        "FROBNICATE users",
        "INSERT INTO",
        "UPDATE (SELECT * FROM users) SET a = 1",
        "$1 users",
        // Found by fuzzing: SQLite ends the comment at the first `*/` and runs
        // the UPDATE; a PostgreSQL-style nested reading hides it.
        "/* x/*/ -- */**/(\nUPDATE users SET a = 1",
        "/* a /* b */ DELETE FROM users",
    ] {
        assert_eq!(writes(sql), None, "{sql:?}");
    }
}

#[test]
fn reads_and_what_changes_no_data() {
    assert_eq!(reads("SELECT * FROM users"), ["users"]);
    assert_eq!(
        reads("select u.id from users u join posts p on p.user_id = u.id"),
        ["posts", "users"]
    );
    assert_eq!(
        reads("SELECT * FROM users, \"app\".\"accounts\" a WHERE 1 = 1"),
        ["accounts", "users"]
    );
    assert_eq!(
        reads("SELECT * FROM users WHERE id IN (SELECT user_id FROM posts)"),
        ["posts", "users"]
    );
    assert_eq!(reads("SELECT * FROM (SELECT * FROM posts) AS p"), ["posts"]);
    assert_eq!(
        reads("WITH recent AS (SELECT * FROM posts) SELECT * FROM recent JOIN users ON true"),
        ["posts", "users"]
    );
    assert_eq!(
        reads("SELECT * FROM generate_series(1, 3)"),
        Vec::<String>::new()
    );
    assert_eq!(
        reads("(SELECT 1 FROM a) UNION (SELECT 1 FROM b)"),
        ["a", "b"]
    );
    assert_eq!(reads("SELECT * FROM users FOR UPDATE"), ["users"]);
    assert_eq!(reads("VALUES (1), (2)"), Vec::<String>::new());
    for sql in [
        "SET search_path TO app",
        "PRAGMA foreign_keys = ON",
        "CREATE INDEX users_email ON users (email)",
        "CREATE VIEW v AS SELECT * FROM users",
        "DROP INDEX users_email",
        "EXPLAIN SELECT * FROM users",
        "EXPLAIN UPDATE users SET a = 1",
        "COPY users TO STDOUT",
        "COPY (SELECT * FROM users) TO STDOUT",
        "ANALYZE users",
        "VACUUM",
        "LOCK TABLE users IN ACCESS EXCLUSIVE MODE",
    ] {
        assert_eq!(classify(sql, false), Effect::NoData, "{sql:?}");
    }
}

#[test]
fn transaction_control() {
    for sql in [
        "BEGIN",
        "begin immediate",
        "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "START TRANSACTION",
        "BEGIN DEFERRED TRANSACTION",
    ] {
        assert_eq!(classify(sql, false), Effect::Begin, "{sql:?}");
    }
    for sql in ["COMMIT", "commit transaction", "END", "COMMIT WORK"] {
        assert_eq!(classify(sql, false), Effect::Commit, "{sql:?}");
    }
    for sql in ["ROLLBACK", "rollback work", "ABORT"] {
        assert_eq!(classify(sql, false), Effect::Rollback, "{sql:?}");
    }
    for sql in [
        "SAVEPOINT diesel_savepoint_1",
        "RELEASE SAVEPOINT diesel_savepoint_1",
        "ROLLBACK TO SAVEPOINT diesel_savepoint_1",
        "rollback transaction to s",
    ] {
        assert_eq!(classify(sql, false), Effect::Savepoint, "{sql:?}");
    }
    assert_eq!(
        classify("  -- nothing\n /* here */ ; ;", false),
        Effect::Empty
    );
}

/// SQL as diesel renders it, from its own query builder.
mod generated {
    use super::*;
    use diesel::prelude::*;

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
        }
    }

    diesel::table! {
        app.accounts (id) {
            id -> Integer,
            balance -> Integer,
        }
    }

    diesel::joinable!(posts -> users (user_id));
    diesel::allow_tables_to_appear_in_same_query!(users, posts, accounts);

    /// The text the instrumentation keeps: diesel's rendering up to the binds.
    macro_rules! sql_of {
        ($backend:ty, $query:expr) => {{
            let rendered = diesel::debug_query::<$backend, _>(&$query).to_string();
            rendered.split(" -- binds: ").next().unwrap().to_owned()
        }};
    }

    macro_rules! corpus {
        ($backend:ty) => {{
            let mut texts: Vec<(String, Option<&[&str]>)> = Vec::new();
            let writes_users: Option<&[&str]> = Some(&["users"]);
            let writes_posts: Option<&[&str]> = Some(&["posts"]);
            texts.push((
                sql_of!(
                    $backend,
                    diesel::insert_into(users::table)
                        .values((users::name.eq("a"), users::email.eq("b")))
                ),
                writes_users,
            ));
            texts.push((
                sql_of!(
                    $backend,
                    diesel::update(users::table.find(1)).set(users::name.eq("x"))
                ),
                writes_users,
            ));
            texts.push((
                sql_of!(
                    $backend,
                    diesel::update(
                        posts::table
                            .filter(posts::user_id.eq_any(
                                users::table.select(users::id).filter(users::name.eq("a"))
                            ))
                    )
                    .set(posts::title.eq("t"))
                ),
                writes_posts,
            ));
            texts.push((
                sql_of!(
                    $backend,
                    diesel::delete(users::table.filter(users::email.like("%@x")))
                ),
                writes_users,
            ));
            texts.push((
                sql_of!(
                    $backend,
                    diesel::insert_into(posts::table)
                        .values(users::table.select((users::id, users::id, users::name)))
                        .into_columns((posts::id, posts::user_id, posts::title))
                ),
                writes_posts,
            ));
            texts.push((
                sql_of!(
                    $backend,
                    diesel::insert_into(accounts::table).values(accounts::balance.eq(1))
                ),
                Some(&["accounts"][..]),
            ));
            texts.push((
                sql_of!(
                    $backend,
                    users::table.filter(users::name.eq("a")).select(users::id)
                ),
                None,
            ));
            texts.push((
                sql_of!(
                    $backend,
                    users::table
                        .inner_join(posts::table)
                        .select((users::name, posts::title))
                ),
                None,
            ));
            texts.push((
                sql_of!(
                    $backend,
                    users::table
                        .filter(users::id.eq_any(posts::table.select(posts::user_id)))
                        .count()
                ),
                None,
            ));
            texts.push((
                sql_of!(
                    $backend,
                    diesel::select(diesel::dsl::exists(users::table.filter(users::id.eq(1))))
                ),
                None,
            ));
            texts.push((sql_of!($backend, accounts::table.find(1)), None));
            texts
        }};
    }

    fn check(backend: &str, corpus: Vec<(String, Option<&[&str]>)>) {
        for (sql, expected) in corpus {
            match expected {
                Some(tables) => {
                    let got = writes(&sql)
                        .unwrap_or_else(|| panic!("{backend}: {sql:?} tables should be known"));
                    assert_eq!(got, tables, "{backend}: {sql}");
                }
                None => {
                    assert!(
                        !classify(&sql, true).is_write(),
                        "{backend}: {sql} is a read"
                    );
                    assert!(!reads(&sql).is_empty(), "{backend}: {sql} reads tables");
                }
            }
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite() {
        let mut corpus = corpus!(diesel::sqlite::Sqlite);
        corpus.push((
            sql_of!(
                diesel::sqlite::Sqlite,
                diesel::replace_into(users::table).values(users::name.eq("a"))
            ),
            Some(&["users"]),
        ));
        corpus.push((
            sql_of!(
                diesel::sqlite::Sqlite,
                diesel::insert_or_ignore_into(users::table).values(users::name.eq("a"))
            ),
            Some(&["users"]),
        ));
        corpus.push((
            sql_of!(
                diesel::sqlite::Sqlite,
                diesel::insert_into(users::table)
                    .values((users::id.eq(1), users::name.eq("a")))
                    .on_conflict(users::id)
                    .do_update()
                    .set(users::name.eq("b"))
            ),
            Some(&["users"]),
        ));
        check("sqlite", corpus);
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres() {
        use diesel::pg::Pg;
        let mut corpus = corpus!(Pg);
        corpus.push((
            sql_of!(
                Pg,
                diesel::insert_into(users::table).values(&vec![
                    (users::name.eq("a"), users::email.eq("b")),
                    (users::name.eq("c"), users::email.eq("d"))
                ])
            ),
            Some(&["users"]),
        ));
        corpus.push((
            sql_of!(
                Pg,
                diesel::insert_into(users::table)
                    .values((users::id.eq(1), users::name.eq("a")))
                    .on_conflict(users::id)
                    .do_update()
                    .set(users::name.eq("b"))
            ),
            Some(&["users"]),
        ));
        corpus.push((
            sql_of!(
                Pg,
                diesel::insert_into(users::table)
                    .values(users::name.eq("a"))
                    .on_conflict_do_nothing()
            ),
            Some(&["users"]),
        ));
        corpus.push((
            sql_of!(
                Pg,
                diesel::update(users::table)
                    .set(users::name.eq("x"))
                    .returning(users::id)
            ),
            Some(&["users"]),
        ));
        corpus.push((
            sql_of!(
                Pg,
                diesel::delete(accounts::table.find(1)).returning(accounts::balance)
            ),
            Some(&["accounts"]),
        ));
        corpus.push((sql_of!(Pg, users::table.for_update().find(1)), None));
        check("postgres", corpus);
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql() {
        use diesel::mysql::Mysql;
        let mut corpus = corpus!(Mysql);
        corpus.push((
            sql_of!(
                Mysql,
                diesel::insert_into(users::table).values(&vec![
                    (users::name.eq("a"), users::email.eq("b")),
                    (users::name.eq("c"), users::email.eq("d"))
                ])
            ),
            Some(&["users"]),
        ));
        corpus.push((
            sql_of!(
                Mysql,
                diesel::replace_into(users::table).values(users::name.eq("a"))
            ),
            Some(&["users"]),
        ));
        corpus.push((
            sql_of!(
                Mysql,
                diesel::insert_or_ignore_into(users::table).values(users::name.eq("a"))
            ),
            Some(&["users"]),
        ));
        check("mysql", corpus);
    }
}
