//! The per-statement path allocates nothing: classifying a statement, and
//! tracking an autocommit write of tables already seen. Its own test binary:
//! it installs a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dbkit_core::tables::table;
use dbkit_core::tracker::{Step, WriteTracker};
use dbkit_diesel::classify::{classify, Effect};

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
        let effect = classify(sql, false);
        assert!(!matches!(effect, Effect::WritesUnknown), "{sql}");
    }
    assert_eq!(allocations() - before, 0, "classification allocated");

    let mut tracker = WriteTracker::default();
    // The connection's first statement sizes its pending list, once.
    tracker.statement_started(&[Step::NoWrite]);
    tracker.statement_finished(false);
    let before = allocations();
    for _ in 0..100 {
        tracker.statement_started(&[Step::Write(&[users])]);
        tracker.statement_finished(false);
        tracker.statement_started(&[Step::NoWrite]);
        tracker.statement_finished(false);
    }
    assert_eq!(
        allocations() - before,
        0,
        "tracking autocommit statements allocated"
    );
}
