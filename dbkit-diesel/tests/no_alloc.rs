//! The per-statement path allocates nothing: classifying a statement, and
//! tracking writes of tables already seen, in and out of transactions, once
//! the connection's tracker is warm. Its own test binary: it installs a
//! counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dbkit_core::tables::table;
use dbkit_core::tracker::{Backend, Outcome, Step, WriteTracker, WriteVisibility};
use dbkit_diesel::classify::{classify, Dialect, Effect};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; counting touches only a
// const-initialized thread-local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn classifying_and_tracking_a_statement_allocate_nothing() {
    let statements = [
        r#"INSERT INTO "users" ("name") VALUES ($1) RETURNING "users"."id""#,
        "UPDATE `posts` SET `title` = ? WHERE `posts`.`id` = ?",
        r#"SELECT "users"."id", "users"."name" FROM "users" WHERE "users"."id" = $1"#,
        "DELETE FROM users WHERE id = 1",
        "WITH x AS (DELETE FROM queue RETURNING *) INSERT INTO done SELECT * FROM x",
        "BEGIN",
        "COMMIT",
    ];
    let users = table("users");
    let before = allocations();
    for sql in statements {
        let dialect = if sql.contains('`') {
            Dialect::Mysql
        } else {
            Dialect::Postgres
        };
        let effect = classify(sql, dialect, false);
        assert!(!matches!(effect, Effect::WritesUnknown), "{sql}");
    }
    assert_eq!(allocations() - before, 0, "classification allocated");

    let mut tracker = WriteTracker::new(WriteVisibility::AtCommit, Backend::Postgres);
    let one = |tracker: &mut WriteTracker, step: Step| {
        tracker.statement_started(&[step], &[users], false);
        tracker.statement_finished(Outcome::Succeeded);
    };
    let cycle = |tracker: &mut WriteTracker| {
        one(tracker, Step::Write(0..1));
        one(tracker, Step::NoWrite);
        one(tracker, Step::Begin);
        one(tracker, Step::Write(0..1));
        one(tracker, Step::Savepoint(1));
        one(tracker, Step::RollbackTo(1));
        one(tracker, Step::Commit { chain: false });
    };
    // The connection's first statements size its lists, once.
    cycle(&mut tracker);
    let before = allocations();
    for _ in 0..100 {
        cycle(&mut tracker);
    }
    assert_eq!(
        allocations() - before,
        0,
        "tracking statements and transactions allocated"
    );
}
