//! One connection's transaction state and writes, turned into table-clock
//! updates (Contract 1), without knowing diesel: the diesel instrumentation
//! feeds it each statement's [`Step`]s and outcome, tests drive it directly.
//!
//! The connection is the authority: its statements, with what each one did
//! (it succeeded, it failed, it failed in a way that says no transaction was
//! open), decide whether it is inside a transaction. diesel's own
//! transaction events are only announcements, checked against the statement
//! that follows them.
//!
//! - A write marks its tables in flight before it runs (pre-invalidation),
//!   so no reader is served the old value between the database's commit and
//!   the bump.
//! - Outside a transaction a write is bumped when it succeeds; a failed
//!   statement wrote nothing (statements are atomic).
//! - Inside one its marks are held until the transaction ends: bumped by a
//!   commit, released without a bump by a rollback, but only when the
//!   rollback is certain.
//! - An outcome the tracker is not sure of counts as a commit: a failed
//!   COMMIT, a text of several statements that failed somewhere, a statement
//!   that may open or end a transaction in a way it cannot model. Whatever may
//!   still be pending stays held until a COMMIT or ROLLBACK is seen to
//!   succeed, and is bumped then.
//! - Dropping the tracker (connection closed, broken, or its instrumentation
//!   replaced) bumps whatever is held: the tracker cannot tell a close from
//!   a replacement.

use std::ops::Range;

use parking_lot::Mutex;

mod replay;

use replay::written;

use crate::cache::Access;
use crate::tables::{self, TableState, WriteMark};

/// When a connection's writes become visible to other connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteVisibility {
    /// At the commit of the transaction that made them (the real world).
    #[default]
    AtCommit,
    /// At the end of each statement, transaction or not: for connections in
    /// `begin_test_transaction`, which never commits yet is all the test
    /// sees. A rollback (of the transaction or to a savepoint) is then a
    /// write too: what it undoes was visible.
    AtStatement,
}

/// The database behind a connection: where their transaction rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// SQLite: `SAVEPOINT` outside a transaction opens one and its `RELEASE`
    /// commits it; a failed `COMMIT` may leave the transaction open.
    Sqlite,
    /// PostgreSQL: a failed `COMMIT` ends the transaction; `BEGIN` inside
    /// one is only a warning.
    Postgres,
    /// MySQL and MariaDB: `BEGIN` and DDL commit the open transaction
    /// first; `SET autocommit = 0` makes every statement transactional.
    Mysql,
    /// Unknown rules: every doubtful case is taken the conservative way.
    #[default]
    Other,
}

/// What one statement does, as the tracker needs to know it. Tables are
/// ranges into the table list given with the steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Changes no table data (reads included).
    NoWrite,
    /// Writes these tables.
    Write(Range<u32>),
    /// May write, tables unknown.
    WriteAll,
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`; `chain` opens the next transaction at once.
    Commit {
        /// `COMMIT AND CHAIN`.
        chain: bool,
    },
    /// `ROLLBACK`; `chain` opens the next transaction at once.
    Rollback {
        /// `ROLLBACK AND CHAIN`.
        chain: bool,
    },
    /// `SAVEPOINT name` (a hash of the normalized name).
    Savepoint(u64),
    /// `RELEASE [SAVEPOINT] name`.
    Release(u64),
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo(u64),
    /// `PREPARE TRANSACTION 'id'`: the transaction leaves the connection,
    /// still pending.
    PrepareTransaction(u64),
    /// `COMMIT PREPARED 'id'`, from any connection.
    CommitPrepared(u64),
    /// `ROLLBACK PREPARED 'id'`.
    RollbackPrepared(u64),
    /// MySQL `SET autocommit = 0 | 1`; `None` when the value is not a
    /// literal the tracker can read.
    Autocommit(Option<bool>),
    /// A statement that commits the open transaction before it runs, even
    /// when it then fails (MySQL's DDL, `LOCK TABLES`, ...).
    ImplicitCommit,
    /// A statement that may commit the open transaction first, by a state
    /// the tracker does not follow (MySQL's `UNLOCK TABLES` does under
    /// `LOCK TABLES`): what is held may have committed, and may go on.
    MaybeCommit,
    /// May open or end a transaction in a way the tracker cannot model
    /// (`XA`, a MySQL procedure): treated as a commit of everything pending
    /// and a transaction of unknown state afterwards.
    UnknownControl,
}

impl Step {
    fn is_control(&self) -> bool {
        !matches!(self, Step::NoWrite | Step::Write(_) | Step::WriteAll)
    }
}

/// How a statement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded.
    Succeeded,
    /// It failed.
    Failed,
    /// It failed because no transaction was open (SQLite's "cannot commit -
    /// no transaction is active"): the connection is certainly outside one.
    FailedOutsideTransaction,
}

/// A transaction control statement diesel announced with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Announced {
    Begin,
    Commit,
    Rollback,
}

/// A statement started and not finished.
#[derive(Debug)]
enum Pending {
    /// Changes nothing the tracker follows.
    Read,
    /// A write outside any transaction, marked: bumped when it succeeds.
    Autocommit(WriteMark),
    /// A write inside the transaction, already in the transaction's marks.
    InTransaction,
    /// Anything else: replayed against the state when it finishes.
    Replay(Replay),
}

/// A statement kept whole until it finishes.
#[derive(Debug, Default)]
struct Replay {
    /// Pre-invalidation of every table the text may write.
    mark: Option<WriteMark>,
    steps: Vec<Step>,
    tables: Vec<&'static TableState>,
    /// Several statements in one text: a failure says nothing of which.
    batch: bool,
}

/// Transactions prepared with `PREPARE TRANSACTION`: their marks, held
/// until `COMMIT PREPARED` or `ROLLBACK PREPARED` (from any connection).
fn prepared() -> &'static Mutex<Vec<(u64, WriteMark)>> {
    static PREPARED: Mutex<Vec<(u64, WriteMark)>> = Mutex::new(Vec::new());
    &PREPARED
}

/// Adds `written` to `mark`, opening it if needed (empty: every table).
fn add_marks(mark: &mut Option<WriteMark>, written: &[&'static TableState]) {
    match mark {
        Some(m) => m.extend(written),
        None => *mark = Some(tables::begin_write(written)),
    }
}

/// The transaction state and writes of one connection.
#[derive(Debug, Default)]
pub struct WriteTracker {
    visibility: WriteVisibility,
    backend: Backend,
    /// An explicit transaction is open (`BEGIN`, or SQLite's `SAVEPOINT`).
    open: bool,
    /// Every held mark belongs to a transaction certainly still open and
    /// uncommitted: only then may a rollback release them without a bump.
    uncertain: bool,
    /// MySQL's `autocommit`: off, every statement is in a transaction.
    autocommit_off: bool,
    /// `autocommit` was set to a value the tracker could not read, or may
    /// have been set where it could not see (a procedure): taken for off,
    /// and no rollback is certain (the writes may have autocommitted).
    autocommit_unknown: bool,
    /// PostgreSQL: a statement failed in the open transaction, which is
    /// aborted until a `ROLLBACK TO` a savepoint: it can only roll back.
    aborted: bool,
    /// Tables the open transaction wrote, marked in flight.
    held: Option<WriteMark>,
    /// Savepoints of the open transaction (hashes of their names).
    savepoints: Vec<u64>,
    /// The transaction was opened by a `SAVEPOINT` (SQLite): releasing its
    /// first savepoint commits it.
    opened_by_savepoint: bool,
    /// With [`WriteVisibility::AtStatement`]: tables written in the open
    /// transaction, which a rollback changes back.
    test_written: Vec<&'static TableState>,
    announced: Option<Announced>,
    pending: Vec<Pending>,
    /// Marks of statements that finished while others were still pending:
    /// bumped together when the last one finishes.
    deferred: Vec<WriteMark>,
    /// Replays kept for reuse, so statements allocate nothing once warm.
    spare: Vec<Replay>,
}

impl WriteTracker {
    /// A tracker for a new connection to `backend`.
    pub fn new(visibility: WriteVisibility, backend: Backend) -> Self {
        let mut tracker = WriteTracker::default();
        tracker.visibility = visibility;
        tracker.backend = backend;
        tracker
    }

    /// Whether statements now run inside a transaction (or may).
    pub fn in_transaction(&self) -> bool {
        self.open || self.autocommit_off
    }

    /// Whether `autocommit` may be off (MySQL): a pool turns it back on
    /// when the session ends, so the next session does not write into a
    /// transaction nobody commits.
    pub fn autocommit_may_be_off(&self) -> bool {
        self.autocommit_off
    }

    /// How a cached call on this connection may use a cache whose results
    /// depend on `deps`: outside a transaction fully; inside one it never
    /// stores (its snapshot may be old, its data uncommitted), and is not
    /// served tables the transaction wrote (it must see its own writes).
    #[inline]
    pub fn access(&self, deps: &[&'static TableState]) -> Access {
        if !self.in_transaction() || self.visibility == WriteVisibility::AtStatement {
            return Access::Full;
        }
        let Some(held) = &self.held else {
            return Access::ReadOnly;
        };
        let all = tables::table_all();
        let wrote = held
            .tables()
            .iter()
            .any(|w| std::ptr::eq(*w, all) || deps.iter().any(|d| std::ptr::eq(*w, *d)));
        if wrote {
            Access::Bypass
        } else {
            Access::ReadOnly
        }
    }

    /// diesel's transaction manager believes a transaction is open (or is
    /// broken) where the tracker saw none: the tracker takes it for a
    /// transaction of unknown writes until one is seen to end.
    pub fn diesel_in_transaction(&mut self) {
        if !self.in_transaction() && self.visibility == WriteVisibility::AtCommit {
            tracing::debug!("diesel reports a transaction the statements did not show");
            self.lost_track();
            self.open = true;
        }
    }

    /// diesel announced a `BEGIN` or `SAVEPOINT` (at any depth).
    pub fn transaction_began(&mut self) {
        self.announced = Some(Announced::Begin);
    }

    /// diesel announced a `COMMIT` or `RELEASE SAVEPOINT`.
    pub fn transaction_committing(&mut self) {
        self.announced = Some(Announced::Commit);
    }

    /// diesel announced a `ROLLBACK` or `ROLLBACK TO SAVEPOINT`.
    pub fn transaction_rolling_back(&mut self) {
        self.announced = Some(Announced::Rollback);
    }

    /// A statement starts; `steps` are its parts in order, their tables in
    /// `tables`; `batch` when the text holds several statements (a failure
    /// then says nothing of which one failed).
    pub fn statement_started(
        &mut self,
        steps: &[Step],
        tables: &[&'static TableState],
        batch: bool,
    ) {
        let surprise = self.announced.take().is_some_and(|announced| {
            !steps.iter().any(|s| match announced {
                Announced::Begin => matches!(s, Step::Begin | Step::Savepoint(_)),
                Announced::Commit => matches!(s, Step::Commit { .. } | Step::Release(_)),
                Announced::Rollback => matches!(s, Step::Rollback { .. } | Step::RollbackTo(_)),
            })
        });
        let pending = match steps {
            _ if surprise => self.replay(steps, tables, batch, true),
            [Step::NoWrite] | [] => Pending::Read,
            [Step::Write(_) | Step::WriteAll] if !batch => {
                let written = written(&steps[0], tables);
                if self.in_transaction() && self.visibility == WriteVisibility::AtCommit {
                    add_marks(&mut self.held, written);
                    Pending::InTransaction
                } else {
                    if self.in_transaction() {
                        self.note_test_write(written);
                    }
                    Pending::Autocommit(tables::begin_write(written))
                }
            }
            _ => self.replay(steps, tables, batch, false),
        };
        self.pending.push(pending);
    }

    /// Keeps a statement to replay when it finishes, its writes marked now.
    fn replay(
        &mut self,
        steps: &[Step],
        tables: &[&'static TableState],
        batch: bool,
        surprise: bool,
    ) -> Pending {
        let mut replay = self.spare.pop().unwrap_or_default();
        replay.steps.extend_from_slice(steps);
        if surprise {
            // diesel announced transaction control this text does not show.
            replay.steps.push(Step::UnknownControl);
        }
        replay.tables.extend_from_slice(tables);
        replay.batch = batch;
        for step in &replay.steps {
            match step {
                Step::Write(_) | Step::WriteAll => {
                    add_marks(&mut replay.mark, written(step, &replay.tables));
                }
                Step::UnknownControl => add_marks(&mut replay.mark, &[]),
                Step::CommitPrepared(id) if !prepared().lock().iter().any(|(p, _)| p == id) => {
                    // Prepared elsewhere: its tables are unknown.
                    add_marks(&mut replay.mark, &[]);
                }
                Step::Rollback { .. } | Step::RollbackTo(_)
                    if self.visibility == WriteVisibility::AtStatement
                        && !self.test_written.is_empty() =>
                {
                    // What the rollback undoes was visible: a write.
                    add_marks(&mut replay.mark, &self.test_written);
                }
                _ => {}
            }
        }
        Pending::Replay(replay)
    }

    /// The statement started last finished.
    pub fn statement_finished(&mut self, outcome: Outcome) {
        let Some(done) = self.pending.pop() else {
            return;
        };
        // Another statement still open (a lazily finished load): a failure
        // cannot be told apart from it, so it counts as an unsure outcome.
        let sure = self.pending.is_empty();
        match done {
            Pending::Read => {}
            Pending::Autocommit(mark) => {
                if !sure {
                    self.deferred.push(mark);
                } else if outcome == Outcome::Succeeded {
                    mark.commit();
                } else {
                    // Statements are atomic: a failed one wrote nothing. A
                    // test transaction may have been rolled back with it.
                    drop(mark);
                    if self.in_transaction() && self.backend != Backend::Postgres {
                        self.test_rollback();
                    }
                }
            }
            Pending::InTransaction => {
                if outcome != Outcome::Succeeded {
                    self.statement_failed_in_transaction();
                }
            }
            Pending::Replay(mut replay) => {
                if outcome == Outcome::Succeeded {
                    self.replay_succeeded(&mut replay);
                } else if sure && !replay.batch {
                    self.replay_failed(&mut replay, outcome);
                } else {
                    self.replay_unsure(&mut replay);
                }
                replay.steps.clear();
                replay.tables.clear();
                if self.spare.len() < 4 {
                    self.spare.push(replay);
                }
            }
        }
        if self.pending.is_empty() {
            for mark in self.deferred.drain(..) {
                mark.commit();
            }
        }
    }
}

impl Drop for WriteTracker {
    fn drop(&mut self) {
        // Closed mid-transaction, or the instrumentation replaced while
        // the transaction goes on: not a certain rollback.
        self.commit_held();
        for mark in self.deferred.drain(..) {
            mark.commit();
        }
        for pending in self.pending.drain(..) {
            match pending {
                Pending::Autocommit(mark) => mark.commit(),
                Pending::Replay(Replay {
                    mark: Some(mark), ..
                }) => mark.commit(),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
