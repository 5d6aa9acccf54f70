//! The tracker on its own steps: each case is the sequence of statements a
//! connection sends, with what the database answered.

use super::*;
use crate::tables::{fresh, now, table};

fn t(name: &str) -> &'static TableState {
    table(name)
}

/// A connection to `backend` in the real world (writes visible at commit).
fn tracker(backend: Backend) -> WriteTracker {
    WriteTracker::new(WriteVisibility::AtCommit, backend)
}

/// One statement: `step` (writing `tables`), answered with `outcome`.
fn run(tracker: &mut WriteTracker, step: Step, tables: &[&'static TableState], outcome: Outcome) {
    let step = match step {
        Step::Write(_) => Step::Write(0..tables.len() as u32),
        other => other,
    };
    tracker.statement_started(&[step], tables, false);
    tracker.statement_finished(outcome);
}

fn ok(tracker: &mut WriteTracker, step: Step) {
    run(tracker, step, &[], Outcome::Succeeded);
}

fn write(tracker: &mut WriteTracker, table: &'static TableState) {
    run(tracker, Step::Write(0..1), &[table], Outcome::Succeeded);
}

/// Whether an entry of `table` stamped at `stamp` would be served now.
fn served(table: &'static TableState, stamp: u64) -> bool {
    fresh(&[table], stamp)
}

#[test]
fn autocommit_write_pre_invalidates_then_bumps() {
    let users = t("tr_auto");
    let mut tracker = tracker(Backend::Sqlite);
    let before = now();
    tracker.statement_started(&[Step::Write(0..1)], &[users], false);
    assert!(!served(users, now()), "in flight");
    tracker.statement_finished(Outcome::Succeeded);
    assert!(!served(users, before));
    assert!(served(users, now()));
}

#[test]
fn failed_autocommit_statement_releases_without_bump() {
    let users = t("tr_failed");
    let mut tracker = tracker(Backend::Postgres);
    let before = now();
    run(&mut tracker, Step::Write(0..1), &[users], Outcome::Failed);
    assert!(served(users, before));
}

#[test]
fn transaction_bumps_only_after_successful_commit() {
    let users = t("tr_commit");
    let mut tracker = tracker(Backend::Postgres);
    let before = now();
    tracker.transaction_began();
    ok(&mut tracker, Step::Begin);
    write(&mut tracker, users);
    assert!(!served(users, now()), "pending until commit");
    assert_eq!(
        tracker.access(&[users]),
        Access::Bypass,
        "sees its own writes"
    );
    assert_eq!(tracker.access(&[t("tr_commit_other")]), Access::ReadOnly);
    tracker.transaction_committing();
    tracker.statement_started(&[Step::Commit { chain: false }], &[], false);
    assert!(
        !served(users, now()),
        "not committed before COMMIT finishes"
    );
    tracker.statement_finished(Outcome::Succeeded);
    assert!(!served(users, before));
    assert!(served(users, now()));
    assert_eq!(tracker.access(&[users]), Access::Full);
}

#[test]
fn certain_rollback_releases_without_bump() {
    let users = t("tr_rollback");
    let mut tracker = tracker(Backend::Postgres);
    let before = now();
    ok(&mut tracker, Step::Begin);
    write(&mut tracker, users);
    ok(&mut tracker, Step::Rollback { chain: false });
    assert!(served(users, before), "rolled back: nothing changed");
    assert_eq!(tracker.access(&[users]), Access::Full);
}

#[test]
fn failed_commit_on_postgres_bumps_and_ends_the_transaction() {
    let users = t("tr_pg_failed_commit");
    let mut tracker = tracker(Backend::Postgres);
    ok(&mut tracker, Step::Begin);
    write(&mut tracker, users);
    let before = now();
    run(
        &mut tracker,
        Step::Commit { chain: false },
        &[],
        Outcome::Failed,
    );
    assert!(
        !served(users, before),
        "not certain it did not commit: bumped"
    );
    assert!(served(users, now()), "and released: the server ended it");
    // Later autocommit writes are bumped at once, not held.
    let later = now();
    write(&mut tracker, users);
    assert!(!served(users, later));
    assert!(served(users, now()));
}

#[test]
fn failed_commit_on_sqlite_keeps_holding_until_the_transaction_ends() {
    let users = t("tr_sqlite_busy_commit");
    let mut tracker = tracker(Backend::Sqlite);
    ok(&mut tracker, Step::Begin);
    write(&mut tracker, users);
    let before = now();
    run(
        &mut tracker,
        Step::Commit { chain: false },
        &[],
        Outcome::Failed,
    );
    assert!(!served(users, before), "bumped in case it committed");
    assert!(
        !served(users, now()),
        "still held: the transaction may be open"
    );
    // diesel rolls back; an unsure transaction's rollback bumps.
    let during = now();
    ok(&mut tracker, Step::Rollback { chain: false });
    assert!(!served(users, during));
    assert!(served(users, now()));
}

#[test]
fn failed_begin_leaves_the_connection_outside_a_transaction() {
    let users = t("tr_failed_begin");
    let mut tracker = tracker(Backend::Sqlite);
    tracker.transaction_began();
    run(&mut tracker, Step::Begin, &[], Outcome::Failed);
    assert_eq!(tracker.access(&[users]), Access::Full);
    let before = now();
    write(&mut tracker, users);
    assert!(
        !served(users, before),
        "an autocommit write, bumped at once"
    );
    assert!(served(users, now()));
}

#[test]
fn savepoint_rollback_keeps_the_parents_writes_pending() {
    let users = t("tr_sp_parent");
    let posts = t("tr_sp_child");
    let mut tracker = tracker(Backend::Postgres);
    let before = now();
    ok(&mut tracker, Step::Begin);
    write(&mut tracker, users);
    ok(&mut tracker, Step::Savepoint(1));
    write(&mut tracker, posts);
    ok(&mut tracker, Step::RollbackTo(1));
    ok(&mut tracker, Step::Release(1));
    assert!(!served(users, now()), "the parent's write is still pending");
    ok(&mut tracker, Step::Commit { chain: false });
    assert!(!served(users, before));
    assert!(served(users, now()));
}

#[test]
fn sqlite_savepoint_outside_a_transaction_opens_one_and_release_commits_it() {
    let users = t("tr_sqlite_savepoint");
    let mut tracker = tracker(Backend::Sqlite);
    ok(&mut tracker, Step::Savepoint(7));
    assert!(tracker.in_transaction());
    write(&mut tracker, users);
    ok(&mut tracker, Step::Savepoint(8));
    ok(&mut tracker, Step::Release(8));
    assert!(!served(users, now()), "the inner release commits nothing");
    let before = now();
    ok(&mut tracker, Step::Release(7));
    assert!(!tracker.in_transaction());
    assert!(!served(users, before));
    assert!(served(users, now()));
}

#[test]
fn chained_commit_opens_the_next_transaction() {
    let users = t("tr_chain");
    let mut tracker = tracker(Backend::Postgres);
    ok(&mut tracker, Step::Begin);
    write(&mut tracker, users);
    ok(&mut tracker, Step::Commit { chain: true });
    assert!(tracker.in_transaction());
    write(&mut tracker, users);
    assert!(!served(users, now()), "held by the chained transaction");
    let before = now();
    ok(&mut tracker, Step::Rollback { chain: true });
    assert!(served(users, before), "a certain rollback");
    assert!(tracker.in_transaction());
    write(&mut tracker, users);
    ok(&mut tracker, Step::Commit { chain: false });
    assert!(!tracker.in_transaction());
    assert!(!served(users, before));
}

#[test]
fn dropped_tracker_bumps_what_it_held() {
    let users = t("tr_dropped");
    let before = now();
    let mut tracker = tracker(Backend::Postgres);
    ok(&mut tracker, Step::Begin);
    write(&mut tracker, users);
    drop(tracker);
    assert!(!served(users, before), "not certain it was a rollback");
    assert!(served(users, now()), "released");
}

#[test]
fn whole_raw_transaction_in_one_batch_commits_at_its_end() {
    let users = t("tr_raw_whole");
    let mut tracker = tracker(Backend::Postgres);
    let before = now();
    tracker.statement_started(
        &[
            Step::Begin,
            Step::Write(0..1),
            Step::NoWrite,
            Step::NoWrite,
            Step::NoWrite,
            Step::Commit { chain: false },
        ],
        &[users],
        true,
    );
    assert!(!served(users, now()));
    tracker.statement_finished(Outcome::Succeeded);
    assert!(!served(users, before));
    assert!(served(users, now()));
    assert!(!tracker.in_transaction());
}

#[test]
fn long_batch_opening_a_transaction_holds_until_its_commit() {
    let users = t("tr_long_batch");
    let mut tracker = tracker(Backend::Postgres);
    let mut steps = vec![Step::Begin, Step::Write(0..1)];
    steps.extend(std::iter::repeat_n(Step::NoWrite, 10));
    tracker.statement_started(&steps, &[users], true);
    tracker.statement_finished(Outcome::Succeeded);
    assert!(tracker.in_transaction());
    assert!(!served(users, now()), "held until the COMMIT");
    let before = now();
    ok(&mut tracker, Step::Commit { chain: false });
    assert!(!served(users, before));
    assert!(served(users, now()));
}

#[test]
fn failed_batch_holds_whatever_it_may_have_left_open() {
    let users = t("tr_failed_batch");
    let mut tracker = tracker(Backend::Sqlite);
    let before = now();
    tracker.statement_started(
        &[
            Step::Begin,
            Step::Write(0..1),
            Step::WriteAll,
            Step::Commit { chain: false },
        ],
        &[users],
        true,
    );
    tracker.statement_finished(Outcome::Failed);
    assert!(tracker.in_transaction(), "the transaction may be open");
    assert_eq!(tracker.access(&[users]), Access::Bypass);
    assert!(!served(users, now()), "held");
    ok(&mut tracker, Step::Rollback { chain: false });
    assert!(!served(users, before), "an unsure rollback bumps");
    assert!(served(users, now()));
}

#[test]
fn prepared_transaction_is_bumped_when_committed_from_anywhere() {
    let users = t("tr_prepared");
    let mut writer = tracker(Backend::Postgres);
    ok(&mut writer, Step::Begin);
    write(&mut writer, users);
    ok(&mut writer, Step::PrepareTransaction(42));
    assert!(!writer.in_transaction());
    drop(writer);
    assert!(
        !served(users, now()),
        "still pending after the connection closed"
    );
    let before = now();
    let mut other = tracker(Backend::Postgres);
    ok(&mut other, Step::CommitPrepared(42));
    assert!(!served(users, before));
    assert!(served(users, now()));
}

#[test]
fn mysql_autocommit_off_makes_every_write_transactional() {
    let users = t("tr_autocommit");
    let mut tracker = tracker(Backend::Mysql);
    ok(&mut tracker, Step::Autocommit(Some(false)));
    write(&mut tracker, users);
    assert!(!served(users, now()), "held until COMMIT");
    let before = now();
    ok(&mut tracker, Step::Commit { chain: false });
    assert!(!served(users, before));
    assert!(served(users, now()));
    assert!(tracker.in_transaction(), "the next statement opens another");
    write(&mut tracker, users);
    let during = now();
    ok(&mut tracker, Step::Autocommit(Some(true)));
    assert!(!served(users, during), "turning it on commits");
    assert!(!tracker.in_transaction());
}

#[test]
fn mysql_ddl_commits_the_open_transaction_even_when_it_fails() {
    let users = t("tr_mysql_ddl");
    let mut tracker = tracker(Backend::Mysql);
    ok(&mut tracker, Step::Begin);
    write(&mut tracker, users);
    let before = now();
    tracker.statement_started(&[Step::ImplicitCommit, Step::WriteAll], &[], false);
    tracker.statement_finished(Outcome::Failed);
    assert!(!served(users, before));
    assert!(!tracker.in_transaction());
}

#[test]
fn diesel_announcing_control_the_text_does_not_show_loses_track() {
    let users = t("tr_surprise");
    let mut tracker = tracker(Backend::Postgres);
    tracker.transaction_began();
    ok(&mut tracker, Step::NoWrite);
    assert!(tracker.in_transaction(), "assumed open");
    write(&mut tracker, users);
    assert!(!served(users, now()), "held");
    let before = now();
    ok(&mut tracker, Step::Rollback { chain: false });
    assert!(!served(users, before), "an unsure rollback bumps");
}

#[test]
fn test_transactions_make_writes_visible_at_statement_end_and_rollbacks_too() {
    let users = t("tr_test_tx");
    let mut tracker = WriteTracker::new(WriteVisibility::AtStatement, Backend::Sqlite);
    ok(&mut tracker, Step::Begin);
    assert_eq!(
        tracker.access(&[users]),
        Access::Full,
        "reads like production"
    );
    let before = now();
    ok(&mut tracker, Step::Savepoint(1));
    write(&mut tracker, users);
    assert!(!served(users, before));
    let after_write = now();
    assert!(served(users, after_write));
    tracker.statement_started(&[Step::RollbackTo(1)], &[], false);
    assert!(
        !served(users, now()),
        "in flight while the savepoint rolls back"
    );
    tracker.statement_finished(Outcome::Succeeded);
    assert!(!served(users, after_write), "what it undid was visible");
    assert!(served(users, now()));
}

#[test]
fn overlapping_statements_bump_when_the_last_finishes() {
    let users = t("tr_overlap");
    let mut tracker = tracker(Backend::Sqlite);
    tracker.statement_started(&[Step::NoWrite], &[], false); // a load still being read
    tracker.statement_started(&[Step::Write(0..1)], &[users], false);
    tracker.statement_finished(Outcome::Failed); // cannot tell which one failed
    let during = now();
    assert!(!served(users, during), "still in flight");
    tracker.statement_finished(Outcome::Succeeded);
    assert!(!served(users, during), "bumped conservatively");
    assert!(served(users, now()));
}
