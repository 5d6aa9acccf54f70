//! `#[cached_query]` on real SQLite through diesel: what reaches the database.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use common::{stats_of, wait_until, Gate, TempDb};
use dbkit::cached_query;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

diesel::table! {
    accounts (id) {
        id -> Integer,
        email -> Text,
        name -> Text,
    }
}

diesel::table! {
    posts (id) {
        id -> Integer,
        title -> Text,
    }
}

diesel::table! {
    drafts (id) {
        id -> Integer,
        body -> Text,
    }
}

diesel::table! {
    tags (id) {
        id -> Integer,
        label -> Text,
    }
}

diesel::table! {
    counters (id) {
        id -> Integer,
        value -> Integer,
    }
}

diesel::table! {
    balances (id) {
        id -> Integer,
        amount -> Integer,
    }
}

diesel::table! {
    profiles (id) {
        id -> Integer,
        bio -> Text,
    }
}

diesel::table! {
    items (id) {
        id -> Integer,
        kind -> Text,
    }
}

#[cached_query(ttl = 300, tables = "accounts")]
fn account_name(conn: &mut SqliteConnection, email: &str) -> QueryResult<Option<String>> {
    accounts::table
        .filter(accounts::email.eq(email))
        .select(accounts::name)
        .get_result(conn)
        .optional()
}

#[test]
fn second_call_with_same_arguments_does_not_reach_the_database() {
    let db = TempDb::new(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL);
         INSERT INTO accounts VALUES (1, 'ada@example.com', 'Ada'), (2, 'bob@example.com', 'Bob');",
    );
    let (mut conn, statements) = db.connect();

    assert_eq!(
        account_name(&mut conn, "ada@example.com")
            .unwrap()
            .as_deref(),
        Some("Ada")
    );
    assert_eq!(statements.count(), 1);
    assert_eq!(
        account_name(&mut conn, "ada@example.com")
            .unwrap()
            .as_deref(),
        Some("Ada")
    );
    assert_eq!(
        statements.count(),
        1,
        "the second call was served from the cache"
    );

    assert_eq!(
        account_name(&mut conn, "bob@example.com")
            .unwrap()
            .as_deref(),
        Some("Bob")
    );
    assert_eq!(statements.count(), 2, "other arguments are another entry");
    assert_eq!(account_name(&mut conn, "nobody@example.com").unwrap(), None);
    assert_eq!(account_name(&mut conn, "nobody@example.com").unwrap(), None);
    assert_eq!(statements.count(), 3, "`None` is a value and is cached");

    let stats = stats_of("::account_name");
    assert_eq!((stats.hits, stats.misses, stats.entries), (2, 3, 3));
    assert_eq!(stats.tables, ["accounts"]);
    let report = serde_json::to_value(dbkit::report()).unwrap();
    let function = report["caches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["function"].as_str().unwrap().ends_with("::account_name"))
        .expect("the function is in the report");
    assert_eq!(function["hits"], 2);
}

#[cached_query(ttl = 300, tables = "posts")]
fn post_title(conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
    posts::table.find(id).select(posts::title).get_result(conn)
}

#[test]
fn invalidating_a_dependent_table_reaches_the_database_and_an_unrelated_one_does_not() {
    let db = TempDb::new(
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
         INSERT INTO posts VALUES (1, 'first');",
    );
    let (mut conn, statements) = db.connect();
    assert_eq!(post_title(&mut conn, 1).unwrap(), "first");

    // A write dbkit does not see.
    let (mut untracked, _) = db.connect_untracked();
    diesel::update(posts::table.find(1))
        .set(posts::title.eq("edited"))
        .execute(&mut untracked)
        .unwrap();
    let after_write = statements.count();

    dbkit::invalidate_table("some_unrelated_table");
    post_title(&mut conn, 1).unwrap();
    assert_eq!(
        statements.count(),
        after_write,
        "an unrelated table keeps the entry"
    );

    dbkit::invalidate_table("posts");
    assert_eq!(post_title(&mut conn, 1).unwrap(), "edited");
    assert_eq!(
        statements.count(),
        after_write + 1,
        "the dependent table's entry was refused"
    );
    assert_eq!(stats_of("::post_title").stale_rejections, 1);
}

#[cached_query(ttl = 300, tables = "drafts")]
fn draft_body(conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
    drafts::table.find(id).select(drafts::body).get_result(conn)
}

#[test]
fn err_is_not_stored() {
    let db = TempDb::new("CREATE TABLE unrelated (id INTEGER);");
    let (mut conn, statements) = db.connect();
    assert!(
        draft_body(&mut conn, 1).is_err(),
        "the table does not exist yet"
    );
    conn.batch_execute(
        "CREATE TABLE drafts (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         INSERT INTO drafts VALUES (1, 'hello');",
    )
    .unwrap();
    let before = statements.count();
    assert_eq!(draft_body(&mut conn, 1).unwrap(), "hello");
    assert_eq!(
        statements.count(),
        before + 1,
        "the error was not served from the cache"
    );
    assert_eq!(stats_of("::draft_body").stores, 1);
}

#[cached_query(ttl = 300, tables = "tags", max_entries = 3)]
fn tag_label(conn: &mut SqliteConnection, id: i32) -> QueryResult<String> {
    tags::table.find(id).select(tags::label).get_result(conn)
}

#[test]
fn lru_bound_is_respected() {
    let db = TempDb::new(
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
         INSERT INTO tags VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e');",
    );
    let (mut conn, statements) = db.connect();
    for id in 1..=5 {
        tag_label(&mut conn, id).unwrap();
    }
    let stats = stats_of("::tag_label");
    assert_eq!(
        (stats.entries, stats.max_entries, stats.evictions),
        (3, 3, 2)
    );
    let before = statements.count();
    tag_label(&mut conn, 5).unwrap();
    assert_eq!(statements.count(), before, "the most recent entry is kept");
    tag_label(&mut conn, 1).unwrap();
    assert_eq!(
        statements.count(),
        before + 1,
        "the least recent entry was evicted"
    );
}

static FLIGHT_RUNS: AtomicUsize = AtomicUsize::new(0);
static FLIGHT_GATE: Gate = Gate::new();

#[cached_query(ttl = 300, tables = "counters")]
fn counter_value(conn: &mut SqliteConnection, id: i32) -> QueryResult<i32> {
    let value = counters::table
        .find(id)
        .select(counters::value)
        .get_result(conn)?;
    FLIGHT_RUNS.fetch_add(1, Ordering::SeqCst);
    FLIGHT_GATE.wait(); // held open until every caller has arrived
    Ok(value)
}

#[test]
fn single_flight_runs_one_query_for_concurrent_misses() {
    let db = TempDb::new(
        "CREATE TABLE counters (id INTEGER PRIMARY KEY, value INTEGER NOT NULL);
         INSERT INTO counters VALUES (1, 42);",
    );
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let (mut conn, statements) = db.connect();
            thread::spawn(move || (counter_value(&mut conn, 1).unwrap(), statements.count()))
        })
        .collect();
    wait_until("one caller runs the query and seven wait for it", || {
        FLIGHT_RUNS.load(Ordering::SeqCst) == 1
            && dbkit::cache_stats()
                .iter()
                .any(|s| s.function.ends_with("::counter_value") && s.coalesced == 7)
    });
    FLIGHT_GATE.open();
    let results: Vec<(i32, usize)> = callers.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(results.iter().all(|(v, _)| *v == 42));
    assert_eq!(
        results.iter().map(|(_, n)| n).sum::<usize>(),
        1,
        "one statement in all"
    );
    assert_eq!(FLIGHT_RUNS.load(Ordering::SeqCst), 1);
    let stats = stats_of("::counter_value");
    assert_eq!((stats.misses, stats.hits), (1, 7));
}

static RACE_READ_DONE: Gate = Gate::new();
static RACE_PROCEED: Gate = Gate::new();

#[cached_query(ttl = 300, tables = "balances")]
fn balance(conn: &mut SqliteConnection, id: i32) -> QueryResult<i32> {
    let amount = balances::table
        .find(id)
        .select(balances::amount)
        .get_result(conn)?;
    RACE_READ_DONE.open();
    RACE_PROCEED.wait(); // the write commits and invalidates here
    Ok(amount)
}

#[test]
fn write_landing_during_a_cached_read_never_leaves_its_result_servable() {
    let db = TempDb::new(
        "CREATE TABLE balances (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);
         INSERT INTO balances VALUES (1, 100);",
    );
    let (mut reader, _) = db.connect();
    let read = thread::spawn(move || balance(&mut reader, 1).unwrap());

    RACE_READ_DONE.wait();
    // A write dbkit does not see, announced by hand.
    let (mut writer, _) = db.connect_untracked();
    diesel::update(balances::table.find(1))
        .set(balances::amount.eq(200))
        .execute(&mut writer)
        .unwrap();
    dbkit::invalidate_table("balances");
    RACE_PROCEED.open();

    assert_eq!(read.join().unwrap(), 100, "the read began before the write");
    let (mut conn, statements) = db.connect();
    assert_eq!(
        balance(&mut conn, 1).unwrap(),
        200,
        "the old result is not served"
    );
    assert_eq!(statements.count(), 1);
    let stats = stats_of("::balance");
    assert_eq!(stats.stores, 1, "only the fresh result was stored");
    assert_eq!(
        stats.stale_rejections, 1,
        "the racing result was refused at store time"
    );
}

#[cached_query(ttl = 300, tables = "profiles", cache_none = false)]
fn profile_bio(conn: &mut SqliteConnection, id: i32) -> QueryResult<Option<String>> {
    profiles::table
        .find(id)
        .select(profiles::bio)
        .get_result(conn)
        .optional()
}

#[cached_query(ttl = "5m", tables = "profiles")]
fn profile_bio_plain(conn: &mut SqliteConnection, id: i32) -> Option<String> {
    profiles::table
        .find(id)
        .select(profiles::bio)
        .get_result(conn)
        .ok()
}

#[test]
fn none_is_cached_unless_opted_out() {
    let db = TempDb::new(
        "CREATE TABLE profiles (id INTEGER PRIMARY KEY, bio TEXT NOT NULL);
         INSERT INTO profiles VALUES (1, 'hi');",
    );
    let (mut conn, statements) = db.connect();
    assert_eq!(profile_bio(&mut conn, 9).unwrap(), None);
    assert_eq!(profile_bio(&mut conn, 9).unwrap(), None);
    assert_eq!(
        statements.count(),
        2,
        "`cache_none = false` does not store `None`"
    );
    assert_eq!(profile_bio(&mut conn, 1).unwrap().as_deref(), Some("hi"));
    assert_eq!(profile_bio(&mut conn, 1).unwrap().as_deref(), Some("hi"));
    assert_eq!(statements.count(), 3, "`Some` is stored");

    assert_eq!(profile_bio_plain(&mut conn, 9), None);
    assert_eq!(profile_bio_plain(&mut conn, 9), None);
    assert_eq!(statements.count(), 4, "a plain `Option` stores `None`");
}

#[derive(Clone, Hash, PartialEq, Eq)]
struct Filter {
    kinds: Vec<String>,
}

#[cached_query(ttl = 300, tables = "items")]
fn count_items(
    conn: &mut SqliteConnection,
    ids: &[i32],
    filter: &Filter,
    suffix: String,
    #[dbkit(skip)] request_id: u64,
) -> QueryResult<Vec<String>> {
    let _ = request_id;
    let kinds: Vec<String> = items::table
        .filter(items::id.eq_any(ids))
        .filter(items::kind.eq_any(&filter.kinds))
        .select(items::kind)
        .order(items::id)
        .load(conn)?;
    Ok(kinds.into_iter().map(|k| format!("{k}{suffix}")).collect())
}

#[test]
fn every_argument_but_skipped_ones_is_keyed_by_value() {
    let db = TempDb::new(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);
         INSERT INTO items VALUES (1, 'book'), (2, 'pen'), (3, 'book');",
    );
    let (mut conn, statements) = db.connect();
    let books = Filter {
        kinds: vec!["book".into()],
    };
    let first = count_items(&mut conn, &[1, 2, 3], &books, "!".into(), 1).unwrap();
    assert_eq!(first, ["book!", "book!"]);
    let equal_ids: Vec<i32> = (1..=3).collect(); // another allocation, same value
    let same = count_items(&mut conn, &equal_ids, &books.clone(), "!".into(), 2).unwrap();
    assert_eq!(same, first);
    assert_eq!(
        statements.count(),
        1,
        "equal values hit, whatever the skipped argument"
    );

    count_items(&mut conn, &[1, 2], &books, "!".into(), 1).unwrap();
    let pens = Filter {
        kinds: vec!["pen".into()],
    };
    assert_eq!(
        count_items(&mut conn, &[1, 2, 3], &pens, "!".into(), 1).unwrap(),
        ["pen!"]
    );
    count_items(&mut conn, &[1, 2, 3], &books, "?".into(), 1).unwrap();
    assert_eq!(
        statements.count(),
        4,
        "each keyed argument tells entries apart"
    );
}

/// dbkit re-exported under another name, as an application's own prelude might.
pub use dbkit as renamed_dbkit;

/// An application's own name for its connection: not recognisable by name.
type Db = SqliteConnection;

diesel::table! {
    shelves (id) {
        id -> Integer,
        kind -> Text,
    }
}

#[renamed_dbkit::cached_query(ttl = 300, tables = "shelves", crate = "crate::renamed_dbkit")]
fn shelf_kind(#[dbkit(conn)] db: &mut Db, id: i32) -> QueryResult<String> {
    shelves::table.find(id).select(shelves::kind).get_result(db)
}

#[test]
fn crate_override_and_explicit_connection_marker_work() {
    let db = TempDb::new(
        "CREATE TABLE shelves (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);
         INSERT INTO shelves VALUES (1, 'oak');",
    );
    let (mut conn, statements) = db.connect();
    assert_eq!(shelf_kind(&mut conn, 1).unwrap(), "oak");
    assert_eq!(shelf_kind(&mut conn, 1).unwrap(), "oak");
    assert_eq!(statements.count(), 1);
}
