//! The SQL classifier against MariaDB itself (a throwaway server, see
//! `common/mariadb.rs`): random texts that stress lexing, run with
//! `batch_execute`, and what the server did (did `t` change, is a
//! transaction left open) checked against the classifier's verdicts for
//! [`Dialect::Mysql`] and `Dialect::Any`. See `common/classify_diff.rs`.

mod common;

use common::classify_diff::{self, checksum, Checksum, Database, ROWS};
use common::mariadb::server;
use dbkit::Dialect;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// SUM is DECIMAL in MySQL: cast to BIGINT.
const CHECKSUM_SQL: &str = "SELECT CAST(count(*) AS SIGNED) AS n, \
     CAST(coalesce(sum(v), 0) AS SIGNED) AS s, CAST(coalesce(sum(id * v), 0) AS SIGNED) AS w \
     FROM t";

#[derive(QueryableByName)]
struct InTransaction {
    #[diesel(sql_type = BigInt)]
    open: i64,
}

struct Mariadb {
    url: String,
    conn: MysqlConnection,
}

impl Mariadb {
    fn new() -> Mariadb {
        let url = server().fresh_database();
        let mut conn = MysqlConnection::establish(&url).expect("connect");
        conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER) ENGINE = InnoDB")
            .expect("create t");
        Mariadb { url, conn }
    }
}

impl Database for Mariadb {
    const NAME: &'static str = "MariaDB";
    const DIALECT: Dialect = Dialect::Mysql;
    const CASES: u64 = 15_000;

    fn reset(&mut self) -> Checksum {
        let reset = format!("ROLLBACK; DELETE FROM t; {ROWS}");
        if self.conn.batch_execute(&reset).is_err() {
            // A connection a text broke: start over on a new one.
            self.conn = MysqlConnection::establish(&self.url).expect("reconnect");
            self.conn.batch_execute(&reset).expect("reset t");
        }
        checksum(&mut self.conn, CHECKSUM_SQL).expect("checksum")
    }

    fn execute(&mut self, text: &str) -> Result<(), String> {
        self.conn.batch_execute(text).map_err(|e| e.to_string())
    }

    fn observe(&mut self) -> (Checksum, bool) {
        let sum = checksum(&mut self.conn, CHECKSUM_SQL).expect("checksum after");
        let open = diesel::sql_query("SELECT CAST(@@in_transaction AS SIGNED) AS open")
            .get_result::<InTransaction>(&mut self.conn)
            .expect("@@in_transaction")
            .open;
        (sum, open != 0)
    }
}

/// Counterexamples found before, run first on every run.
const KNOWN: &[&str] = &[
    // Compound statements run outside stored programs; their END is no COMMIT.
    "BEGIN NOT ATOMIC UPDATE t SET v = v + 1; END",
    "IF 1 THEN START TRANSACTION; END IF",
    "START TRANSACTION; CASE WHEN 1 THEN DELETE FROM t; END CASE",
    "REPEAT COMMIT AND CHAIN; UNTIL 1 END REPEAT",
    // `--` before DEL (a control character) starts a comment.
    "SELECT 1 --\x7f '\n;DELETE FROM t;SELECT '",
    "--\x7f\nCOMMIT AND CHAIN",
    "--\x7f;COMMIT AND CHAIN",
    // `SET STATEMENT .. FOR` runs the statement after FOR.
    "SET STATEMENT max_statement_time = 0 FOR DELETE FROM t",
    "SET STATEMENT sql_mode = '' FOR START TRANSACTION",
    // A vertical tab is whitespace.
    "SELECT 1;\x0bBEGIN",
    // Executable comments run what they hold, transaction control too.
    "/*!*/START TRANSACTION",
    "DELETE FROM t; /*!50000 COMMIT AND CHAIN */",
];

#[test]
fn mariadb_does_what_the_classifier_says() {
    classify_diff::run(&mut Mariadb::new(), KNOWN);
}
