//! The SQL classifier against SQLite itself: random texts that stress
//! lexing, run with `batch_execute`, and what SQLite did (did `t` change, is
//! a transaction left open) checked against the classifier's verdicts for
//! [`Dialect::Sqlite`] and `Dialect::Any`. See `common/classify_diff.rs`;
//! the PostgreSQL and MariaDB runs are
//! `classify_against_databases_{postgres,mysql}.rs`.

mod common;

use common::classify_diff::{self, checksum, Checksum, Database, CHECKSUM_SQL, ROWS};
use dbkit::Dialect;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

struct Sqlite {
    conn: SqliteConnection,
}

impl Sqlite {
    fn new() -> Sqlite {
        let mut conn = SqliteConnection::establish(":memory:").expect("open sqlite");
        conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
            .expect("create t");
        Sqlite { conn }
    }
}

impl Database for Sqlite {
    const NAME: &'static str = "SQLite";
    const CASES: u64 = 100_000;
    const DIALECT: Dialect = Dialect::Sqlite;

    fn reset(&mut self) -> Checksum {
        // "no transaction is active" is fine.
        let _ = self.conn.batch_execute("ROLLBACK");
        self.conn
            .batch_execute(&format!("DELETE FROM t; {ROWS}"))
            .expect("reset t");
        checksum(&mut self.conn, CHECKSUM_SQL).expect("checksum")
    }

    fn execute(&mut self, text: &str) -> Result<(), String> {
        self.conn.batch_execute(text).map_err(|e| e.to_string())
    }

    fn observe(&mut self) -> (Checksum, bool) {
        let sum = checksum(&mut self.conn, CHECKSUM_SQL).expect("checksum after");
        let open = match self.conn.batch_execute("BEGIN") {
            Ok(()) => {
                self.conn.batch_execute("ROLLBACK").expect("end the probe");
                false
            }
            Err(e) if e.to_string().contains("within a transaction") => true,
            Err(e) => panic!("probing for a transaction: {e}"),
        };
        (sum, open)
    }
}

/// Counterexamples found before, run first on every run.
const KNOWN: &[&str] = &[
    // SQLite skips a vertical tab as whitespace (after whitespace, or
    // between statements); the lexer reads a token.
    "SELECT 1;\x0bBEGIN",
    " \x0bSAVEPOINT x",
    // A Tcl-style parameter `:a(...)` runs to the `)`, over `--` and `'`.
    "SELECT :a(--);DELETE FROM t",
    "SELECT $a(') ;DELETE FROM t;SELECT '",
    "SELECT @a(/*);DELETE FROM t;SELECT 1 -- */",
];

#[test]
fn sqlite_does_what_the_classifier_says() {
    classify_diff::run(&mut Sqlite::new(), KNOWN);
}
