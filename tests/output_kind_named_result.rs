//! A return type that is not a `Result` is a value, whatever it is called:
//! a struct named `SearchResult` must compile and be cached as it is.
//!
//! A file of its own: while the macro refuses the type, this file does not
//! compile, and the tests of `output_kind.rs` must still run.

mod common;

use common::{stats_of, TempDb};
use dbkit::cached_query;
use diesel::prelude::*;

diesel::table! {
    nr_documents (id) {
        id -> Integer,
        title -> Text,
    }
}

/// A plain value that happens to be called `...Result`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchResult {
    pub titles: Vec<String>,
    pub total: usize,
}

#[cached_query(ttl = 300, tables = "nr_documents")]
fn search(conn: &mut SqliteConnection, word: &str) -> SearchResult {
    let titles: Vec<String> = nr_documents::table
        .filter(nr_documents::title.like(format!("%{word}%")))
        .select(nr_documents::title)
        .order(nr_documents::id)
        .load(conn)
        .unwrap_or_default();
    let total = titles.len();
    SearchResult { titles, total }
}

#[test]
fn struct_named_like_a_result_is_cached_as_a_value() {
    let db = TempDb::new(
        "CREATE TABLE nr_documents (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
         INSERT INTO nr_documents VALUES (1, 'rust caching'), (2, 'sql'), (3, 'caching again');",
    );
    let (mut conn, statements) = db.connect_instrumented(dbkit::Instrument::new());

    let expected = SearchResult {
        titles: vec!["rust caching".into(), "caching again".into()],
        total: 2,
    };
    let (first, ran) = statements.reached(|| search(&mut conn, "caching"));
    assert_eq!(first, expected);
    assert!(ran, "the first call runs the query");
    let (second, ran) = statements.reached(|| search(&mut conn, "caching"));
    assert_eq!(second, expected);
    assert!(!ran, "the second call is served from the cache");

    // A write to its table invalidates it, as for any cached value.
    diesel::insert_into(nr_documents::table)
        .values((
            nr_documents::id.eq(4),
            nr_documents::title.eq("more caching"),
        ))
        .execute(&mut conn)
        .unwrap();
    let (third, ran) = statements.reached(|| search(&mut conn, "caching"));
    assert!(ran, "the write invalidated the entry");
    assert_eq!(third.total, 3);

    let stats = stats_of("::search");
    assert_eq!((stats.hits, stats.stores), (1, 2));
}
