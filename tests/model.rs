//! The model-based test of Contract 1 on SQLite (WAL): thousands of random
//! sequences of writes, transactions, raw SQL, failures, threads and dropped
//! connections, every cached read checked against the database. See
//! `common/model.rs`.

mod common;

use common::model::{self, Kind, ModelDb, TxHow};
use common::TempDb;
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "model_rows")]
fn model_value(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<i32>> {
    crate::model_cached_body!(conn, id)
}

struct Sqlite {
    db: TempDb,
}

impl Sqlite {
    fn upsert(conn: &mut SqliteConnection, id: i32, v: i32) -> QueryResult<usize> {
        use model::model_rows;
        diesel::insert_into(model_rows::table)
            .values((model_rows::id.eq(id), model_rows::v.eq(v)))
            .on_conflict(model_rows::id)
            .do_update()
            .set(model_rows::v.eq(v))
            .execute(conn)
    }
}

impl ModelDb for Sqlite {
    type Conn = SqliteConnection;
    const KIND: Kind = Kind::Sqlite;

    fn create() -> Self {
        Sqlite {
            db: TempDb::new(model::SQLITE_SCHEMA),
        }
    }

    fn reset(&self, plain: &mut Self::Conn) {
        plain
            .batch_execute(&format!(
                "PRAGMA synchronous = OFF; DELETE FROM model_child; DELETE FROM model_rows; INSERT INTO model_rows VALUES {}",
                model::INITIAL_ROWS
            ))
            .expect("reset the rows");
    }

    fn writer(&self) -> SqliteConnection {
        // A busy writer fails at once: the sequence runs on one thread.
        let (mut conn, _) = self.db.connect_untracked();
        conn.batch_execute(
            "PRAGMA busy_timeout = 0; PRAGMA foreign_keys = ON; PRAGMA synchronous = OFF",
        )
        .expect("writer settings");
        dbkit::instrument(&mut conn);
        conn
    }

    fn reader(&self) -> SqliteConnection {
        self.db.connect().0
    }

    fn plain(&self) -> SqliteConnection {
        self.db.connect_untracked().0
    }

    fn cached(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<i32>> {
        model_value(conn, id)
    }

    crate::model_dsl!(SqliteConnection);

    fn transaction_as(
        conn: &mut SqliteConnection,
        how: TxHow,
        body: &mut dyn FnMut(&mut SqliteConnection) -> QueryResult<()>,
    ) -> QueryResult<()> {
        match how {
            TxHow::Immediate => conn.immediate_transaction(|c| body(c)),
            TxHow::Exclusive => conn.exclusive_transaction(|c| body(c)),
            _ => conn.transaction(|c| body(c)),
        }
    }
}

#[test]
fn model_sqlite() {
    model::run::<Sqlite>(model::Config {
        sequences: 2000,
        min_ops: 10,
        max_ops: 30,
    });
}
