//! Regressions of Contract 1 ("a cached read is never staler than the last
//! committed write") on a real MariaDB server (see `common/mariadb.rs`), each
//! one a MySQL rule the transaction tracking or the statement classifier
//! must follow: `autocommit`, `#` and `--` comments, backslash escapes,
//! executable comments, implicit commits, procedures, failed statements and
//! a pooled session returned inside a raw transaction. Public API only:
//! cached functions, instrumented connections, `dbkit::Pool`, diesel, raw
//! SQL.
//!
//! Every test has its own database, table and cached function. A cached read
//! on another connection is compared with what the database itself says to
//! that connection (its committed value: InnoDB never shows another
//! connection's uncommitted rows), after every step that matters. Where the
//! writing connection reads through the cache while its own write is still
//! uncommitted, the next check on the reader catches an uncommitted value
//! that was stored for everyone.

mod common;

use common::mariadb::server;
use common::regress::{assert_not_stale, set_value, table_schema, value};
use common::Statements;
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// A fresh database holding the test's table (one row, `v = 0`) and `extra`
/// SQL (run by a connection dbkit does not track).
fn database(table: &str, extra: &str) -> String {
    let url = server().fresh_database();
    plain(&url)
        .batch_execute(&format!("{} {extra}", table_schema(table)))
        .expect("schema");
    url
}

/// A connection with dbkit's instrumentation.
fn instrumented(url: &str) -> MysqlConnection {
    let mut conn = plain(url);
    dbkit::instrument(&mut conn);
    conn
}

/// A connection with dbkit's instrumentation that counts its statements.
fn counted(url: &str) -> (MysqlConnection, Statements) {
    let mut conn = plain(url);
    let statements = Statements::default();
    dbkit::Instrument::new()
        .wrapping(statements.instrumentation())
        .install(&mut conn);
    (conn, statements)
}

/// A connection dbkit knows nothing of.
fn plain(url: &str) -> MysqlConnection {
    MysqlConnection::establish(url).expect("connect")
}

/// A cached read on `conn`, checked against what the database says to that
/// same connection right after; returns the value.
#[track_caller]
fn assert_fresh(
    read: fn(&mut MysqlConnection) -> QueryResult<i32>,
    conn: &mut MysqlConnection,
    table: &str,
    what: &str,
) -> i32 {
    let cached = read(conn).expect("cached read");
    let database = value(conn, table).expect("database read");
    assert_not_stale(cached, database, what);
    cached
}

/// What the database holds, committed, read by a connection of its own.
fn committed(url: &str, table: &str) -> i32 {
    value(&mut plain(url), table).expect("database read")
}

// Some of these tests invalidate every table (a write whose tables are
// unknown), which would hide another test's stale entry: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------
// 1. autocommit

#[cached_query(ttl = 300, tables = "rm_autocommit_off")]
fn autocommit_off_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_autocommit_off")
}

/// `SET autocommit = 0` makes every later statement part of a transaction:
/// an UPDATE is not committed when it returns, but at the next COMMIT; and
/// `SET autocommit = 1` commits the open transaction. Taken for autocommit
/// writes, they would be bumped at their statement's end, a reader would
/// then store the old value with a newer stamp, and the COMMIT would bump
/// nothing.
/// 1. reader caches v = 0;
/// 2. writer: `SET autocommit = 0`, `UPDATE v = 1`; writer's own cached read
///    (1, must not be stored); reader: 0;
/// 3. writer: `COMMIT`; reader: 1;
/// 4. writer: `UPDATE v = 2`; reader: 1; writer: `SET autocommit = 1`
///    (commits); reader: 2;
/// 5. writer: `UPDATE v = 3` (autocommit again); reader: 3.
#[test]
fn autocommit_off_writes_are_bumped_at_commit_and_at_autocommit_on() {
    let _serial = serial();
    const T: &str = "rm_autocommit_off";
    let read = autocommit_off_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_eq!(assert_fresh(read, &mut reader, T, "before any write"), 0);

    writer.batch_execute("SET autocommit = 0").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    assert_eq!(
        assert_fresh(read, &mut writer, T, "the writer reads its own write"),
        1
    );
    assert_eq!(committed(&url, T), 0, "setup: autocommit is off");
    assert_fresh(
        read,
        &mut reader,
        T,
        "UPDATE under autocommit = 0, not committed yet (an uncommitted value stored?)",
    );

    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(
        assert_fresh(read, &mut reader, T, "COMMIT under autocommit = 0"),
        1
    );

    set_value(&mut writer, T, 2).unwrap();
    assert_fresh(
        read,
        &mut reader,
        T,
        "a second UPDATE under autocommit = 0, not committed yet",
    );
    writer.batch_execute("SET autocommit = 1").unwrap();
    assert_eq!(
        assert_fresh(
            read,
            &mut reader,
            T,
            "SET autocommit = 1 commits the open transaction"
        ),
        2
    );

    set_value(&mut writer, T, 3).unwrap();
    assert_eq!(
        assert_fresh(read, &mut reader, T, "an autocommit UPDATE afterwards"),
        3
    );
}

#[cached_query(ttl = 300, tables = "rm_session_autocommit")]
fn session_autocommit_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_session_autocommit")
}

/// The same with `SET @@session.autocommit := OFF` / `:= ON` (a qualified
/// system variable and the `:=` assignment).
#[test]
fn session_autocommit_assignment_to_off_makes_writes_transactional() {
    let _serial = serial();
    const T: &str = "rm_session_autocommit";
    let read = session_autocommit_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");

    writer
        .batch_execute("SET @@session.autocommit := OFF")
        .unwrap();
    set_value(&mut writer, T, 1).unwrap();
    assert_eq!(read(&mut writer).unwrap(), 1, "setup: its own write");
    assert_eq!(committed(&url, T), 0, "setup: autocommit is off");
    assert_fresh(
        read,
        &mut reader,
        T,
        "UPDATE under @@session.autocommit := OFF, not committed yet",
    );

    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(
        assert_fresh(read, &mut reader, T, "COMMIT under autocommit OFF"),
        1
    );

    set_value(&mut writer, T, 2).unwrap();
    assert_fresh(read, &mut reader, T, "second UPDATE, not committed yet");
    writer
        .batch_execute("SET @@session.autocommit := ON")
        .unwrap();
    assert_eq!(
        assert_fresh(
            read,
            &mut reader,
            T,
            "SET @@session.autocommit := ON commits"
        ),
        2
    );
}

#[cached_query(ttl = 300, tables = "rm_autocommit_batch")]
fn autocommit_batch_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_autocommit_batch")
}

/// `SET autocommit = 0; UPDATE ..` in one batch: the UPDATE is the second
/// statement of the text, uncommitted when the batch returns. Read as part
/// of the `SET` (the `SET` reading on past its `;`), it is never marked:
/// the reader stores the old value and the COMMIT bumps nothing.
/// 1. reader caches v = 0;
/// 2. writer: `SET autocommit = 0; UPDATE v = 1`; reader: 0;
/// 3. writer: `COMMIT`; reader: 1.
#[test]
fn update_in_the_batch_that_turns_autocommit_off_is_held_until_commit() {
    let _serial = serial();
    const T: &str = "rm_autocommit_batch";
    let read = autocommit_batch_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer
        .batch_execute(&format!(
            "SET autocommit = 0; UPDATE {T} SET v = 1 WHERE id = 1"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 0, "setup: autocommit is off");
    assert_fresh(
        read,
        &mut reader,
        T,
        "SET autocommit = 0; UPDATE .. in one batch, not committed",
    );
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(
        assert_fresh(
            read,
            &mut reader,
            T,
            "COMMIT of SET autocommit = 0; UPDATE .."
        ),
        1
    );
}

#[cached_query(ttl = 300, tables = "rm_set_names_batch")]
fn set_names_batch_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_set_names_batch")
}

/// Beyond the list: any `SET` followed by a write in the same batch
/// (`SET NAMES utf8mb4; UPDATE ..`, as connection setup code sends them):
/// the UPDATE is a write.
#[test]
fn update_after_a_set_in_the_same_batch_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_set_names_batch";
    let read = set_names_batch_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer
        .batch_execute(&format!(
            "SET NAMES utf8mb4; UPDATE {T} SET v = 1 WHERE id = 1"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the UPDATE ran");
    assert_fresh(read, &mut reader, T, "SET NAMES utf8mb4; UPDATE ..");
}

#[cached_query(ttl = 300, tables = "rm_autocommit_variable")]
fn autocommit_variable_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_autocommit_variable")
}

/// Beyond the list: `SET autocommit = @on` sets a value dbkit cannot read
/// (here 1: autocommit stays on). Taken for "off, uncertain" until the next
/// COMMIT and for a certain "off" after it, the next UPDATE (autocommitted
/// by the server) is held as uncommitted, and a ROLLBACK (a no-op) releases
/// it without a bump.
/// 1. reader caches v = 0;
/// 2. writer: `SET @on = 1`, `SET autocommit = @on`, `COMMIT`,
///    `UPDATE v = 1`, `ROLLBACK`;
/// 3. reader: 1.
#[test]
fn autocommit_set_from_a_variable_makes_a_later_rollback_look_certain() {
    let _serial = serial();
    const T: &str = "rm_autocommit_variable";
    let read = autocommit_variable_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("SET @on = 1").unwrap();
    writer.batch_execute("SET autocommit = @on").unwrap();
    writer.batch_execute("COMMIT").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: autocommit stayed on");
    assert_fresh(
        read,
        &mut reader,
        T,
        "SET autocommit = @on; COMMIT; UPDATE; ROLLBACK",
    );
}

// ---------------------------------------------------------------------------
// 2. `#` comments

#[cached_query(ttl = 300, tables = "rm_hash_comment")]
fn hash_comment_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_hash_comment")
}

/// `#` starts a comment in MySQL that ends at the newline: the UPDATE on the
/// next line runs. The second batch hides it from a reader that took `#`
/// for anything else (an operator): the quote in the comment would then
/// open a string that swallows the UPDATE.
#[test]
fn update_on_the_line_after_a_hash_comment_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_hash_comment";
    let read = hash_comment_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");

    writer
        .batch_execute(&format!(
            "SELECT 1 # comment\n; UPDATE {T} SET v = 1 WHERE id = 1"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the UPDATE ran");
    assert_fresh(read, &mut reader, T, "UPDATE on the line after a # comment");

    writer
        .batch_execute(&format!(
            "SELECT 1 # it's\n; UPDATE {T} SET v = 2 WHERE id = 1; SELECT 'c' # '"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 2, "setup: the UPDATE ran");
    assert_fresh(
        read,
        &mut reader,
        T,
        "UPDATE after a # comment holding a quote",
    );
}

#[cached_query(ttl = 300, tables = "rm_hash_no_write")]
fn hash_no_write_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_hash_no_write")
}

/// An UPDATE inside a `#` comment does not run: the cached read stays
/// right, and (precision, not freshness) stays cached.
#[test]
fn update_inside_a_hash_comment_is_no_write() {
    let _serial = serial();
    const T: &str = "rm_hash_no_write";
    let read = hash_no_write_value;
    let url = database(T, "");
    let (mut reader, statements) = counted(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any statement");

    for sql in [
        format!("SELECT 1; # UPDATE {T} SET v = 1 WHERE id = 1"),
        format!("SELECT 1 # ; UPDATE {T} SET v = 2 WHERE id = 1"),
    ] {
        writer.batch_execute(&sql).unwrap();
        assert_eq!(committed(&url, T), 0, "setup: nothing ran: {sql:?}");
        let (cached, ran) = statements.reached(|| read(&mut reader).unwrap());
        assert_not_stale(cached, committed(&url, T), &sql);
        assert!(
            !ran,
            "a commented-out UPDATE invalidated the table: {sql:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 3. `--` without a space

#[cached_query(ttl = 300, tables = "rm_double_dash")]
fn double_dash_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_double_dash")
}

/// MySQL wants a space after `--` for a comment: `1--1` is `1 - -1`, and the
/// UPDATE after it on the same line runs. Read as a comment, the rest of the
/// line (the UPDATE) would be skipped.
#[test]
fn update_after_double_dash_arithmetic_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_double_dash";
    let read = double_dash_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");

    writer
        .batch_execute(&format!("SELECT 1--1; UPDATE {T} SET v = 1 WHERE id = 1"))
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the UPDATE ran");
    assert_fresh(read, &mut reader, T, "SELECT 1--1; UPDATE ...");
}

// ---------------------------------------------------------------------------
// 4. backslash escapes and executable comments

#[cached_query(ttl = 300, tables = "rm_backslash")]
fn backslash_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_backslash")
}

/// MySQL reads `\'` inside a string as an escaped quote: `'it\'s'` is one
/// string and the UPDATE after it runs. Read by standard SQL rules the
/// string would end at `\'`, and the second batch's trailing `# '` would
/// close a string that swallowed the UPDATE.
#[test]
fn update_after_a_backslash_escaped_quote_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_backslash";
    let read = backslash_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");

    writer
        .batch_execute(&format!(
            "SELECT 'it\\'s'; UPDATE {T} SET v = 1 WHERE id = 1"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the UPDATE ran");
    assert_fresh(read, &mut reader, T, r"SELECT 'it\'s'; UPDATE ...");

    writer
        .batch_execute(&format!(
            "SELECT 'it\\'s'; UPDATE {T} SET v = 2 WHERE id = 1 # '"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 2, "setup: the UPDATE ran");
    assert_fresh(read, &mut reader, T, r"SELECT 'it\'s'; UPDATE ... # '");
}

#[cached_query(ttl = 300, tables = "rm_no_backslash_escapes")]
fn no_backslash_escapes_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_no_backslash_escapes")
}

/// Under `sql_mode = NO_BACKSLASH_ESCAPES` the same text reads the other
/// way: `'a\'` is a whole string and the UPDATE after it runs; read with
/// escapes, the UPDATE would be inside a string.
#[test]
fn update_after_a_backslash_under_no_backslash_escapes_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_no_backslash_escapes";
    let read = no_backslash_escapes_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");

    writer
        .batch_execute("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
        .unwrap();
    writer
        .batch_execute(&format!(
            "SELECT 'a\\'; UPDATE {T} SET v = 1 WHERE id = 1 # '"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the UPDATE ran");
    assert_fresh(
        read,
        &mut reader,
        T,
        r"SELECT 'a\'; UPDATE ... under NO_BACKSLASH_ESCAPES",
    );
}

#[cached_query(ttl = 300, tables = "rm_executable_comment")]
fn executable_comment_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_executable_comment")
}

/// MySQL runs the text of `/*! .. */` (and `/*!50000 .. */`, MariaDB's
/// `/*M! .. */`) as SQL: an UPDATE inside one is a write.
#[test]
fn update_inside_an_executable_comment_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_executable_comment";
    let read = executable_comment_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");

    let texts = [
        format!("/*! UPDATE {T} SET v = 1 WHERE id = 1 */"),
        format!("SELECT 1; /*!50000 UPDATE {T} SET v = 2 WHERE id = 1 */"),
        format!("/*M! UPDATE {T} SET v = 3 WHERE id = 1 */"),
    ];
    for (sql, expected) in texts.iter().zip(1..) {
        writer.batch_execute(sql).unwrap();
        assert_eq!(committed(&url, T), expected, "setup: {sql:?} ran");
        assert_fresh(read, &mut reader, T, sql);
    }
    diesel::sql_query(format!("/*! UPDATE {T} SET v = 4 WHERE id = 1 */"))
        .execute(&mut writer)
        .unwrap();
    assert_eq!(committed(&url, T), 4, "setup: the sql_query ran");
    assert_fresh(read, &mut reader, T, "sql_query(/*! UPDATE .. */)");
}

#[cached_query(ttl = 300, tables = "rm_hidden_begin")]
fn hidden_begin_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_hidden_begin")
}

/// Beyond the list: text dbkit cannot read (an executable comment, a
/// literal that reads differently with and without backslash escapes) may
/// hide transaction control, not only writes. `START TRANSACTION` inside
/// `/*! */` opens a transaction; taken for a mere write of unknown tables,
/// the UPDATE after it counts as committed at its statement's end.
/// 1. reader caches v = 0;
/// 2. writer: `/*! START TRANSACTION */`, `UPDATE v = 1`; writer's own cached
///    read (1, must not be stored); reader: 0;
/// 3. writer: `COMMIT`; reader: 1.
///
/// The same with `SELECT 'it\'s'; START TRANSACTION`.
#[test]
fn transaction_opened_inside_unreadable_text_is_never_seen() {
    let _serial = serial();
    const T: &str = "rm_hidden_begin";
    let read = hidden_begin_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    for (opening, v) in [
        ("/*! START TRANSACTION */", 1),
        ("SELECT 'it\\'s'; START TRANSACTION", 2),
    ] {
        assert_fresh(read, &mut reader, T, "before the transaction");
        writer.batch_execute(opening).unwrap();
        set_value(&mut writer, T, v).unwrap();
        assert_eq!(
            read(&mut writer).unwrap(),
            v,
            "setup: the writer reads its own write"
        );
        assert_eq!(committed(&url, T), v - 1, "setup: {opening:?} opened one");
        assert_fresh(
            read,
            &mut reader,
            T,
            &format!("UPDATE after {opening:?}, not committed yet"),
        );
        writer.batch_execute("COMMIT").unwrap();
        assert_fresh(
            read,
            &mut reader,
            T,
            &format!("COMMIT of the transaction {opening:?} opened"),
        );
    }
}

#[cached_query(ttl = 300, tables = "rm_hidden_commit")]
fn hidden_commit_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_hidden_commit")
}

/// Beyond the list: `/*! COMMIT */` commits; taken for a write of unknown
/// tables inside the transaction, the later ROLLBACK counts as certain and
/// releases the committed UPDATE without a bump.
/// 1. reader caches v = 0;
/// 2. writer: `BEGIN`, `UPDATE v = 1`, `/*! COMMIT */`, `ROLLBACK` (a no-op);
/// 3. reader: 1.
#[test]
fn commit_inside_an_executable_comment_then_rollback_releases_without_a_bump() {
    let _serial = serial();
    const T: &str = "rm_hidden_commit";
    let read = hidden_commit_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer.batch_execute("/*! COMMIT */").unwrap();
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: /*! COMMIT */ committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "BEGIN; UPDATE; /*! COMMIT */; ROLLBACK",
    );
}

// ---------------------------------------------------------------------------
// 5. implicit commits

#[cached_query(ttl = 300, tables = "rm_alter_commits")]
fn alter_commits_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_alter_commits")
}

/// DDL commits the open transaction before it runs. Missed, the UPDATE
/// would stay held until the next COMMIT or ROLLBACK, and that ROLLBACK
/// (a no-op on the server by then) would release it without a bump.
/// 1. reader caches v = 0;
/// 2. writer: `BEGIN`, `UPDATE v = 1`; reader: 0;
/// 3. writer: `ALTER TABLE <another table> ...`; reader: 1 at once;
/// 4. writer: `ROLLBACK`; reader: 1;
/// 5. again with nothing read in between (a read while the write is held
///    stores the committed value, which hides a release without a bump):
///    `BEGIN`, `UPDATE v = 2`, `ALTER TABLE ..`, `ROLLBACK`; reader: 2.
#[test]
fn alter_table_inside_a_transaction_commits_it() {
    let _serial = serial();
    const T: &str = "rm_alter_commits";
    let read = alter_commits_value;
    let url = database(
        T,
        "CREATE TABLE rm_alter_other (id INTEGER PRIMARY KEY) ENGINE = InnoDB;",
    );
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    assert_fresh(read, &mut reader, T, "UPDATE inside BEGIN, not committed");

    writer
        .batch_execute("ALTER TABLE rm_alter_other ADD COLUMN c INTEGER")
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the ALTER committed");
    assert_fresh(read, &mut reader, T, "right after ALTER TABLE returned");

    writer.batch_execute("ROLLBACK").unwrap();
    assert_fresh(
        read,
        &mut reader,
        T,
        "ROLLBACK after ALTER TABLE (nothing left to roll back)",
    );

    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 2).unwrap();
    writer
        .batch_execute("ALTER TABLE rm_alter_other ADD COLUMN d INTEGER")
        .unwrap();
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(committed(&url, T), 2, "setup: the ALTER committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "BEGIN; UPDATE; ALTER TABLE; ROLLBACK, nothing read in between",
    );
}

#[cached_query(ttl = 300, tables = "rm_alter_batch")]
fn alter_batch_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_alter_batch")
}

/// `ALTER TABLE <another table> ..; UPDATE ..` in one batch: the UPDATE
/// after the DDL is a write of its own (read as part of the ALTER, only the
/// altered table would be invalidated).
#[test]
fn update_after_alter_table_in_the_same_batch_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_alter_batch";
    let read = alter_batch_value;
    let url = database(
        T,
        "CREATE TABLE rm_alter_batch_other (id INTEGER PRIMARY KEY) ENGINE = InnoDB;",
    );
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer
        .batch_execute(&format!(
            "ALTER TABLE rm_alter_batch_other ADD COLUMN c INTEGER; \
             UPDATE {T} SET v = 1 WHERE id = 1"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the UPDATE ran");
    assert_fresh(
        read,
        &mut reader,
        T,
        "ALTER TABLE ..; UPDATE .. in one batch",
    );
}

#[cached_query(ttl = 300, tables = "rm_create_commits")]
fn create_commits_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_create_commits")
}

/// The same with `CREATE TABLE` (steps 1 to 5).
#[test]
fn create_table_inside_a_transaction_commits_it() {
    let _serial = serial();
    const T: &str = "rm_create_commits";
    let read = create_commits_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    assert_fresh(read, &mut reader, T, "UPDATE inside BEGIN, not committed");

    writer
        .batch_execute("CREATE TABLE rm_create_new (id INTEGER PRIMARY KEY)")
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the CREATE committed");
    assert_fresh(read, &mut reader, T, "right after CREATE TABLE returned");

    writer.batch_execute("ROLLBACK").unwrap();
    assert_fresh(read, &mut reader, T, "ROLLBACK after CREATE TABLE");

    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 2).unwrap();
    writer
        .batch_execute("CREATE TABLE rm_create_newer (id INTEGER PRIMARY KEY)")
        .unwrap();
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(committed(&url, T), 2, "setup: the CREATE committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "BEGIN; UPDATE; CREATE TABLE; ROLLBACK, nothing read in between",
    );
}

#[cached_query(ttl = 300, tables = "rm_second_begin")]
fn second_begin_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_second_begin")
}

/// A `BEGIN` inside a transaction commits it first (MySQL), and opens
/// another: a write in the second one rolled back leaves the first one's.
/// 1. reader caches v = 0;
/// 2. writer: `BEGIN`, `UPDATE v = 1`; reader: 0;
/// 3. writer: `BEGIN`; reader: 1 at once;
/// 4. writer: `UPDATE v = 2`; reader: 1; writer: `ROLLBACK`; reader: 1;
/// 5. again with nothing read in between: `BEGIN`, `UPDATE v = 3`,
///    `BEGIN`, `ROLLBACK`; reader: 3.
#[test]
fn second_begin_commits_the_open_transaction() {
    let _serial = serial();
    const T: &str = "rm_second_begin";
    let read = second_begin_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    assert_fresh(read, &mut reader, T, "UPDATE inside BEGIN, not committed");

    writer.batch_execute("BEGIN").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the second BEGIN committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "right after the second BEGIN returned",
    );

    set_value(&mut writer, T, 2).unwrap();
    assert_fresh(
        read,
        &mut reader,
        T,
        "UPDATE in the second transaction, not committed",
    );
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the second one rolled back");
    assert_fresh(read, &mut reader, T, "ROLLBACK of the second transaction");

    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 3).unwrap();
    writer.batch_execute("BEGIN").unwrap();
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(committed(&url, T), 3, "setup: the second BEGIN committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "BEGIN; UPDATE; BEGIN; ROLLBACK, nothing read in between",
    );
}

#[cached_query(ttl = 300, tables = "rm_temporary_table")]
fn temporary_table_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_temporary_table")
}

/// Beyond the list: `CREATE TEMPORARY TABLE` (and `DROP TEMPORARY TABLE`)
/// do *not* commit the open transaction. Taken for an implicit commit, the
/// UPDATE is bumped and released while still uncommitted; a reader stores
/// the old value with a newer stamp and the real COMMIT bumps nothing.
/// 1. reader caches v = 0;
/// 2. writer: `BEGIN`, `UPDATE v = 1`, `CREATE TEMPORARY TABLE ..`;
///    reader: 0 (stored);
/// 3. writer: `COMMIT`; reader: 1.
#[test]
fn create_temporary_table_is_taken_for_an_implicit_commit() {
    let _serial = serial();
    const T: &str = "rm_temporary_table";
    let read = temporary_table_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer
        .batch_execute("CREATE TEMPORARY TABLE rm_scratch (id INTEGER)")
        .unwrap();
    assert_eq!(
        committed(&url, T),
        0,
        "setup: CREATE TEMPORARY TABLE does not commit"
    );
    assert_fresh(
        read,
        &mut reader,
        T,
        "UPDATE inside BEGIN after CREATE TEMPORARY TABLE, not committed",
    );
    writer.batch_execute("COMMIT").unwrap();
    assert_fresh(
        read,
        &mut reader,
        T,
        "COMMIT of a transaction that created a temporary table",
    );
}

#[cached_query(ttl = 300, tables = "rm_unlock_tables")]
fn unlock_tables_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_unlock_tables")
}

/// Beyond the list: `UNLOCK TABLES` commits only when `LOCK TABLES` holds
/// locks; without, the transaction goes on (as above).
#[test]
fn unlock_tables_without_locks_is_taken_for_an_implicit_commit() {
    let _serial = serial();
    const T: &str = "rm_unlock_tables";
    let read = unlock_tables_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer.batch_execute("UNLOCK TABLES").unwrap();
    assert_eq!(
        committed(&url, T),
        0,
        "setup: UNLOCK TABLES without locks does not commit"
    );
    assert_fresh(
        read,
        &mut reader,
        T,
        "UPDATE inside BEGIN after UNLOCK TABLES, not committed",
    );
    writer.batch_execute("COMMIT").unwrap();
    assert_fresh(
        read,
        &mut reader,
        T,
        "COMMIT of a transaction that ran UNLOCK TABLES",
    );
}

#[cached_query(ttl = 300, tables = "rm_set_password")]
fn set_password_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_set_password")
}

/// Beyond the list: `SET PASSWORD` commits the open transaction (as account
/// management does). Missed, the later ROLLBACK (a no-op) counts as certain
/// and releases the committed UPDATE without a bump.
/// 1. reader caches v = 0;
/// 2. writer: `BEGIN`, `UPDATE v = 1`, `SET PASSWORD ..`, `ROLLBACK`;
/// 3. reader: 1.
#[test]
fn set_password_commits_and_the_later_rollback_releases_without_a_bump() {
    let _serial = serial();
    const T: &str = "rm_set_password";
    let read = set_password_value;
    let url = database(T, "CREATE USER IF NOT EXISTS rm_pw_user@'%';");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer
        .batch_execute("SET PASSWORD FOR rm_pw_user@'%' = PASSWORD('secret')")
        .unwrap();
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: SET PASSWORD committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "BEGIN; UPDATE; SET PASSWORD; ROLLBACK",
    );
}

// ---------------------------------------------------------------------------
// 6. procedures

#[cached_query(ttl = 300, tables = "rm_call_commit")]
fn call_commit_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_call_commit")
}

/// A procedure that starts a transaction and leaves it open: its UPDATE is
/// uncommitted when `CALL` returns and commits at the caller's next
/// `COMMIT`. dbkit cannot see inside the procedure, so until that
/// transaction is seen to end it must hold every table it may have written.
/// 1. reader caches v = 0;
/// 2. writer: `CALL p()`; reader: 0;
/// 3. writer: `COMMIT`; reader: 1.
#[test]
fn call_leaving_a_transaction_open_is_not_bumped_at_its_commit() {
    let _serial = serial();
    const T: &str = "rm_call_commit";
    let read = call_commit_value;
    let url = database(
        T,
        &format!(
            "CREATE PROCEDURE rm_open_tx() BEGIN START TRANSACTION; \
             UPDATE {T} SET v = 1 WHERE id = 1; END"
        ),
    );
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("CALL rm_open_tx()").unwrap();
    assert_eq!(committed(&url, T), 0, "setup: the procedure left it open");
    assert_fresh(
        read,
        &mut reader,
        T,
        "CALL left a transaction open, not committed",
    );
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "COMMIT of the transaction a CALL left open",
    );
}

#[cached_query(ttl = 300, tables = "rm_call_rollback")]
fn call_rollback_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_call_rollback")
}

/// The same procedure, its transaction rolled back: reads show the old
/// value (nothing uncommitted was stored meanwhile).
#[test]
fn call_leaving_a_transaction_open_then_rollback_shows_the_old_value() {
    let _serial = serial();
    const T: &str = "rm_call_rollback";
    let read = call_rollback_value;
    let url = database(
        T,
        &format!(
            "CREATE PROCEDURE rm_open_tx() BEGIN START TRANSACTION; \
             UPDATE {T} SET v = 1 WHERE id = 1; END"
        ),
    );
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("CALL rm_open_tx()").unwrap();
    assert_fresh(
        read,
        &mut reader,
        T,
        "CALL left a transaction open, not committed",
    );
    writer.batch_execute("ROLLBACK").unwrap();
    assert_eq!(committed(&url, T), 0, "setup: rolled back");
    assert_eq!(
        assert_fresh(
            read,
            &mut reader,
            T,
            "ROLLBACK of the transaction a CALL left open"
        ),
        0
    );
}

#[cached_query(ttl = 300, tables = "rm_call_own_read")]
fn call_own_read_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_call_own_read")
}

/// Beyond the list (Contract 1's "the transaction must see its own
/// writes"): after the same `CALL`, a cached read on the calling connection
/// is served what another connection cached meanwhile (the committed value),
/// not the procedure's write its own transaction sees.
/// 1. writer: `CALL p()`; reader caches v = 0 (committed);
/// 2. writer: cached read, checked against what the writer's own
///    transaction sees (1).
#[test]
fn call_leaving_a_transaction_open_serves_the_caller_the_committed_value() {
    let _serial = serial();
    const T: &str = "rm_call_own_read";
    let read = call_own_read_value;
    let url = database(
        T,
        &format!(
            "CREATE PROCEDURE rm_open_tx() BEGIN START TRANSACTION; \
             UPDATE {T} SET v = 1 WHERE id = 1; END"
        ),
    );
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    writer.batch_execute("CALL rm_open_tx()").unwrap();
    assert_eq!(
        assert_fresh(read, &mut reader, T, "another connection, after the CALL"),
        0
    );
    assert_fresh(
        read,
        &mut writer,
        T,
        "the caller, inside the transaction its CALL left open",
    );
    writer.batch_execute("ROLLBACK").unwrap();
}

#[cached_query(ttl = 300, tables = "rm_execute")]
fn execute_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_execute")
}

/// Beyond the list: `EXECUTE` of a prepared UPDATE is as opaque as `CALL`;
/// inside `BEGIN` its write must be held until the COMMIT.
/// 1. reader caches v = 0;
/// 2. writer: `PREPARE s FROM 'UPDATE ..'`, `BEGIN`, `EXECUTE s`; reader: 0;
/// 3. writer: `COMMIT`; reader: 1.
#[test]
fn execute_of_a_prepared_update_inside_a_transaction_is_not_bumped_at_commit() {
    let _serial = serial();
    const T: &str = "rm_execute";
    let read = execute_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer
        .batch_execute(&format!(
            "PREPARE rm_update FROM 'UPDATE {T} SET v = 1 WHERE id = 1'"
        ))
        .unwrap();
    writer.batch_execute("BEGIN").unwrap();
    writer.batch_execute("EXECUTE rm_update").unwrap();
    assert_fresh(
        read,
        &mut reader,
        T,
        "EXECUTE of an UPDATE inside BEGIN, not committed",
    );
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: committed");
    assert_fresh(read, &mut reader, T, "COMMIT after EXECUTE");
}

#[cached_query(ttl = 300, tables = "rm_call_autocommit")]
fn call_autocommit_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_call_autocommit")
}

/// Beyond the list: a procedure may turn `autocommit` off for the session.
/// dbkit takes the CALL for a transaction of unknown state that ends at the
/// next COMMIT; after it, writes are taken for autocommit ones, bumped at
/// their statement's end while the server keeps them uncommitted.
/// 1. reader caches v = 0;
/// 2. writer: `CALL p()` (`SET autocommit = 0`), `UPDATE v = 1`, `COMMIT`;
///    reader: 1;
/// 3. writer: `UPDATE v = 2`; reader: 1 (stored); writer: `COMMIT`;
///    reader: 2.
#[test]
fn procedure_turning_autocommit_off_leaves_later_writes_unbumped() {
    let _serial = serial();
    const T: &str = "rm_call_autocommit";
    let read = call_autocommit_value;
    let url = database(
        T,
        "CREATE PROCEDURE rm_autocommit_off() BEGIN SET autocommit = 0; END",
    );
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("CALL rm_autocommit_off()").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    writer.batch_execute("COMMIT").unwrap();
    assert_fresh(read, &mut reader, T, "the first COMMIT after the CALL");

    set_value(&mut writer, T, 2).unwrap();
    assert_eq!(
        committed(&url, T),
        1,
        "setup: the procedure turned autocommit off"
    );
    assert_fresh(
        read,
        &mut reader,
        T,
        "UPDATE under the procedure's autocommit = 0, not committed",
    );
    writer.batch_execute("COMMIT").unwrap();
    assert_fresh(read, &mut reader, T, "the second COMMIT after the CALL");
}

#[cached_query(ttl = 300, tables = "rm_procedure_body")]
fn procedure_body_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_procedure_body")
}

/// Beyond the list: the body of `CREATE PROCEDURE .. BEGIN ..; ..; END` is
/// one statement for the server, which only stores it. Split at its `;`,
/// its `SET autocommit = 0` is taken as run now: the next (autocommit)
/// UPDATE is held as if uncommitted, and a ROLLBACK releases it without a
/// bump.
/// 1. reader caches v = 0;
/// 2. writer: `CREATE PROCEDURE .. BEGIN DECLARE ..; SET autocommit = 0; END`,
///    `UPDATE v = 1` (committed), `ROLLBACK` (a no-op);
/// 3. reader: 1.
#[test]
fn create_procedure_body_is_read_as_statements_run_now() {
    let _serial = serial();
    const T: &str = "rm_procedure_body";
    let read = procedure_body_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer
        .batch_execute(
            "CREATE PROCEDURE rm_body() BEGIN DECLARE n INTEGER; SET autocommit = 0; END",
        )
        .unwrap();
    set_value(&mut writer, T, 1).unwrap();
    assert_eq!(committed(&url, T), 1, "setup: autocommit is still on");
    writer.batch_execute("ROLLBACK").unwrap();
    assert_fresh(
        read,
        &mut reader,
        T,
        "autocommit UPDATE after CREATE PROCEDURE, then ROLLBACK",
    );
}

#[cached_query(ttl = 300, tables = "rm_not_atomic")]
fn not_atomic_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_not_atomic")
}

/// Beyond the list: MariaDB's anonymous block `BEGIN NOT ATOMIC .. END`
/// runs its statements; it opens no transaction. Read as `BEGIN` .. `END`
/// (a transaction begun and committed), the UPDATE inside is never seen.
#[test]
fn update_inside_begin_not_atomic_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_not_atomic";
    let read = not_atomic_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer
        .batch_execute(&format!(
            "BEGIN NOT ATOMIC UPDATE {T} SET v = 1 WHERE id = 1; END"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the block ran");
    assert_fresh(read, &mut reader, T, "BEGIN NOT ATOMIC UPDATE ..; END");
}

#[cached_query(ttl = 300, tables = "rm_set_statement")]
fn set_statement_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_set_statement")
}

/// Beyond the list: MariaDB's `SET STATEMENT var = value FOR <statement>`
/// runs the statement: an UPDATE there is a write, not a `SET`.
#[test]
fn update_after_set_statement_for_is_a_write() {
    let _serial = serial();
    const T: &str = "rm_set_statement";
    let read = set_statement_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer
        .batch_execute(&format!(
            "SET STATEMENT max_statement_time = 60 FOR UPDATE {T} SET v = 1 WHERE id = 1"
        ))
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: the UPDATE ran");
    assert_fresh(read, &mut reader, T, "SET STATEMENT .. FOR UPDATE ..");
}

// ---------------------------------------------------------------------------
// 7. failed statements inside transactions

#[cached_query(ttl = 300, tables = "rm_dup_rollback")]
fn dup_rollback_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_dup_rollback")
}

/// diesel's `transaction()` whose closure fails on a duplicate key rolls
/// back: the UPDATE before it is undone, reads show the old value, and the
/// transaction's own cached read (its uncommitted write) was not stored.
#[test]
fn diesel_transaction_failing_on_a_duplicate_key_shows_the_old_value() {
    let _serial = serial();
    const T: &str = "rm_dup_rollback";
    let read = dup_rollback_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    let outcome: QueryResult<()> = writer.transaction(|c| {
        set_value(c, T, 1)?;
        assert_eq!(read(c)?, 1, "setup: the transaction sees its own write");
        assert_fresh(
            read,
            &mut reader,
            T,
            "UPDATE inside diesel's transaction, not committed",
        );
        diesel::sql_query(format!("INSERT INTO {T} VALUES (1, 2)")).execute(c)?;
        Ok(())
    });
    assert!(
        matches!(
            outcome,
            Err(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "setup: the duplicate key fails the closure: {outcome:?}"
    );
    assert_eq!(committed(&url, T), 0, "setup: rolled back");
    assert_eq!(
        assert_fresh(
            read,
            &mut reader,
            T,
            "diesel's rollback after a duplicate key"
        ),
        0
    );
}

#[cached_query(ttl = 300, tables = "rm_dup_commit_raw")]
fn dup_commit_raw_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_dup_commit_raw")
}

/// A statement that fails inside a raw transaction (a duplicate key: only
/// that statement is undone), then `COMMIT`: the UPDATE before it commits.
#[test]
fn failed_statement_inside_a_raw_transaction_then_commit_is_bumped() {
    let _serial = serial();
    const T: &str = "rm_dup_commit_raw";
    let read = dup_commit_raw_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer.batch_execute("BEGIN").unwrap();
    set_value(&mut writer, T, 1).unwrap();
    let dup = diesel::sql_query(format!("INSERT INTO {T} VALUES (1, 2)")).execute(&mut writer);
    assert!(dup.is_err(), "setup: duplicate key");
    assert_eq!(read(&mut writer).unwrap(), 1, "setup: its own write");
    assert_fresh(
        read,
        &mut reader,
        T,
        "UPDATE and a failed INSERT inside BEGIN, not committed",
    );
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: committed");
    assert_fresh(read, &mut reader, T, "COMMIT after a failed statement");
}

#[cached_query(ttl = 300, tables = "rm_dup_commit_diesel")]
fn dup_commit_diesel_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_dup_commit_diesel")
}

/// The same inside diesel's `transaction()`: the closure handles the
/// duplicate key and returns `Ok`, diesel commits.
#[test]
fn failed_statement_handled_inside_diesel_transaction_then_commit_is_bumped() {
    let _serial = serial();
    const T: &str = "rm_dup_commit_diesel";
    let read = dup_commit_diesel_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    writer
        .transaction(|c| {
            set_value(c, T, 1)?;
            let dup = diesel::sql_query(format!("INSERT INTO {T} VALUES (1, 2)")).execute(c);
            assert!(dup.is_err(), "setup: duplicate key");
            assert_eq!(read(c)?, 1, "setup: its own write");
            assert_fresh(
                read,
                &mut reader,
                T,
                "UPDATE and a failed INSERT inside diesel's transaction",
            );
            QueryResult::Ok(())
        })
        .unwrap();
    assert_eq!(committed(&url, T), 1, "setup: committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "diesel's COMMIT after a failed statement",
    );
}

#[cached_query(ttl = 300, tables = "rm_dup_batch")]
fn dup_batch_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_dup_batch")
}

/// `BEGIN; UPDATE; <duplicate key>; COMMIT` as one batch stops at the error:
/// the transaction stays open, its COMMIT never ran. Reads must neither
/// store the writer's uncommitted value nor stay old after the real COMMIT.
#[test]
fn batch_stopped_by_a_duplicate_key_keeps_its_transaction_open_until_commit() {
    let _serial = serial();
    const T: &str = "rm_dup_batch";
    let read = dup_batch_value;
    let url = database(T, "");
    let mut reader = instrumented(&url);
    let mut writer = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    let batch = writer.batch_execute(&format!(
        "BEGIN; UPDATE {T} SET v = 1 WHERE id = 1; INSERT INTO {T} VALUES (1, 2); COMMIT"
    ));
    assert!(batch.is_err(), "setup: the duplicate key stops the batch");
    assert_eq!(read(&mut writer).unwrap(), 1, "setup: its own write");
    assert_eq!(committed(&url, T), 0, "setup: still open");
    assert_fresh(
        read,
        &mut reader,
        T,
        "a batch stopped inside its transaction (uncommitted value stored?)",
    );
    writer.batch_execute("COMMIT").unwrap();
    assert_eq!(committed(&url, T), 1, "setup: committed");
    assert_fresh(
        read,
        &mut reader,
        T,
        "COMMIT of the transaction a stopped batch left open",
    );
}

// ---------------------------------------------------------------------------
// 8. a pooled session returned inside a raw transaction

#[cached_query(ttl = 300, tables = "rm_pool_raw_begin")]
fn pool_raw_begin_value(conn: &mut MysqlConnection) -> QueryResult<i32> {
    value(conn, "rm_pool_raw_begin")
}

/// A session of a `dbkit::Pool` that opened a transaction by raw SQL and
/// is dropped with it open: the pool rolls it back before the connection
/// goes back (the row holds its old value again) and cached reads are
/// fresh; the connection then autocommits for its next session.
#[test]
fn pool_rolls_back_a_raw_begin_left_open_and_reads_stay_fresh() {
    let _serial = serial();
    const T: &str = "rm_pool_raw_begin";
    let read = pool_raw_begin_value;
    let url = database(T, "");
    let pool = dbkit::Pool::<MysqlConnection>::builder()
        .max_size(1)
        .build(&url)
        .expect("pool");
    let mut reader = instrumented(&url);

    assert_fresh(read, &mut reader, T, "before any write");
    {
        let mut session = pool.get().expect("checkout");
        session
            .batch_execute(&format!("BEGIN; UPDATE {T} SET v = 1 WHERE id = 1"))
            .unwrap();
        assert_eq!(read(&mut session).unwrap(), 1, "setup: its own write");
        assert_fresh(
            read,
            &mut reader,
            T,
            "a session's raw transaction, not committed",
        );
    }
    assert_eq!(
        committed(&url, T),
        0,
        "the pool did not roll back the raw transaction the session left open"
    );
    assert_eq!(
        assert_fresh(
            read,
            &mut reader,
            T,
            "after the session went back to the pool"
        ),
        0
    );

    {
        let mut session = pool.get().expect("checkout");
        set_value(&mut *session, T, 2).unwrap();
    }
    assert_eq!(
        committed(&url, T),
        2,
        "the next session's write did not autocommit"
    );
    assert_fresh(
        read,
        &mut reader,
        T,
        "an autocommit write of the next session on the same connection",
    );
}
