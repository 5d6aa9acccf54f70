//! Invalidating every table: its own test binary, since it makes every
//! cached result of the process stale, other tests' included. The tests
//! take turns: a write to every table in flight in one would make the
//! others' fresh stamps look stale.

use std::sync::{Mutex, MutexGuard};

use dbkit_core::tables::{fresh, invalidate_all, now, table};
use dbkit_core::tracker::{Backend, Outcome, Step, WriteTracker, WriteVisibility};

fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn invalidate_all_refuses_every_older_stamp() {
    let _turn = turn();
    let a = table("all_a");
    let b = table("all_b");
    let before = now();
    invalidate_all();
    assert!(!fresh(&[a], before) && !fresh(&[b], before));
    assert!(fresh(&[a, b], now()));
}

#[test]
fn write_with_unknown_tables_pre_invalidates_and_bumps_everything() {
    let _turn = turn();
    let any = table("all_victim");
    let mut tracker = WriteTracker::new(WriteVisibility::AtCommit, Backend::Sqlite);
    let before = now();
    tracker.statement_started(&[Step::WriteAll], &[], false);
    assert!(!fresh(&[any], now()), "every table is in flight");
    tracker.statement_finished(Outcome::Succeeded);
    assert!(!fresh(&[any], before));
    assert!(fresh(&[any], now()));
}

#[test]
fn unknown_write_inside_a_transaction_holds_every_table_until_commit() {
    let _turn = turn();
    let any = table("all_tx_victim");
    let users = table("all_tx_users");
    let mut tracker = WriteTracker::new(WriteVisibility::AtCommit, Backend::Sqlite);
    tracker.statement_started(&[Step::Begin], &[], false);
    tracker.statement_finished(Outcome::Succeeded);
    tracker.statement_started(&[Step::Write(0..1)], &[users], false);
    tracker.statement_finished(Outcome::Succeeded);
    tracker.statement_started(&[Step::WriteAll], &[], false);
    tracker.statement_finished(Outcome::Succeeded);
    assert!(
        !fresh(&[any], now()),
        "the unknown write keeps every table in flight"
    );
    let before = now();
    tracker.statement_started(&[Step::Commit { chain: false }], &[], false);
    tracker.statement_finished(Outcome::Succeeded);
    assert!(!fresh(&[any], before));
    assert!(fresh(&[any], now()));
}
