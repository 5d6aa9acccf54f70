//! The stale-read guard (debug builds): a cached function that reads a table
//! it did not declare is reported, once, naming the function, the table and
//! the fix. Its own test binary: the panic switch is process-wide.

mod common;

use std::sync::{Arc, Mutex};

use common::TempDb;
use dbkit::cached_query;
use diesel::prelude::*;

diesel::table! {
    guard_users (id) {
        id -> Integer,
        name -> Text,
    }
}

diesel::table! {
    guard_posts (id) {
        id -> Integer,
        user_id -> Integer,
        title -> Text,
    }
}

diesel::joinable!(guard_posts -> guard_users (user_id));
diesel::allow_tables_to_appear_in_same_query!(guard_users, guard_posts);

const SCHEMA: &str = "
    CREATE TABLE guard_users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE guard_posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, title TEXT NOT NULL);
    INSERT INTO guard_users VALUES (1, 'ada');
    INSERT INTO guard_posts VALUES (1, 1, 'notes');
";

/// Reads `guard_posts` too, but declares only `guard_users`: the stale bug.
#[cached_query(ttl = 300, tables = "guard_users")]
fn titles_forgetting_posts(conn: &mut SqliteConnection, id: i32) -> QueryResult<Vec<String>> {
    guard_users::table
        .inner_join(guard_posts::table)
        .filter(guard_users::id.eq(id))
        .select(guard_posts::title)
        .load(conn)
}

#[cached_query(ttl = 300, tables = "guard_users")]
fn titles_forgetting_posts_again(conn: &mut SqliteConnection, id: i32) -> QueryResult<Vec<String>> {
    guard_users::table
        .inner_join(guard_posts::table)
        .filter(guard_users::id.eq(id))
        .select(guard_posts::title)
        .load(conn)
}

#[cached_query(ttl = 300, tables = "guard_users, guard_posts")]
fn titles_declared(conn: &mut SqliteConnection, id: i32) -> QueryResult<Vec<String>> {
    guard_users::table
        .inner_join(guard_posts::table)
        .filter(guard_users::id.eq(id))
        .select(guard_posts::title)
        .load(conn)
}

/// The panic switch is process-wide: the two tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

/// Records the warnings emitted while it is the default subscriber.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(fields.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn undeclared_table_is_warned_once_and_declared_tables_are_not() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let db = TempDb::new(SCHEMA);
    let (mut conn, _) = db.connect_instrumented(dbkit::Instrument::new());
    let warnings = Warnings::default();
    tracing::subscriber::with_default(warnings.clone(), || {
        assert_eq!(titles_declared(&mut conn, 1).unwrap(), ["notes"]);
        assert!(
            warnings.0.lock().unwrap().is_empty(),
            "declared tables were reported"
        );

        dbkit::clear_all();
        titles_forgetting_posts(&mut conn, 1).unwrap();
        titles_forgetting_posts(&mut conn, 2).unwrap();
    });
    let seen = warnings.0.lock().unwrap();
    assert_eq!(
        seen.len(),
        1,
        "reported once per function and table: {seen:?}"
    );
    assert!(seen[0].contains("titles_forgetting_posts"), "{}", seen[0]);
    assert!(seen[0].contains("guard_posts"), "{}", seen[0]);
    assert!(seen[0].contains("add it to `tables`"), "{}", seen[0]);
}

#[test]
fn undeclared_table_can_be_made_a_panic_for_test_suites() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let db = TempDb::new(SCHEMA);
    let (mut conn, _) = db.connect_instrumented(dbkit::Instrument::new());
    dbkit::testing::panic_on_undeclared_tables(true);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        titles_forgetting_posts_again(&mut conn, 1)
    }));
    dbkit::testing::panic_on_undeclared_tables(false);
    let message = outcome.expect_err("the undeclared table must panic");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("reads table `guard_posts`"), "{message}");
    assert!(
        message.contains("add `guard_posts` to its `tables`"),
        "{message}"
    );
}
