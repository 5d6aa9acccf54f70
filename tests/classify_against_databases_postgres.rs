//! The SQL classifier against PostgreSQL itself (a throwaway server, see
//! `common/postgres.rs`): random texts that stress lexing, run with
//! `batch_execute`, and what the server did (did `t` change, is a
//! transaction left open) checked against the classifier's verdicts for
//! [`Dialect::Postgres`] and `Dialect::Any`. See `common/classify_diff.rs`.

mod common;

use common::classify_diff::{self, checksum, Checksum, Database, CHECKSUM_SQL, ROWS};
use common::postgres::server;
use dbkit::Dialect;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

struct Postgres {
    url: String,
    conn: PgConnection,
}

impl Postgres {
    fn new() -> Postgres {
        let url = server().fresh_database();
        let mut conn = PgConnection::establish(&url).expect("connect");
        conn.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
            .expect("create t");
        Postgres { url, conn }
    }
}

impl Database for Postgres {
    const NAME: &'static str = "PostgreSQL";
    const DIALECT: Dialect = Dialect::Postgres;
    const CASES: u64 = 15_000;

    fn reset(&mut self) -> Checksum {
        let reset = format!("ROLLBACK; DELETE FROM t; {ROWS}");
        if self.conn.batch_execute(&reset).is_err() {
            // A connection a text broke: start over on a new one.
            self.conn = PgConnection::establish(&self.url).expect("reconnect");
            self.conn.batch_execute(&reset).expect("reset t");
        }
        checksum(&mut self.conn, CHECKSUM_SQL).expect("checksum")
    }

    fn execute(&mut self, text: &str) -> Result<(), String> {
        self.conn.batch_execute(text).map_err(|e| e.to_string())
    }

    fn observe(&mut self) -> (Checksum, bool) {
        // SAVEPOINT is refused outside a transaction block; inside an
        // aborted one, it is refused for that.
        let open = match self.conn.batch_execute("SAVEPOINT probe") {
            Ok(()) => true,
            Err(e)
                if e.to_string()
                    .contains("can only be used in transaction blocks") =>
            {
                false
            }
            Err(e) if e.to_string().contains("current transaction is aborted") => true,
            Err(e) => panic!("probing for a transaction: {e}"),
        };
        let sum = match checksum(&mut self.conn, CHECKSUM_SQL) {
            Ok(sum) => sum,
            Err(_) => {
                // Aborted: its writes are gone with it.
                self.conn.batch_execute("ROLLBACK").expect("roll back");
                checksum(&mut self.conn, CHECKSUM_SQL).expect("checksum after")
            }
        };
        (sum, open)
    }
}

/// Counterexamples found before, run first on every run.
const KNOWN: &[&str] = &[
    // A dollar-quote tag may hold any non-ASCII character, not only letters.
    "SELECT $٣$ ' $٣$; DELETE FROM t; -- '",
    "SELECT $€$;BEGIN;$€$",
    "SELECT 1,$e\u{301}$'$e\u{301}$;BEGIN",
    // `--` comments end at a carriage return too.
    "--\rDELETE FROM t",
    "SELECT 1 -- x\r;BEGIN",
    // A data-modifying CTE inside parentheses.
    "(WITH d AS (UPDATE t SET v = v + 1 RETURNING id) SELECT 1)",
];

#[test]
fn postgres_does_what_the_classifier_says() {
    classify_diff::run(&mut Postgres::new(), KNOWN);
}
