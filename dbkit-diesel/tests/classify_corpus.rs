//! The classifier against SQL as diesel generates it for each backend
//! (rendered by diesel's own query builder, binds stripped, exactly the text
//! the instrumentation sees) and against hand-written SQL.

use dbkit_diesel::classify::{classify, statements, Dialect, Effect};

/// The dialect a hand-written case is in: SQLite's quotes, else
/// PostgreSQL's.
fn dialect_of(sql: &str) -> Dialect {
    if sql.contains(['[', '`']) {
        Dialect::Sqlite
    } else {
        Dialect::Postgres
    }
}

/// The tables a text writes; `None` for "writes, tables unknown";
/// panics if it does not write.
fn writes(sql: &str) -> Option<Vec<String>> {
    writes_in(sql, dialect_of(sql))
}

fn writes_in(sql: &str, dialect: Dialect) -> Option<Vec<String>> {
    match classify(sql, dialect, false) {
        Effect::Writes(t) => Some(
            t.as_slice()
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
        ),
        Effect::WritesUnknown | Effect::UnknownControl => None,
        other => panic!("{sql:?} must be a write, was {other:?}"),
    }
}

fn reads(sql: &str) -> Vec<String> {
    match classify(sql, dialect_of(sql), true) {
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
        assert_eq!(writes_in(sql, Dialect::Any), None, "{sql:?}");
    }
    assert_eq!(
        writes_in("CALL refresh_everything()", Dialect::Postgres),
        None
    );
    // MySQL's procedures may leave a transaction open: unknown control.
    assert_eq!(
        classify("CALL refresh_everything()", Dialect::Any, false),
        Effect::UnknownControl
    );
    // Read by the right dialect, the fuzzer's finds are plain writes.
    assert_eq!(
        writes_in("/* x/*/ -- */**/(\nUPDATE users SET a = 1", Dialect::Sqlite),
        Some(vec!["users".to_owned()])
    );
    assert_eq!(
        writes_in("/* a /* b */ DELETE FROM users", Dialect::Mysql),
        Some(vec!["users".to_owned()])
    );
}

#[test]
fn each_dialect_reads_its_own_comments_quotes_and_strings() {
    use Dialect::*;
    let users = || Some(vec!["users".to_owned()]);
    // `#`: an operator in PostgreSQL, a comment in MySQL.
    let hash = "SELECT 5 # 3; UPDATE users SET a = 1";
    assert_eq!(writes_in(hash, Postgres), users());
    assert_eq!(writes_in(hash, Any), None);
    assert!(!classify(hash, Mysql, false).is_write());
    // `--` needs a space after it in MySQL: `1--1` is arithmetic there.
    let dashes = "SELECT 1--1; UPDATE users SET a = 1";
    assert_eq!(writes_in(dashes, Mysql), users());
    assert_eq!(writes_in(dashes, Any), None);
    assert!(!classify(dashes, Postgres, false).is_write());
    // Backslashes escape in MySQL (unless NO_BACKSLASH_ESCAPES) and in
    // PostgreSQL with standard_conforming_strings off: both readings must
    // end the literal in one place.
    let backslash = r"SELECT 'it\'; UPDATE users SET a = 1; -- '";
    assert_eq!(writes_in(backslash, Mysql), None);
    assert_eq!(writes_in(backslash, Postgres), None);
    assert_eq!(writes_in(backslash, Sqlite), users());
    assert!(!classify(r"SELECT '\d+' FROM t", Postgres, false).is_write());
    // MySQL runs `/*! .. */`.
    assert_eq!(
        writes_in("SELECT 1 /*! ; UPDATE users SET a = 1 */", Mysql),
        None
    );
    // Dollar quotes: PostgreSQL's, with any letters in the tag.
    let dollar = "SELECT $é$ '$é$; UPDATE users SET a = 1; -- '";
    assert_eq!(writes_in(dollar, Postgres), Some(vec!["users".to_owned()]));
    assert_eq!(writes_in(dollar, Any), None);
    // Brackets quote in SQLite only.
    let brackets = "SELECT x[']'] ; UPDATE users SET a = 1 --'";
    assert_eq!(writes_in(brackets, Postgres), users());
    // Nested comments: PostgreSQL only.
    assert_eq!(
        writes_in(
            "/* a /* b */ UPDATE posts SET a = 1 */ UPDATE users SET a = 1",
            Postgres
        ),
        users()
    );
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
        assert_eq!(
            classify(sql, Dialect::Postgres, false),
            Effect::NoData,
            "{sql:?}"
        );
    }
}

#[test]
fn transaction_control() {
    let pg = |sql| classify(sql, Dialect::Postgres, false);
    for sql in [
        "BEGIN",
        "begin immediate",
        "BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        "START TRANSACTION",
        "BEGIN DEFERRED TRANSACTION",
    ] {
        assert_eq!(pg(sql), Effect::Begin, "{sql:?}");
    }
    for sql in [
        "COMMIT",
        "commit transaction",
        "END",
        "COMMIT WORK",
        "COMMIT AND NO CHAIN",
    ] {
        assert_eq!(pg(sql), Effect::Commit { chain: false }, "{sql:?}");
    }
    assert_eq!(pg("COMMIT AND CHAIN"), Effect::Commit { chain: true });
    for sql in ["ROLLBACK", "rollback work", "ABORT"] {
        assert_eq!(pg(sql), Effect::Rollback { chain: false }, "{sql:?}");
    }
    assert_eq!(pg("ROLLBACK AND CHAIN"), Effect::Rollback { chain: true });
    assert_eq!(
        pg("SAVEPOINT diesel_savepoint_1"),
        Effect::Savepoint("diesel_savepoint_1")
    );
    assert_eq!(
        pg("RELEASE SAVEPOINT diesel_savepoint_1"),
        Effect::Release("diesel_savepoint_1")
    );
    assert_eq!(pg("release s"), Effect::Release("s"));
    assert_eq!(
        pg("ROLLBACK TO SAVEPOINT diesel_savepoint_1"),
        Effect::RollbackTo("diesel_savepoint_1")
    );
    assert_eq!(pg("rollback transaction to s"), Effect::RollbackTo("s"));
    assert_eq!(
        pg("PREPARE TRANSACTION 'tx-1'"),
        Effect::PrepareTransaction("'tx-1'")
    );
    assert_eq!(
        pg("COMMIT PREPARED 'tx-1'"),
        Effect::CommitPrepared("'tx-1'")
    );
    assert_eq!(
        pg("ROLLBACK PREPARED 'tx-1'"),
        Effect::RollbackPrepared("'tx-1'")
    );
    assert_eq!(pg("PREPARE get_user AS SELECT 1"), Effect::NoData);
    let my = |sql| classify(sql, Dialect::Mysql, false);
    for (sql, value) in [
        ("SET autocommit = 0", Some(false)),
        ("SET autocommit=1", Some(true)),
        ("set session autocommit = OFF", Some(false)),
        ("SET @@autocommit := ON", Some(true)),
        ("SET @@session.autocommit = 0, sql_mode = ''", Some(false)),
        ("SET autocommit = @saved", None),
        ("SET autocommit = 10", None),
    ] {
        assert_eq!(my(sql), Effect::Autocommit(value), "{sql:?}");
    }
    assert_eq!(my("SET NAMES utf8mb4"), Effect::NoData);
    for sql in ["XA START 'x'", "CALL refill()", "EXECUTE stmt"] {
        assert_eq!(my(sql), Effect::UnknownControl, "{sql:?}");
    }
    assert_eq!(pg("COMMIT 'unterminated"), Effect::UnknownControl);
    assert_eq!(
        classify("  -- nothing\n /* here */ ; ;", Dialect::Postgres, false),
        Effect::Empty
    );
}

#[test]
fn mysql_data_definition_commits_first() {
    let parts: Vec<_> = statements(
        "ALTER TABLE users ADD COLUMN a INT; UPDATE users SET a = 1; LOCK TABLES users WRITE",
        Dialect::Mysql,
        false,
    )
    .map(|s| s.commits_first)
    .collect();
    assert_eq!(parts, [true, false, true]);
}

#[test]
fn routine_and_trigger_bodies_run_nothing_now() {
    fn effects(sql: &str, dialect: Dialect) -> Vec<Effect<'_>> {
        statements(sql, dialect, false).map(|s| s.effect).collect()
    }
    // SQLite's trigger body holds `;` and ends with END: no COMMIT here.
    let trigger = "CREATE TRIGGER t_audit AFTER UPDATE ON users BEGIN \
                   INSERT INTO audit VALUES (new.id); UPDATE stats SET n = n + 1; END; \
                   UPDATE users SET a = 1";
    assert_eq!(
        effects(trigger, Dialect::Sqlite),
        [Effect::NoData, writes_effect("users")]
    );
    // PostgreSQL's SQL-standard function body.
    let function = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC \
                    SELECT 1; SELECT CASE WHEN true THEN 1 END; END; COMMIT";
    assert_eq!(
        effects(function, Dialect::Postgres),
        [Effect::NoData, Effect::Commit { chain: false }]
    );
    // MySQL's procedure, with IF/LOOP/CASE blocks and a DEFINER.
    let procedure = "CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN \
                     IF 1 THEN SET autocommit = 0; END IF; \
                     l: LOOP LEAVE l; END LOOP; \
                     CASE 1 WHEN 1 THEN SELECT 1; END CASE; \
                     START TRANSACTION; UPDATE t SET v = 1; END; UPDATE users SET a = 1";
    assert_eq!(
        effects(procedure, Dialect::Mysql),
        [Effect::NoData, writes_effect("users")]
    );
    // MariaDB's anonymous block runs its statements now.
    assert_eq!(
        effects("BEGIN NOT ATOMIC UPDATE t SET v = 1; END", Dialect::Mysql),
        [Effect::UnknownControl]
    );
    // `SET STATEMENT .. FOR` runs the statement after FOR.
    assert_eq!(
        effects(
            "SET STATEMENT max_statement_time = 1 FOR UPDATE users SET a = 1",
            Dialect::Mysql
        ),
        [writes_effect("users")]
    );
}

#[test]
fn unreadable_text_that_may_hold_transaction_control_is_unknown_control() {
    assert_eq!(
        classify(r"SELECT 'it\'s'; START TRANSACTION", Dialect::Mysql, false),
        Effect::UnknownControl
    );
    assert_eq!(
        classify("SELECT 1 /*! ; COMMIT */", Dialect::Mysql, false),
        Effect::UnknownControl
    );
    assert_eq!(
        classify(r"SELECT 'O\'Brien'", Dialect::Mysql, false),
        Effect::WritesUnknown,
        "no word that could control a transaction: a write of everything"
    );
}

fn writes_effect(table: &'static str) -> Effect<'static> {
    match classify(
        Box::leak(format!("UPDATE {table} SET a = 1").into_boxed_str()),
        Dialect::Postgres,
        false,
    ) {
        effect @ Effect::Writes(_) => effect,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_statement_never_swallows_the_next_one() {
    // Each head ends at its own `;`: what follows is a statement of its own.
    for first in [
        "ALTER TABLE posts ADD COLUMN a INT",
        "ALTER TABLE posts RENAME TO articles",
        "DROP INDEX posts_title",
        "SET autocommit = 0",
        "SET search_path TO app",
        "SAVEPOINT",
        "EXPLAIN (ANALYZE",
        "WITH x AS (SELECT 1; UPDATE",
    ] {
        for dialect in [
            Dialect::Postgres,
            Dialect::Sqlite,
            Dialect::Mysql,
            Dialect::Any,
        ] {
            let sql = format!("{first}; UPDATE users SET a = 1");
            let parts: Vec<_> = statements(&sql, dialect, false).map(|s| s.effect).collect();
            assert!(
                parts.iter().any(
                    |e| matches!(e, Effect::Writes(t) if t.as_slice() == ["users"])
                        || matches!(e, Effect::WritesUnknown | Effect::UnknownControl)
                ),
                "{dialect:?} {sql:?}: {parts:?}"
            );
            let sql = format!("{first}; COMMIT");
            let parts: Vec<_> = statements(&sql, dialect, false).map(|s| s.effect).collect();
            assert!(
                parts
                    .iter()
                    .any(|e| matches!(e, Effect::Commit { .. } | Effect::UnknownControl)),
                "{dialect:?} {sql:?}: {parts:?}"
            );
        }
    }
    let pg: Vec<_> = statements(
        "ALTER TABLE users ADD COLUMN a INT",
        Dialect::Postgres,
        false,
    )
    .map(|s| s.commits_first)
    .collect();
    assert_eq!(pg, [false], "PostgreSQL's DDL is transactional");
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

    fn check(backend: &str, dialect: Dialect, corpus: Vec<(String, Option<&[&str]>)>) {
        for (sql, expected) in corpus {
            match expected {
                Some(tables) => {
                    let got = writes_in(&sql, dialect)
                        .unwrap_or_else(|| panic!("{backend}: {sql:?} tables should be known"));
                    assert_eq!(got, tables, "{backend}: {sql}");
                }
                None => {
                    let effect = classify(&sql, dialect, true);
                    assert!(!effect.is_write(), "{backend}: {sql} is a read");
                    assert!(
                        matches!(effect, Effect::Reads(t) if !t.as_slice().is_empty()),
                        "{backend}: {sql} reads tables"
                    );
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
        check("sqlite", Dialect::Sqlite, corpus);
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
        check("postgres", Dialect::Postgres, corpus);
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
        check("mysql", Dialect::Mysql, corpus);
    }
}
