//! What a finished statement did to its connection's transaction, step by
//! step: when it succeeded, when it failed (a single statement: its last
//! step failed, the others ran), and when the outcome cannot be attributed
//! (several statements, one of which failed; another statement still open),
//! which counts as a commit of anything that may have committed and a
//! transaction of unknown state.

use super::{add_marks, prepared, Backend, Outcome, Replay, Step, WriteTracker, WriteVisibility};
use crate::tables::{self, TableState, WriteMark};

impl WriteTracker {
    /// A write failed inside the transaction. PostgreSQL keeps the
    /// transaction (aborted) until a rollback; SQLite and MySQL may roll it
    /// back on their own (busy, deadlock, full disk): a later ROLLBACK is
    /// then no proof that the held writes were undone.
    pub(super) fn statement_failed_in_transaction(&mut self) {
        if self.backend == Backend::Postgres {
            self.aborted = true;
        } else {
            self.uncertain = true;
        }
    }

    pub(super) fn replay_succeeded(&mut self, replay: &mut Replay) {
        let mut commits: Option<WriteMark> = None;
        for step in &replay.steps {
            let was_in = self.in_transaction();
            self.succeeded(step, &replay.tables, &mut commits);
            if self.backend == Backend::Postgres
                && replay.batch
                && !was_in
                && self.in_transaction()
                && self.visibility == WriteVisibility::AtCommit
            {
                // PostgreSQL runs a text of several statements as one
                // implicit transaction, which a BEGIN turns into the
                // explicit one: what the text wrote before commits with it.
                if let Some(before) = commits.take() {
                    add_marks(&mut self.held, before.tables());
                }
            }
        }
        if let Some(commits) = commits {
            commits.commit();
        }
        self.finish_replay_mark(replay);
    }

    /// The replay's own pre-invalidation mark ends: its tables were bumped
    /// or moved into the transaction's marks by now. With a test
    /// transaction a rollback's tables are bumped here.
    pub(super) fn finish_replay_mark(&mut self, replay: &mut Replay) {
        if let Some(mark) = replay.mark.take() {
            if self.visibility == WriteVisibility::AtStatement
                || replay
                    .steps
                    .iter()
                    .any(|s| matches!(s, Step::UnknownControl | Step::CommitPrepared(_)))
            {
                mark.commit();
            } else {
                drop(mark);
            }
        }
    }

    /// One step of a statement that succeeded; writes to bump go to `commits`.
    pub(super) fn succeeded(
        &mut self,
        step: &Step,
        all_tables: &[&'static TableState],
        commits: &mut Option<WriteMark>,
    ) {
        match step {
            Step::NoWrite => {}
            Step::Write(_) | Step::WriteAll => {
                let written = written(step, all_tables);
                if self.in_transaction() && self.visibility == WriteVisibility::AtCommit {
                    add_marks(&mut self.held, written);
                } else {
                    if self.in_transaction() {
                        self.note_test_write(written);
                    }
                    add_marks(commits, written);
                }
            }
            Step::Begin => {
                if !self.in_transaction() {
                    self.begin();
                } else {
                    match self.backend {
                        // A warning: the same transaction goes on.
                        Backend::Postgres => {}
                        // SQLite refuses a BEGIN inside a transaction, so
                        // there was none: what was held had ended. MySQL
                        // commits the open transaction first.
                        Backend::Sqlite | Backend::Mysql => {
                            self.commit_held();
                            self.begin();
                        }
                        Backend::Other => {
                            self.lost_track();
                            self.open = true;
                        }
                    }
                }
            }
            Step::Commit { chain } => {
                self.commit_held();
                self.end(*chain);
            }
            Step::Rollback { chain } => {
                if self.uncertain {
                    self.commit_held();
                } else {
                    self.held = None; // released without a bump
                }
                self.test_rollback_done();
                self.end(*chain);
            }
            Step::Savepoint(name) => {
                if !self.in_transaction() {
                    if self.backend == Backend::Sqlite {
                        self.begin();
                        self.opened_by_savepoint = true;
                    } else {
                        // Cannot succeed outside a transaction here: the
                        // tracker was wrong about the state.
                        self.open = true;
                        self.uncertain = true;
                    }
                }
                self.savepoints.push(*name);
            }
            Step::Release(name) => match self.savepoints.iter().rposition(|s| s == name) {
                Some(at) if self.in_transaction() => {
                    self.savepoints.truncate(at);
                    if self.savepoints.is_empty() && self.opened_by_savepoint {
                        self.commit_held();
                        self.end(false);
                    }
                }
                _ => self.lost_track(),
            },
            Step::RollbackTo(name) => {
                // The undone writes stay held: a commit bumps them all.
                match self.savepoints.iter().rposition(|s| s == name) {
                    Some(at) if self.in_transaction() => {
                        self.savepoints.truncate(at + 1);
                        self.aborted = false;
                    }
                    _ => self.lost_track(),
                }
            }
            Step::PrepareTransaction(_) if self.aborted || self.uncertain => {
                // PostgreSQL rolls an aborted transaction back instead, and
                // one the tracker lost track of may not exist: no prepared
                // transaction would ever release these marks.
                self.commit_held();
                self.end(false);
            }
            Step::PrepareTransaction(id) => {
                if let Some(mark) = self.held.take() {
                    prepared().lock().push((*id, mark));
                }
                self.end(false);
            }
            Step::CommitPrepared(id) => {
                let mark = take_prepared(*id);
                if let Some(mark) = mark {
                    mark.commit();
                }
            }
            Step::RollbackPrepared(id) => drop(take_prepared(*id)),
            Step::Autocommit(Some(false)) => {
                self.autocommit_off = true;
                self.autocommit_unknown = false;
            }
            Step::Autocommit(Some(true)) => {
                self.autocommit_unknown = false;
                if self.autocommit_off {
                    // Turning it back on commits the open transaction.
                    self.autocommit_off = false;
                    self.commit_held();
                    self.end(false);
                }
            }
            Step::Autocommit(None) => {
                self.autocommit_off = true;
                self.autocommit_unknown = true;
                self.lost_track();
            }
            Step::ImplicitCommit => {
                if self.in_transaction() {
                    self.commit_held();
                    self.end(false);
                }
            }
            Step::MaybeCommit => {
                if self.in_transaction() {
                    self.lost_track();
                }
            }
            Step::UnknownControl => {
                self.lost_track();
                self.open = true;
                if self.visibility == WriteVisibility::AtCommit {
                    // What ran unseen (a procedure, a prepared statement)
                    // may have written any table in a transaction it left
                    // open: every table stays in flight until it ends.
                    add_marks(&mut self.held, &[]);
                }
                if matches!(self.backend, Backend::Mysql | Backend::Other) {
                    // It may have set `autocommit` too.
                    self.autocommit_off = true;
                    self.autocommit_unknown = true;
                }
            }
        }
    }

    /// A single statement that failed, its steps but the last having run.
    pub(super) fn replay_failed(&mut self, replay: &mut Replay, outcome: Outcome) {
        let Some((last, before)) = replay.steps.split_last() else {
            return;
        };
        let mut commits: Option<WriteMark> = None;
        for step in before {
            self.succeeded(step, &replay.tables, &mut commits);
        }
        if let Some(commits) = commits {
            commits.commit();
        }
        if outcome == Outcome::FailedOutsideTransaction
            && matches!(last, Step::Commit { .. } | Step::Rollback { .. })
        {
            // No transaction was open: whatever was held had committed.
            self.commit_held();
            self.end(false);
            self.finish_replay_mark(replay);
            return;
        }
        match last {
            Step::NoWrite
            | Step::Savepoint(_)
            | Step::Autocommit(_)
            | Step::RollbackPrepared(_) => {}
            Step::Write(_) | Step::WriteAll => {
                if self.in_transaction() {
                    self.statement_failed_in_transaction();
                }
            }
            Step::Begin => {
                if self.in_transaction() {
                    // MySQL commits the open transaction even so.
                    self.bump_held();
                    self.uncertain = true;
                }
            }
            Step::Commit { .. } => {
                if self.backend == Backend::Postgres {
                    // The server ended the transaction; whether it
                    // committed is not certain (a lost connection).
                    self.commit_held();
                    self.end(false);
                } else {
                    // It may still be open (SQLite's busy COMMIT), or not.
                    self.bump_held();
                    self.uncertain = true;
                }
            }
            Step::Rollback { .. } | Step::Release(_) | Step::RollbackTo(_) => {
                if self.in_transaction() {
                    self.bump_held();
                    self.uncertain = true;
                }
            }
            Step::PrepareTransaction(_) => {
                // It becomes a rollback, unless the connection was lost.
                self.commit_held();
                self.end(false);
            }
            Step::CommitPrepared(id) => {
                if let Some((_, mark)) = prepared().lock().iter().find(|(p, _)| p == id) {
                    mark.invalidate();
                }
            }
            Step::ImplicitCommit | Step::MaybeCommit | Step::UnknownControl => {
                let mut commits = None;
                self.succeeded(last, &replay.tables, &mut commits);
            }
        }
        self.finish_replay_mark(replay);
    }

    /// Several statements failed somewhere, or the outcome cannot be
    /// attributed: every write may have committed, and a transaction may
    /// be open or not.
    pub(super) fn replay_unsure(&mut self, replay: &mut Replay) {
        let was_in = self.in_transaction();
        let controls = replay.steps.iter().any(Step::is_control);
        self.bump_held();
        if let Some(mark) = replay.mark.take() {
            if (was_in || controls) && self.visibility == WriteVisibility::AtCommit {
                // Perhaps still pending in a transaction: bumped now, held
                // until it ends, bumped again then.
                mark.invalidate();
                add_marks(&mut self.held, mark.tables());
            } else {
                mark.commit();
            }
        }
        if controls {
            for step in &replay.steps {
                if let Step::CommitPrepared(id) = step {
                    if let Some((_, mark)) = prepared().lock().iter().find(|(p, _)| p == id) {
                        mark.invalidate();
                    }
                }
            }
            if replay
                .steps
                .iter()
                .any(|s| matches!(s, Step::Autocommit(_)))
            {
                // It may have turned autocommit off (or on, committing).
                self.autocommit_off = true;
                self.autocommit_unknown = true;
            }
            self.test_rollback();
            self.lost_track();
            self.open = true;
        } else if was_in {
            self.statement_failed_in_transaction();
        }
    }

    /// The tracker cannot tell whether a transaction is open: it holds
    /// whatever it holds (bumped already, and again when it ends).
    pub(super) fn lost_track(&mut self) {
        self.bump_held();
        self.uncertain = true;
    }

    pub(super) fn begin(&mut self) {
        self.open = true;
        self.uncertain = false;
        self.aborted = false;
        self.savepoints.clear();
        self.opened_by_savepoint = false;
    }

    /// The transaction ended; `chain` opens the next one at once.
    pub(super) fn end(&mut self, chain: bool) {
        self.open = false;
        self.aborted = false;
        // With autocommit unknown, what follows may autocommit unseen.
        self.uncertain = self.autocommit_unknown;
        self.savepoints.clear();
        self.opened_by_savepoint = false;
        self.test_written.clear();
        if chain {
            self.begin();
        }
    }

    /// The held writes committed (or may have): bump and release them.
    pub(super) fn commit_held(&mut self) {
        if let Some(held) = self.held.take() {
            held.commit();
        }
    }

    /// The held writes may have committed: bump them, keep holding.
    pub(super) fn bump_held(&mut self) {
        if let Some(held) = &self.held {
            held.invalidate();
        }
    }

    pub(super) fn note_test_write(&mut self, written: &[&'static TableState]) {
        let written = if written.is_empty() {
            tables::every_table()
        } else {
            written
        };
        for t in written {
            if !self.test_written.iter().any(|w| std::ptr::eq(*w, *t)) {
                self.test_written.push(t);
            }
        }
    }

    /// A test transaction may have been rolled back without a statement
    /// saying so: what it wrote changes back.
    pub(super) fn test_rollback(&mut self) {
        if self.visibility == WriteVisibility::AtStatement && !self.test_written.is_empty() {
            tables::begin_write(&self.test_written).commit();
        }
    }

    pub(super) fn test_rollback_done(&mut self) {
        self.test_written.clear();
    }
}

/// The tables of a write step (empty: every table).
pub(super) fn written<'t>(
    step: &Step,
    tables: &'t [&'static TableState],
) -> &'t [&'static TableState] {
    match step {
        Step::Write(range) => tables
            .get(range.start as usize..range.end as usize)
            .unwrap_or_default(),
        _ => &[],
    }
}

pub(super) fn take_prepared(id: u64) -> Option<WriteMark> {
    let mut prepared = prepared().lock();
    let at = prepared.iter().position(|(p, _)| *p == id)?;
    Some(prepared.swap_remove(at).1)
}
