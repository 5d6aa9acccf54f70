//! The model-based test of Contract 1 on a real MariaDB server (see
//! `common/mariadb.rs`): thousands of random sequences of writes,
//! transactions, raw SQL (`autocommit`, chains, DDL's implicit commit),
//! failing statements, threads and dropped connections, every cached read
//! checked against the database. See `common/model.rs`.

mod common;

use common::mariadb::server;
use common::model::{self, Kind, ModelDb, TxHow};
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "model_rows")]
fn model_value(conn: &mut MysqlConnection, id: i32) -> QueryResult<Option<i32>> {
    crate::model_cached_body!(conn, id)
}

struct Mysql {
    url: String,
}

impl Mysql {
    fn upsert(conn: &mut MysqlConnection, id: i32, v: i32) -> QueryResult<usize> {
        use model::model_rows;
        diesel::replace_into(model_rows::table)
            .values((model_rows::id.eq(id), model_rows::v.eq(v)))
            .execute(conn)
    }
}

impl ModelDb for Mysql {
    type Conn = MysqlConnection;
    const KIND: Kind = Kind::Mysql;

    fn create() -> Self {
        let db = Mysql {
            url: server().fresh_database(),
        };
        db.plain()
            .batch_execute(model::MYSQL_SCHEMA)
            .expect("schema");
        db
    }

    fn reset(&self, plain: &mut Self::Conn) {
        plain
            .batch_execute(&format!(
                "DELETE FROM model_child; DELETE FROM model_rows; INSERT INTO model_rows VALUES {}",
                model::INITIAL_ROWS
            ))
            .expect("reset the rows");
    }

    fn writer(&self) -> MysqlConnection {
        // The safety net should the model let a writer wait on another.
        let mut conn = self.plain();
        conn.batch_execute(
            "SET SESSION innodb_lock_wait_timeout = 1; SET SESSION lock_wait_timeout = 5",
        )
        .expect("lock timeouts");
        dbkit::instrument(&mut conn);
        conn
    }

    fn reader(&self) -> MysqlConnection {
        let mut conn = self.plain();
        dbkit::instrument(&mut conn);
        conn
    }

    fn plain(&self) -> MysqlConnection {
        MysqlConnection::establish(&self.url).expect("connect")
    }

    fn cached(conn: &mut MysqlConnection, id: i32) -> QueryResult<Option<i32>> {
        model_value(conn, id)
    }

    crate::model_dsl!(MysqlConnection);

    fn transaction_as(
        conn: &mut MysqlConnection,
        _how: TxHow,
        body: &mut dyn FnMut(&mut MysqlConnection) -> QueryResult<()>,
    ) -> QueryResult<()> {
        conn.transaction(|c| body(c))
    }
}

#[test]
fn model_mysql() {
    model::run::<Mysql>(model::Config {
        sequences: 2000,
        min_ops: 4,
        max_ops: 14,
    });
}
