//! Turns one connection's statements and transaction events into table-clock
//! updates (Contract 1), without knowing diesel: the diesel instrumentation
//! feeds it, tests drive it directly.
//!
//! - A write marks its tables in flight when the statement starts
//!   (pre-invalidation), so no reader can be served the old value between the
//!   database's commit and the bump.
//! - Autocommit: bump and release when the statement finishes; a failed
//!   statement releases without a bump.
//! - In a transaction: the marks stay until the outermost COMMIT has
//!   *succeeded* (bump, release) or the transaction rolls back (release).
//!   Savepoints fold into the outer transaction: a rolled-back savepoint keeps
//!   every mark, so its parent's writes stay pending.
//! - Dropping the tracker (connection closed, broken, panicked) releases every
//!   mark: the database rolled the transaction back.
//! - A transaction opened by raw SQL (`BEGIN` inside a `batch_execute` string)
//!   is followed by its text, as diesel emits no events for it.

use crate::tables::{self, TableState, WriteMark};
use crate::transaction::TransactionGuard;

/// Adds `written` to `mark`, opening it if needed (empty: every table).
fn add_marks(mark: &mut Option<WriteMark>, written: &[&'static TableState]) {
    match mark {
        Some(m) => m.extend(written),
        None => *mark = Some(tables::begin_write(written)),
    }
}

/// When a connection's writes become visible to other connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteVisibility {
    /// At the commit of the transaction that made them (the real world).
    #[default]
    AtCommit,
    /// At the end of each statement, transaction or not: for connections in
    /// `begin_test_transaction`, which never commits yet is all the test sees.
    AtStatement,
}

/// What one statement does, as the tracker needs to know it.
#[derive(Debug, Clone, Copy)]
pub enum Step<'t> {
    /// Changes no table data (reads included).
    NoWrite,
    /// Writes these tables.
    Write(&'t [&'static TableState]),
    /// May write, tables unknown.
    WriteAll,
    /// Opens a transaction by its text (`BEGIN`).
    Begin,
    /// Commits by its text (`COMMIT`, `END`).
    Commit,
    /// Rolls back by its text (`ROLLBACK`).
    Rollback,
}

/// A statement started and not finished.
#[derive(Debug)]
struct Pending {
    /// Marks to bump when the statement succeeds.
    mark: Option<WriteMark>,
    /// Whether this statement is the COMMIT diesel announced.
    commits_transaction: bool,
    /// Several statements in one text: a failure tells nothing of which one.
    batch: bool,
}

/// The write state of one connection.
#[derive(Debug, Default)]
pub struct WriteTracker {
    visibility: WriteVisibility,
    /// Depth diesel announced (BeginTransaction / Commit / Rollback events).
    depth: u32,
    /// Diesel announced the outermost commit; its COMMIT statement is next.
    committing: bool,
    /// A transaction opened by raw SQL text.
    raw: bool,
    /// Tables written by the open transaction, marked in flight.
    transaction_marks: Option<WriteMark>,
    /// The open transaction, as the calling thread's cache sees it.
    transaction: Option<TransactionGuard>,
    pending: Vec<Pending>,
    /// Marks of statements that finished while others were still pending:
    /// bumped together when the last one finishes.
    deferred: Vec<WriteMark>,
}

impl WriteTracker {
    /// A tracker for a new connection.
    pub fn new(visibility: WriteVisibility) -> Self {
        WriteTracker {
            visibility,
            ..WriteTracker::default()
        }
    }

    fn in_transaction(&self) -> bool {
        self.depth > 0 || self.raw
    }

    fn open_transaction(&mut self) {
        if self.visibility == WriteVisibility::AtCommit && self.transaction.is_none() {
            self.transaction = Some(TransactionGuard::begin());
        }
    }

    fn close_transaction(&mut self, committed: bool) -> Option<WriteMark> {
        self.transaction = None;
        self.raw = false;
        let marks = self.transaction_marks.take();
        if committed {
            marks
        } else {
            None // dropped: released without a bump
        }
    }

    fn mark_in_transaction(&mut self, written: &[&'static TableState]) {
        add_marks(&mut self.transaction_marks, written);
        if let Some(tx) = &self.transaction {
            tx.wrote(written);
        }
    }

    /// A statement starts; `steps` are its parts in order (one, or several
    /// for a text holding many statements).
    pub fn statement_started(&mut self, steps: &[Step<'_>]) {
        let mut autocommit: Option<WriteMark> = None;
        let commits_transaction = self.committing;
        for step in steps {
            match *step {
                Step::NoWrite => {}
                Step::Write(written) => self.write(&mut autocommit, written),
                Step::WriteAll => self.write(&mut autocommit, &[]),
                // diesel's own BEGIN/COMMIT: its events already told us.
                Step::Begin if self.depth > 0 => {}
                Step::Begin => {
                    self.raw = true;
                    self.open_transaction();
                }
                Step::Commit | Step::Rollback if self.depth > 0 || !self.raw => {}
                Step::Commit => {
                    // A raw transaction commits with this statement: its marks
                    // are bumped when the statement succeeds.
                    if let Some(marks) = self.close_transaction(true) {
                        add_marks(&mut autocommit, marks.tables());
                    }
                }
                Step::Rollback => {
                    self.close_transaction(false);
                }
            }
        }
        self.pending.push(Pending {
            mark: autocommit,
            commits_transaction,
            batch: steps.len() > 1,
        });
    }

    /// A write: into the open transaction's marks, or this statement's own.
    /// An empty `written` means "tables unknown".
    fn write(&mut self, autocommit: &mut Option<WriteMark>, written: &[&'static TableState]) {
        if self.in_transaction() && self.visibility == WriteVisibility::AtCommit {
            self.mark_in_transaction(written);
        } else {
            add_marks(autocommit, written);
        }
    }

    /// The statement started last finished, `failed` if it returned an error.
    pub fn statement_finished(&mut self, failed: bool) {
        let Some(done) = self.pending.pop() else {
            return;
        };
        if done.commits_transaction {
            self.committing = false;
            if !failed {
                // The outermost COMMIT succeeded: the writes are visible now.
                self.depth = 0;
                if let Some(marks) = self.close_transaction(true) {
                    marks.commit();
                }
            }
            // A failed COMMIT is followed by diesel's rollback event.
        }
        if let Some(mark) = done.mark {
            if !self.pending.is_empty() {
                // Another statement is still open (a lazily finished load):
                // which one failed cannot be told apart, so bump later, always.
                self.deferred.push(mark);
            } else if failed && !done.batch {
                drop(mark); // nothing was written
            } else {
                mark.commit();
            }
        }
        if self.pending.is_empty() {
            for mark in self.deferred.drain(..) {
                mark.commit();
            }
        }
    }

    /// Diesel began a transaction or a savepoint at `depth` (1 = outermost).
    pub fn transaction_began(&mut self, depth: u32) {
        self.depth = depth;
        if depth == 1 {
            self.open_transaction();
        }
    }

    /// Diesel is about to commit at `depth`; the outermost commit is done
    /// only when its COMMIT statement succeeds.
    pub fn transaction_committing(&mut self, depth: u32) {
        if depth <= 1 {
            self.committing = true;
        } else {
            self.depth = depth - 1; // RELEASE SAVEPOINT: folds into the parent
        }
    }

    /// Diesel rolled back at `depth`: the whole transaction when 1, else a
    /// savepoint, which keeps every mark (the parent's writes stay pending).
    pub fn transaction_rolled_back(&mut self, depth: u32) {
        if depth <= 1 {
            self.depth = 0;
            self.committing = false;
            self.close_transaction(false);
        } else {
            self.depth = depth - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{fresh, now, table};
    use crate::transaction::{access, Access};

    fn t(name: &str) -> &'static TableState {
        table(name)
    }

    #[test]
    fn autocommit_write_pre_invalidates_then_bumps() {
        let users = t("tr_auto");
        let mut tracker = WriteTracker::default();
        let before = now();
        tracker.statement_started(&[Step::Write(&[users])]);
        assert!(!fresh(&[users], now()), "in flight");
        tracker.statement_finished(false);
        assert!(!fresh(&[users], before));
        assert!(fresh(&[users], now()));
    }

    #[test]
    fn failed_statement_releases_without_bump() {
        let users = t("tr_failed");
        let mut tracker = WriteTracker::default();
        let before = now();
        tracker.statement_started(&[Step::Write(&[users])]);
        tracker.statement_finished(true);
        assert!(fresh(&[users], before));
    }

    #[test]
    fn transaction_bumps_only_after_successful_commit() {
        let users = t("tr_commit");
        let mut tracker = WriteTracker::default();
        let before = now();
        tracker.transaction_began(1);
        tracker.statement_started(&[Step::Begin]);
        tracker.statement_finished(false);
        tracker.statement_started(&[Step::Write(&[users])]);
        tracker.statement_finished(false);
        assert!(!fresh(&[users], now()), "pending until commit");
        assert_eq!(
            access(&[users]),
            Access::Bypass,
            "the transaction sees its own writes"
        );
        tracker.transaction_committing(1);
        tracker.statement_started(&[Step::Commit]);
        assert!(
            !fresh(&[users], now()),
            "not committed before COMMIT finishes"
        );
        tracker.statement_finished(false);
        assert!(!fresh(&[users], before));
        assert!(fresh(&[users], now()));
        assert_eq!(access(&[users]), Access::Full);
    }

    #[test]
    fn rollback_releases_without_bump_and_failed_commit_is_a_rollback() {
        let users = t("tr_rollback");
        for failed_commit in [false, true] {
            let mut tracker = WriteTracker::default();
            let before = now();
            tracker.transaction_began(1);
            tracker.statement_started(&[Step::Write(&[users])]);
            tracker.statement_finished(false);
            if failed_commit {
                tracker.transaction_committing(1);
                tracker.statement_started(&[Step::Commit]);
                tracker.statement_finished(true);
                assert!(
                    !fresh(&[users], now()),
                    "still pending after a failed COMMIT"
                );
            }
            tracker.transaction_rolled_back(1);
            assert!(fresh(&[users], before), "rolled back: nothing changed");
        }
    }

    #[test]
    fn savepoint_rollback_keeps_the_parents_writes_pending() {
        let users = t("tr_sp_parent");
        let posts = t("tr_sp_child");
        let mut tracker = WriteTracker::default();
        let before = now();
        tracker.transaction_began(1);
        tracker.statement_started(&[Step::Write(&[users])]);
        tracker.statement_finished(false);
        tracker.transaction_began(2);
        tracker.statement_started(&[Step::Write(&[posts])]);
        tracker.statement_finished(false);
        tracker.transaction_rolled_back(2);
        assert!(
            !fresh(&[users], now()),
            "the parent's write is still pending"
        );
        tracker.transaction_committing(1);
        tracker.statement_started(&[Step::Commit]);
        tracker.statement_finished(false);
        assert!(!fresh(&[users], before));
        assert!(fresh(&[users], now()));
    }

    #[test]
    fn dropped_connection_releases_its_marks() {
        let users = t("tr_dropped");
        let before = now();
        let mut tracker = WriteTracker::default();
        tracker.transaction_began(1);
        tracker.statement_started(&[Step::Write(&[users])]);
        tracker.statement_finished(false);
        drop(tracker);
        assert!(fresh(&[users], before));
        assert_eq!(access(&[users]), Access::Full);
    }

    #[test]
    fn raw_begin_in_a_batch_holds_marks_until_raw_commit() {
        let users = t("tr_raw");
        let mut tracker = WriteTracker::default();
        let before = now();
        tracker.statement_started(&[Step::Begin, Step::Write(&[users])]);
        tracker.statement_finished(false);
        assert!(!fresh(&[users], now()), "the raw transaction is still open");
        tracker.statement_started(&[Step::Commit]);
        assert!(!fresh(&[users], now()));
        tracker.statement_finished(false);
        assert!(!fresh(&[users], before));
        assert!(fresh(&[users], now()));
    }

    #[test]
    fn whole_raw_transaction_in_one_batch_commits_at_its_end() {
        let users = t("tr_raw_whole");
        let mut tracker = WriteTracker::default();
        let before = now();
        tracker.statement_started(&[Step::Begin, Step::Write(&[users]), Step::Commit]);
        assert!(!fresh(&[users], now()));
        tracker.statement_finished(false);
        assert!(!fresh(&[users], before));
        assert!(fresh(&[users], now()));
    }

    #[test]
    fn test_transactions_make_writes_visible_at_statement_end() {
        let users = t("tr_test_tx");
        let mut tracker = WriteTracker::new(WriteVisibility::AtStatement);
        let before = now();
        tracker.transaction_began(1);
        assert_eq!(
            access(&[users]),
            Access::Full,
            "no bypass: the test reads like production"
        );
        tracker.statement_started(&[Step::Write(&[users])]);
        tracker.statement_finished(false);
        assert!(!fresh(&[users], before));
        assert!(fresh(&[users], now()));
    }

    #[test]
    fn overlapping_statements_bump_when_the_last_finishes() {
        let users = t("tr_overlap");
        let mut tracker = WriteTracker::default();
        tracker.statement_started(&[Step::NoWrite]); // a load still being read
        tracker.statement_started(&[Step::Write(&[users])]);
        tracker.statement_finished(true); // cannot tell which one failed
        let during = now();
        assert!(!fresh(&[users], during), "still in flight");
        tracker.statement_finished(false);
        assert!(!fresh(&[users], during), "bumped conservatively");
        assert!(fresh(&[users], now()));
    }
}
