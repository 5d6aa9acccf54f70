//! The model-based test of Contract 1 on a real PostgreSQL server (see
//! `common/postgres.rs`): thousands of random sequences of writes,
//! transactions (isolation levels, savepoints, chains), raw SQL, failing
//! statements and commits, threads and dropped connections, every cached
//! read checked against the database. See `common/model.rs`.

mod common;

use common::model::{self, Kind, ModelDb, TxHow};
use common::postgres::server;
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

#[cached_query(ttl = 300, tables = "model_rows")]
fn model_value(conn: &mut PgConnection, id: i32) -> QueryResult<Option<i32>> {
    crate::model_cached_body!(conn, id)
}

struct Postgres {
    url: String,
}

impl Postgres {
    fn upsert(conn: &mut PgConnection, id: i32, v: i32) -> QueryResult<usize> {
        use model::model_rows;
        diesel::insert_into(model_rows::table)
            .values((model_rows::id.eq(id), model_rows::v.eq(v)))
            .on_conflict(model_rows::id)
            .do_update()
            .set(model_rows::v.eq(v))
            .execute(conn)
    }
}

impl ModelDb for Postgres {
    type Conn = PgConnection;
    const KIND: Kind = Kind::Postgres;

    fn create() -> Self {
        let db = Postgres {
            url: server().fresh_database(),
        };
        db.plain()
            .batch_execute(model::POSTGRES_SCHEMA)
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

    fn writer(&self) -> PgConnection {
        // The safety net should the model let a writer wait on another.
        let mut conn = self.plain();
        conn.batch_execute("SET lock_timeout = '100ms'")
            .expect("lock timeout");
        dbkit::instrument(&mut conn);
        conn
    }

    fn reader(&self) -> PgConnection {
        let mut conn = self.plain();
        dbkit::instrument(&mut conn);
        conn
    }

    fn plain(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect")
    }

    fn cleanup(plain: &mut PgConnection, reader: &mut PgConnection) {
        #[derive(QueryableByName)]
        struct Prepared {
            #[diesel(sql_type = diesel::sql_types::Text)]
            gid: String,
        }
        let prepared: Vec<Prepared> = diesel::sql_query(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
        )
        .load(plain)
        .expect("list prepared transactions");
        for p in prepared {
            reader
                .batch_execute(&format!("ROLLBACK PREPARED '{}'", p.gid))
                .expect("roll back a prepared transaction");
        }
    }

    fn cached(conn: &mut PgConnection, id: i32) -> QueryResult<Option<i32>> {
        model_value(conn, id)
    }

    crate::model_dsl!(PgConnection);

    fn transaction_as(
        conn: &mut PgConnection,
        how: TxHow,
        body: &mut dyn FnMut(&mut PgConnection) -> QueryResult<()>,
    ) -> QueryResult<()> {
        match how {
            TxHow::RepeatableRead => conn.build_transaction().repeatable_read().run(|c| body(c)),
            TxHow::Serializable => conn.build_transaction().serializable().run(|c| body(c)),
            TxHow::ReadOnly => conn.build_transaction().read_only().run(|c| body(c)),
            _ => conn.transaction(|c| body(c)),
        }
    }
}

#[test]
fn model_postgres() {
    model::run::<Postgres>(model::Config {
        sequences: 1000,
        min_ops: 4,
        max_ops: 14,
    });
}
