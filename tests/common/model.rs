//! A model-based test of Contract 1 ("a cached read is never staler than the
//! last committed write"), shared by `tests/model*.rs`.
//!
//! A sequence is a list of random operations on one to three instrumented
//! *writer* connections against one small table (`model_rows`: a few rows of
//! integers). After every operation, and after every step inside a
//! transaction, a separate instrumented *reader* calls the cached function
//! for every row id, and each result is compared with the value the
//! database itself holds at that moment, read on a *plain* connection dbkit
//! does not track (an autocommit read sees committed data on SQLite in WAL
//! mode, PostgreSQL and MariaDB).
//!
//! The model only generates operations. It never predicts a value: the
//! committed value always comes from the database, so the checker needs no
//! model of SQL semantics. What the model does follow is which writer may
//! hold row locks (PostgreSQL) or the table (MariaDB; SQLite's write lock),
//! so that a sequence, which runs on one thread, never waits on itself. It
//! over-approximates: a transaction it is unsure of counts as open. A lock
//! timeout on every writer is the safety net if it is wrong anyway.
//!
//! Seeds: `DBKIT_MODEL_SEED` (else a fixed seed) plus the sequence index;
//! `DBKIT_MODEL_SEQUENCES` overrides how many sequences run. A failure is
//! re-run on a fresh database, shrunk (operations, transaction steps and
//! batch statements dropped one at a time while it keeps failing the same
//! way) and reported as a readable program with what each step returned.

use std::fmt::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

diesel::table! {
    /// The model's table: row 0 is a sentinel that only failing inserts
    /// touch; ids 1..=4 are read and written (4 starts absent).
    model_rows (id) {
        id -> Integer,
        v -> Integer,
    }
}

diesel::table! {
    /// Rows referencing `model_rows`: an orphan (parent 99) violates the
    /// foreign key, which fails the COMMIT where the check is deferred.
    model_child (id) {
        id -> Integer,
        parent_id -> Integer,
    }
}

/// The ids the reader checks after every step.
pub const IDS: [i32; 4] = [1, 2, 3, 4];
/// A row no write changes: inserting it again always fails.
pub const SENTINEL: i32 = 0;
/// A parent id no row has.
pub const MISSING_PARENT: i32 = 99;
/// The rows every sequence starts from, as SQL values.
pub const INITIAL_ROWS: &str = "(0, 0), (1, 0), (2, 0), (3, 0)";

/// The tables and rows of a fresh SQLite database (WAL: readers never wait).
pub const SQLITE_SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    CREATE TABLE model_rows (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
    CREATE TABLE model_child (
        id INTEGER PRIMARY KEY,
        parent_id INTEGER NOT NULL REFERENCES model_rows (id)
    );
    CREATE TABLE model_scratch (x INTEGER);
    INSERT INTO model_rows VALUES (0, 0), (1, 0), (2, 0), (3, 0);
";

/// The tables and rows of a fresh PostgreSQL database.
pub const POSTGRES_SCHEMA: &str = "
    CREATE TABLE model_rows (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
    CREATE TABLE model_child (
        id SERIAL PRIMARY KEY,
        parent_id INTEGER NOT NULL
            REFERENCES model_rows (id) DEFERRABLE INITIALLY DEFERRED
    );
    CREATE TABLE model_scratch (x INTEGER);
    INSERT INTO model_rows VALUES (0, 0), (1, 0), (2, 0), (3, 0);
";

/// The tables and rows of a fresh MariaDB database.
pub const MYSQL_SCHEMA: &str = "
    CREATE TABLE model_rows (id INTEGER PRIMARY KEY, v INTEGER NOT NULL) ENGINE = InnoDB;
    CREATE TABLE model_child (
        id INTEGER AUTO_INCREMENT PRIMARY KEY,
        parent_id INTEGER NOT NULL,
        FOREIGN KEY (parent_id) REFERENCES model_rows (id)
    ) ENGINE = InnoDB;
    CREATE TABLE model_scratch (x INTEGER) ENGINE = InnoDB;
    INSERT INTO model_rows VALUES (0, 0), (1, 0), (2, 0), (3, 0);
";

// ---------------------------------------------------------------------------
// Randomness

/// splitmix64: small, seedable, good enough to pick operations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index into `weights`, each picked in proportion to its weight.
    pub fn weighted(&mut self, weights: &[usize]) -> usize {
        let total: usize = weights.iter().sum();
        let mut at = self.below(total.max(1));
        for (i, w) in weights.iter().enumerate() {
            if at < *w {
                return i;
            }
            at -= w;
        }
        weights.len() - 1
    }
}

// ---------------------------------------------------------------------------
// Operations

/// The database a model runs against: where the generated SQL and the
/// transaction rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

/// One write to the model's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Update {
        id: i32,
        v: i32,
    },
    /// Fails when the row exists.
    Insert {
        id: i32,
        v: i32,
    },
    /// Inserts or replaces.
    Upsert {
        id: i32,
        v: i32,
    },
    /// Two rows in one statement (diesel: a `Vec` insert, which SQLite runs
    /// as one INSERT per row inside diesel's own transaction).
    InsertPair {
        a: i32,
        b: i32,
        v: i32,
    },
    Delete {
        id: i32,
    },
    /// `v = v + 1` on every row but the sentinel.
    Bump,
    /// Inserts the sentinel again: always fails (duplicate key).
    Duplicate,
    /// Inserts a child of a missing parent: fails at once where the
    /// foreign key is checked at once, at COMMIT where it is deferred.
    Orphan,
}

impl Write {
    /// Row lock bits this write takes (see [`Model`]).
    fn rows(&self) -> u8 {
        match self {
            Write::Update { id, .. }
            | Write::Insert { id, .. }
            | Write::Upsert { id, .. }
            | Write::Delete { id } => 1 << id,
            Write::InsertPair { a, b, .. } => (1 << a) | (1 << b),
            Write::Bump => ROW_BITS,
            Write::Duplicate | Write::Orphan => 0,
        }
    }
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::Update { id, v } => write!(f, "update id {id} to {v}"),
            Write::Insert { id, v } => write!(f, "insert id {id} = {v}"),
            Write::Upsert { id, v } => write!(f, "upsert id {id} = {v}"),
            Write::InsertPair { a, b, v } => {
                write!(
                    f,
                    "insert ids {a} = {v} and {b} = {} in one statement",
                    v + 1
                )
            }
            Write::Delete { id } => write!(f, "delete id {id}"),
            Write::Bump => write!(f, "bump every row (v = v + 1)"),
            Write::Duplicate => write!(f, "insert the sentinel again (duplicate key)"),
            Write::Orphan => write!(f, "insert an orphan child (foreign key)"),
        }
    }
}

/// What a raw statement does, as the model follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StmtKind {
    Write(Write),
    Read,
    /// `BEGIN`; `locks`: SQLite's `BEGIN IMMEDIATE`/`EXCLUSIVE`.
    Begin {
        locks: bool,
    },
    Commit,
    Rollback,
    CommitChain,
    RollbackChain,
    Savepoint(char),
    Release(char),
    RollbackTo(char),
    /// SQLite `PRAGMA defer_foreign_keys = ON`, PostgreSQL `SET CONSTRAINTS ALL DEFERRED`.
    DeferFk,
    /// MySQL `SET autocommit = 0`.
    AutocommitOff,
    /// MySQL `SET autocommit = 1`.
    AutocommitOn,
    /// MySQL DDL: commits the open transaction first.
    ImplicitCommit,
    /// A `SET` (SQLite: a `PRAGMA`) that changes no data.
    Set,
    /// DDL that changes no row of the model (`DROP VIEW IF EXISTS`, an
    /// `ALTER` of the scratch table); MySQL commits first.
    Ddl,
    /// PostgreSQL `PREPARE TRANSACTION 'model_n'`.
    Prepare(u32),
    /// PostgreSQL `COMMIT PREPARED 'model_n'`.
    CommitPrepared(u32),
    /// PostgreSQL `ROLLBACK PREPARED 'model_n'`.
    RollbackPrepared(u32),
    /// MySQL `XA START 'model'`.
    XaStart,
    /// MySQL `XA END 'model'`.
    XaEnd,
    /// MySQL `XA COMMIT 'model' ONE PHASE`.
    XaCommit,
    /// MySQL `XA ROLLBACK 'model'`.
    XaRollback,
}

/// One statement of a `batch_execute` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub text: String,
}

/// How a diesel transaction is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxHow {
    /// `conn.transaction` (a savepoint when nested).
    Plain,
    /// SQLite `immediate_transaction`.
    Immediate,
    /// SQLite `exclusive_transaction`.
    Exclusive,
    /// PostgreSQL `build_transaction().repeatable_read()`.
    RepeatableRead,
    /// PostgreSQL `build_transaction().serializable()`.
    Serializable,
    /// PostgreSQL `build_transaction().read_only()`.
    ReadOnly,
}

/// How a diesel transaction's closure ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `Ok`: diesel commits (releases the savepoint).
    Commit,
    /// `Err`: diesel rolls back (to the savepoint).
    Rollback,
}

/// A diesel transaction: its closure runs `body`, then ends as `end` says.
#[derive(Debug, Clone)]
pub struct Tx {
    pub how: TxHow,
    pub body: Vec<Step>,
    pub end: End,
}

/// Something one writer connection does.
#[derive(Debug, Clone)]
pub enum Act {
    /// A diesel DSL write (autocommit unless inside a transaction).
    Write(Write),
    /// One `batch_execute` of these statements, joined by `; `.
    Raw(Vec<Stmt>),
    /// A diesel transaction.
    Tx(Box<Tx>),
    /// The cached function on the writer itself.
    CachedRead(i32),
    /// A plain read of every row on the writer (takes a snapshot where the
    /// transaction has one).
    Read,
    /// The act on another thread (`std::thread::scope`).
    Thread(Box<Act>),
    /// A panic out of the transaction closure: every connection in use is
    /// dropped (mid-transaction) and replaced.
    Panic,
}

/// One step of a transaction body.
#[derive(Debug, Clone)]
pub enum Step {
    /// On the transaction's own connection.
    Own(Act),
    /// On another writer, while this transaction is open.
    Other(usize, Act),
}

/// One operation of a sequence.
#[derive(Debug, Clone)]
pub enum Op {
    On(usize, Act),
    /// The writer is dropped, whatever it has open, and replaced.
    Reconnect(usize),
}

/// A generated sequence.
#[derive(Debug, Clone)]
pub struct Sequence {
    pub seed: u64,
    pub kind: Kind,
    pub writers: usize,
    pub ops: Vec<Op>,
}

impl Sequence {
    /// Every act run, transaction steps and batch statements included.
    pub fn size(&self) -> usize {
        fn act(a: &Act) -> usize {
            match a {
                Act::Raw(stmts) => stmts.len(),
                Act::Tx(tx) => {
                    1 + tx
                        .body
                        .iter()
                        .map(|s| match s {
                            Step::Own(a) | Step::Other(_, a) => act(a),
                        })
                        .sum::<usize>()
                }
                Act::Thread(inner) => act(inner),
                _ => 1,
            }
        }
        self.ops
            .iter()
            .map(|op| match op {
                Op::On(_, a) => act(a),
                Op::Reconnect(_) => 1,
            })
            .sum()
    }
}

fn batch_text(stmts: &[Stmt]) -> String {
    stmts
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn fmt_act(out: &mut String, act: &Act, indent: usize) {
    let pad = "    ".repeat(indent);
    match act {
        Act::Write(w) => {
            let _ = writeln!(out, "diesel: {w}");
        }
        Act::Raw(stmts) => {
            let _ = writeln!(out, "batch_execute({:?})", batch_text(stmts));
        }
        Act::CachedRead(id) => {
            let _ = writeln!(out, "cached read of id {id} on this writer");
        }
        Act::Read => {
            let _ = writeln!(out, "plain read of every row");
        }
        Act::Panic => {
            let _ = writeln!(out, "panic");
        }
        Act::Thread(inner) => {
            out.push_str("on another thread: ");
            fmt_act(out, inner, indent);
        }
        Act::Tx(tx) => {
            let _ = writeln!(out, "transaction ({:?}) {{", tx.how);
            for step in &tx.body {
                out.push_str(&pad);
                out.push_str("    ");
                match step {
                    Step::Own(a) => fmt_act(out, a, indent + 1),
                    Step::Other(u, a) => {
                        let _ = write!(out, "w{u}: ");
                        fmt_act(out, a, indent + 1);
                    }
                }
            }
            let _ = writeln!(
                out,
                "{pad}}} -> {}",
                match tx.end {
                    End::Commit => "Ok (commit)",
                    End::Rollback => "Err (rollback)",
                }
            );
        }
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} on {:?}, {} writer(s) w0..w{}:",
            self.seed,
            self.kind,
            self.writers,
            self.writers - 1
        )?;
        for (i, op) in self.ops.iter().enumerate() {
            let mut line = String::new();
            match op {
                Op::Reconnect(w) => {
                    let _ = writeln!(line, "w{w}: drop the connection, open a new one");
                }
                Op::On(w, act) => {
                    let _ = write!(line, "w{w}: ");
                    fmt_act(&mut line, act, 1);
                }
            }
            write!(f, "{:>3}. {line}", i + 1)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The model: what the generator keeps track of

/// Bits of row ids 1..=4 in a lock mask.
const ROW_BITS: u8 = 0b1_1110;
/// The scratch table, which PostgreSQL's DDL locks whole.
const SCRATCH_BIT: u8 = 0x40;
/// "Has written inside a transaction": holds SQLite's write lock, and the
/// table as far as the MariaDB model is concerned.
const TABLE_BIT: u8 = 0x80;

/// Whether a writer's raw SQL left a transaction open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RawTx {
    #[default]
    Closed,
    Open,
    /// Perhaps: taken as open.
    Maybe,
}

#[derive(Debug, Clone, Default)]
struct WriterModel {
    raw: RawTx,
    /// Depth of diesel transactions of the operation being generated.
    tx_depth: usize,
    /// Busy in the operation being generated (a transaction is running on
    /// it): another step may not use it.
    in_use: bool,
    /// Locks its open transaction may hold: row bits, [`TABLE_BIT`].
    locks: u8,
    /// Raw savepoints, innermost last.
    savepoints: Vec<char>,
    /// SQLite: the open transaction was started by a `SAVEPOINT`.
    by_savepoint: bool,
    /// An orphan was inserted in the open transaction: its COMMIT fails.
    doomed: bool,
    /// MySQL `autocommit = 0`.
    autocommit_off: bool,
    /// MySQL: the open transaction is an XA one (only XA statements end it).
    xa: bool,
    /// PostgreSQL: a statement failed in the raw transaction, which only
    /// takes its end (or a `ROLLBACK TO`) now.
    aborted: bool,
    /// Raw transaction control ran inside a diesel transaction: diesel's
    /// own bookkeeping may be off for good (a failed `RELEASE SAVEPOINT`
    /// leaves its depth up), and a transaction may stay open after any
    /// later diesel transaction.
    disturbed: bool,
}

impl WriterModel {
    fn in_txn(&self) -> bool {
        self.tx_depth > 0 || self.raw != RawTx::Closed || self.autocommit_off
    }

    /// The open transaction ended (committed or rolled back).
    fn end(&mut self) {
        self.raw = RawTx::Closed;
        self.locks = 0;
        self.savepoints.clear();
        self.by_savepoint = false;
        self.doomed = false;
        self.xa = false;
        self.aborted = false;
    }
}

/// What the generator knows of the writers.
#[derive(Debug, Clone)]
pub struct Model {
    kind: Kind,
    ws: Vec<WriterModel>,
    /// PostgreSQL prepared transactions and their locks.
    prepared: Vec<(u32, u8)>,
}

/// What simulating an act found.
#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    /// A statement would wait for a lock another writer holds.
    conflict: bool,
    /// The act panicked out.
    panicked: bool,
}

impl Flow {
    fn and(self, other: Flow) -> Flow {
        Flow {
            conflict: self.conflict || other.conflict,
            panicked: self.panicked || other.panicked,
        }
    }
}

impl Model {
    fn new(kind: Kind, writers: usize) -> Model {
        Model {
            kind,
            ws: vec![WriterModel::default(); writers],
            prepared: Vec::new(),
        }
    }

    /// Whether a lock conflict would make the sequence wait on itself
    /// (SQLite's busy writers fail at once instead).
    fn strict(&self) -> bool {
        self.kind != Kind::Sqlite
    }

    /// Whether a write by `w` taking `rows` would wait on another writer.
    fn conflicts(&self, w: usize, rows: u8) -> bool {
        let held = |locks: u8| match self.kind {
            Kind::Postgres => locks & rows != 0,
            Kind::Sqlite | Kind::Mysql => locks != 0,
        };
        self.ws
            .iter()
            .enumerate()
            .any(|(u, s)| u != w && held(s.locks))
            || self.prepared.iter().any(|(_, locks)| held(*locks))
    }

    fn write(&mut self, w: usize, write: &Write) -> bool {
        let conflict = self.conflicts(w, write.rows());
        let s = &mut self.ws[w];
        if s.in_txn() {
            s.locks |= write.rows() | TABLE_BIT;
            if *write == Write::Orphan {
                s.doomed = true;
            }
        }
        conflict
    }

    /// A writer dropped, or a fresh one.
    fn reconnect(&mut self, w: usize) {
        self.ws[w] = WriterModel::default();
    }

    /// A panic unwound through every connection in use: all are replaced.
    fn panicked(&mut self) {
        for s in &mut self.ws {
            if s.in_use {
                *s = WriterModel::default();
            }
        }
    }

    fn enter_tx(&mut self, w: usize, how: TxHow) -> bool {
        let conflict = matches!(how, TxHow::Immediate | TxHow::Exclusive)
            && self.ws[w].tx_depth == 0
            && self.conflicts(w, 0);
        let s = &mut self.ws[w];
        if matches!(how, TxHow::Immediate | TxHow::Exclusive) && s.tx_depth == 0 {
            s.locks |= TABLE_BIT;
        }
        s.tx_depth += 1;
        conflict
    }

    /// The diesel transaction of `w` ended; `raw_before` is the writer's raw
    /// state when it began.
    fn exit_tx(&mut self, w: usize, raw_before: RawTx) {
        let s = &mut self.ws[w];
        s.tx_depth -= 1;
        if s.tx_depth > 0 {
            return;
        }
        if s.disturbed {
            if s.raw == RawTx::Closed {
                s.raw = RawTx::Maybe;
            }
            return;
        }
        match raw_before {
            RawTx::Closed if !s.xa => s.end(),
            // diesel's BEGIN inside a raw transaction: SQLite refuses it,
            // PostgreSQL warns (or refuses it in an aborted transaction),
            // MariaDB commits first: whether diesel's COMMIT ended what was
            // open, the model does not follow.
            _ => {
                if s.raw == RawTx::Closed {
                    s.raw = RawTx::Maybe;
                }
            }
        }
    }

    /// A `batch_execute` of `stmts` by `w`, statement by statement: a
    /// statement that surely fails ends the batch; after one that may
    /// fail, what follows may or may not run, and the state is widened.
    fn raw(&mut self, w: usize, stmts: &[Stmt]) -> bool {
        let kind = self.kind;
        let mut conflict = false;
        // Every statement so far surely ran and succeeded.
        let mut certain = true;
        // PostgreSQL: a text of several statements runs as one implicit
        // transaction, which a BEGIN turns into an explicit one that holds
        // what came before it.
        let mut implicit: u8 = 0;
        let in_body = self.ws[w].tx_depth > 0;
        let stopped = 'run: {
            for stmt in stmts {
                // PostgreSQL refuses all but the end of an aborted transaction.
                if kind == Kind::Postgres
                    && self.ws[w].aborted
                    && !in_body
                    && certain
                    && !matches!(
                        stmt.kind,
                        StmtKind::Commit
                            | StmtKind::Rollback
                            | StmtKind::CommitChain
                            | StmtKind::RollbackChain
                            | StmtKind::RollbackTo(_)
                            | StmtKind::Prepare(_)
                    )
                {
                    break 'run true;
                }
                match &stmt.kind {
                    StmtKind::Write(write) => {
                        conflict |= self.conflicts(w, write.rows());
                        let s = &mut self.ws[w];
                        if s.in_txn() {
                            s.locks |= write.rows() | TABLE_BIT;
                            if *write == Write::Orphan {
                                s.doomed = true;
                            }
                        } else {
                            implicit |= write.rows() | TABLE_BIT;
                        }
                        match write {
                            Write::Duplicate if certain => break 'run true,
                            Write::Insert { .. }
                            | Write::InsertPair { .. }
                            | Write::Orphan
                            | Write::Duplicate => certain = false,
                            _ => {}
                        }
                    }
                    StmtKind::Read | StmtKind::DeferFk | StmtKind::Set => {}
                    StmtKind::Ddl if kind != Kind::Mysql => {
                        let rows = if kind == Kind::Postgres {
                            SCRATCH_BIT
                        } else {
                            TABLE_BIT
                        };
                        conflict |= self.conflicts(w, rows);
                        let s = &mut self.ws[w];
                        if s.in_txn() {
                            s.locks |= rows | TABLE_BIT;
                        }
                    }
                    // Transaction control inside a diesel transaction: the
                    // model holds everything until that transaction ends, and
                    // takes one as perhaps open after it.
                    StmtKind::Begin { locks } if in_body => {
                        if *locks {
                            conflict |= self.conflicts(w, 0);
                        }
                        certain = false;
                        self.ws[w].disturbed = true;
                    }
                    _ if in_body => {
                        certain = false;
                        self.ws[w].disturbed = true;
                    }
                    // XAER_RMFAIL: only XA statements end an XA transaction.
                    StmtKind::Begin { .. }
                    | StmtKind::Commit
                    | StmtKind::Rollback
                    | StmtKind::CommitChain
                    | StmtKind::RollbackChain
                    | StmtKind::Savepoint(_)
                    | StmtKind::Release(_)
                    | StmtKind::RollbackTo(_)
                    | StmtKind::AutocommitOn
                    | StmtKind::AutocommitOff
                    | StmtKind::ImplicitCommit
                    | StmtKind::Ddl
                    | StmtKind::XaStart
                        if self.ws[w].xa =>
                    {
                        if certain {
                            break 'run true;
                        }
                    }
                    StmtKind::XaStart => {
                        let s = &mut self.ws[w];
                        match s.raw {
                            RawTx::Closed if !s.autocommit_off => {
                                s.raw = if certain { RawTx::Open } else { RawTx::Maybe };
                                s.xa = true;
                            }
                            _ if certain => break 'run true,
                            _ => {
                                s.raw = RawTx::Maybe;
                                s.xa = true;
                            }
                        }
                    }
                    StmtKind::XaEnd => {}
                    StmtKind::XaCommit | StmtKind::XaRollback => {
                        let s = &mut self.ws[w];
                        if !s.xa {
                            if certain {
                                break 'run true;
                            }
                        } else if certain {
                            s.end();
                        } else {
                            s.raw = RawTx::Maybe;
                        }
                    }
                    StmtKind::Prepare(n) => {
                        let s = &mut self.ws[w];
                        match s.raw {
                            RawTx::Open if certain => {
                                let locks = s.locks;
                                s.end();
                                self.prepared.push((*n, locks));
                            }
                            RawTx::Closed if certain => break 'run true,
                            _ => {
                                let locks = s.locks;
                                s.raw = RawTx::Maybe;
                                self.prepared.push((*n, locks));
                                certain = false;
                            }
                        }
                    }
                    StmtKind::CommitPrepared(n) | StmtKind::RollbackPrepared(n) => {
                        // Cannot run inside a transaction block, implicit ones
                        // (a text of several statements) included.
                        if self.ws[w].raw == RawTx::Closed && stmts.len() == 1 {
                            self.prepared.retain(|(p, _)| p != n);
                        } else if certain {
                            break 'run true;
                        }
                    }
                    StmtKind::Begin { locks } => {
                        if *locks {
                            conflict |= self.conflicts(w, 0);
                        }
                        let s = &mut self.ws[w];
                        match s.raw {
                            RawTx::Closed => {
                                s.raw = if certain { RawTx::Open } else { RawTx::Maybe };
                                s.savepoints.clear();
                                s.by_savepoint = false;
                                if kind == Kind::Postgres {
                                    s.locks |= implicit;
                                }
                            }
                            RawTx::Open => match kind {
                                // "cannot start a transaction within a transaction"
                                Kind::Sqlite if certain => break 'run true,
                                Kind::Sqlite => s.raw = RawTx::Maybe,
                                Kind::Postgres => {}
                                // Commits the open transaction first.
                                Kind::Mysql if certain => {
                                    s.end();
                                    s.raw = RawTx::Open;
                                }
                                Kind::Mysql => s.raw = RawTx::Maybe,
                            },
                            RawTx::Maybe => {
                                s.locks |= implicit;
                                if kind == Kind::Sqlite {
                                    certain = false;
                                }
                            }
                        }
                        if *locks {
                            s.locks |= TABLE_BIT;
                        }
                    }
                    StmtKind::Commit | StmtKind::Rollback => {
                        let rollback = stmt.kind == StmtKind::Rollback;
                        let s = &mut self.ws[w];
                        implicit = 0;
                        match (kind, s.raw) {
                            // "cannot commit - no transaction is active"
                            (Kind::Sqlite, RawTx::Closed) if certain => break 'run true,
                            (Kind::Sqlite, RawTx::Maybe) => certain = false,
                            // The deferred foreign key fails the COMMIT; SQLite
                            // keeps the transaction open, PostgreSQL ends it.
                            (Kind::Sqlite, RawTx::Open) if !rollback && s.doomed && certain => {
                                break 'run true;
                            }
                            (Kind::Postgres, _) if !rollback && s.doomed && certain => {
                                s.end();
                                break 'run true;
                            }
                            _ => {}
                        }
                        if certain {
                            s.end();
                        } else if s.raw != RawTx::Closed {
                            s.raw = RawTx::Maybe;
                        }
                    }
                    StmtKind::CommitChain | StmtKind::RollbackChain => {
                        let s = &mut self.ws[w];
                        implicit = 0;
                        if kind == Kind::Postgres && s.raw == RawTx::Closed && certain {
                            // "can only be used in transaction blocks"
                            break 'run true;
                        }
                        if certain && !s.doomed {
                            s.end();
                            s.raw = RawTx::Open;
                        } else {
                            s.raw = RawTx::Maybe;
                            certain = false;
                        }
                    }
                    StmtKind::Savepoint(name) => {
                        let s = &mut self.ws[w];
                        match (kind, s.raw) {
                            (Kind::Sqlite, RawTx::Closed) => {
                                s.raw = if certain { RawTx::Open } else { RawTx::Maybe };
                                s.by_savepoint = true;
                                s.savepoints.clear();
                            }
                            (Kind::Postgres, RawTx::Closed) if certain => break 'run true,
                            (_, RawTx::Closed) => certain = false,
                            _ => {}
                        }
                        s.savepoints.push(*name);
                    }
                    StmtKind::Release(name) | StmtKind::RollbackTo(name) => {
                        let release = matches!(stmt.kind, StmtKind::Release(_));
                        let s = &mut self.ws[w];
                        match s.savepoints.iter().rposition(|n| n == name) {
                            Some(at) if s.raw != RawTx::Closed => {
                                s.savepoints.truncate(if release { at } else { at + 1 });
                                if !release {
                                    s.aborted = false;
                                }
                                if release && s.savepoints.is_empty() && s.by_savepoint {
                                    // Releasing the outermost commits (SQLite).
                                    if s.doomed {
                                        if certain {
                                            break 'run true;
                                        }
                                    } else if certain {
                                        s.end();
                                    } else {
                                        s.raw = RawTx::Maybe;
                                    }
                                }
                            }
                            _ if certain => break 'run true, // no such savepoint
                            _ => {}
                        }
                    }
                    StmtKind::AutocommitOff => self.ws[w].autocommit_off = true,
                    StmtKind::AutocommitOn => {
                        let s = &mut self.ws[w];
                        if s.autocommit_off {
                            if certain {
                                s.end();
                            } else {
                                s.raw = RawTx::Maybe;
                            }
                        }
                        s.autocommit_off = false;
                    }
                    StmtKind::ImplicitCommit | StmtKind::Ddl => {
                        let s = &mut self.ws[w];
                        if certain {
                            s.end();
                        } else if s.raw != RawTx::Closed {
                            s.raw = RawTx::Maybe;
                        }
                    }
                }
            }
            false
        };
        // A statement failed inside a raw transaction: PostgreSQL aborts it.
        let s = &mut self.ws[w];
        if stopped && kind == Kind::Postgres && !in_body && s.raw != RawTx::Closed {
            s.aborted = true;
        }
        conflict
    }

    /// Simulates `act` by `w`; `w` is marked in use by the caller.
    fn act(&mut self, w: usize, act: &Act) -> Flow {
        match act {
            Act::Write(write) => Flow {
                conflict: self.write(w, write),
                panicked: false,
            },
            Act::Raw(stmts) => Flow {
                conflict: self.raw(w, stmts),
                panicked: false,
            },
            Act::CachedRead(_) | Act::Read => Flow::default(),
            Act::Thread(inner) => self.act(w, inner),
            Act::Panic => Flow {
                conflict: false,
                panicked: true,
            },
            Act::Tx(tx) => {
                let raw_before = self.ws[w].raw;
                let begin_may_fail = begin_may_fail(&self.ws[w]);
                let mut flow = Flow {
                    conflict: self.enter_tx(w, tx.how),
                    panicked: false,
                };
                for step in &tx.body {
                    let in_use: Vec<bool> = self.ws.iter().map(|s| s.in_use).collect();
                    let step_flow = self.step(w, step);
                    flow.conflict |= step_flow.conflict;
                    if step_flow.panicked {
                        if !begin_may_fail {
                            flow.panicked = true;
                            return flow;
                        }
                        // The body may not run at all: taken as not
                        // panicking, everything held.
                        for (s, was) in self.ws.iter_mut().zip(in_use) {
                            s.in_use = was;
                        }
                        break;
                    }
                }
                self.exit_tx(w, raw_before);
                flow
            }
        }
    }

    fn step(&mut self, w: usize, step: &Step) -> Flow {
        match step {
            Step::Own(act) => self.act(w, act),
            Step::Other(u, act) => self.other(*u, act),
        }
    }

    fn other(&mut self, u: usize, act: &Act) -> Flow {
        if u >= self.ws.len() || self.ws[u].in_use {
            // Not a valid sequence: the runner would skip it.
            return Flow {
                conflict: true,
                panicked: false,
            };
        }
        self.ws[u].in_use = true;
        let flow = self.act(u, act);
        if !flow.panicked {
            self.ws[u].in_use = false;
        }
        flow
    }

    fn op(&mut self, op: &Op) -> Flow {
        match op {
            Op::Reconnect(w) => {
                self.reconnect(*w);
                Flow::default()
            }
            Op::On(w, act) => {
                self.ws[*w].in_use = true;
                let flow = self.act(*w, act);
                if flow.panicked {
                    self.panicked();
                }
                self.ws[*w].in_use = false;
                flow
            }
        }
    }
}

/// Whether a diesel transaction starting now on this writer may fail to
/// begin (inside a raw transaction), so that its body may not run.
fn begin_may_fail(s: &WriterModel) -> bool {
    s.tx_depth == 0 && s.raw != RawTx::Closed
}

/// Whether `seq` never makes a strict backend wait on itself, as far as the
/// model sees (a shrunk sequence must not deadlock).
fn valid(seq: &Sequence) -> bool {
    let mut model = Model::new(seq.kind, seq.writers);
    seq.ops.iter().all(|op| {
        let uses_valid_writers = match op {
            Op::On(w, _) | Op::Reconnect(w) => *w < seq.writers,
        };
        uses_valid_writers && !(model.op(op).conflict && model.strict())
    })
}

// ---------------------------------------------------------------------------
// The generator

struct Gen {
    rng: Rng,
    kind: Kind,
    model: Model,
    next_v: i32,
    next_gid: u32,
    /// Whether a panic generated now surely happens (no enclosing
    /// transaction may have failed to begin).
    may_panic: bool,
}

/// Generates the sequence of `seed`.
pub fn generate(seed: u64, kind: Kind, min_ops: usize, max_ops: usize) -> Sequence {
    let mut rng = Rng::new(seed);
    let writers = rng.range(1, 3);
    let len = rng.range(min_ops, max_ops);
    let mut gen = Gen {
        rng,
        kind,
        model: Model::new(kind, writers),
        next_v: 0,
        next_gid: 0,
        may_panic: true,
    };
    let ops = (0..len).map(|_| gen.op()).collect();
    Sequence {
        seed,
        kind,
        writers,
        ops,
    }
}

impl Gen {
    fn value(&mut self) -> i32 {
        self.next_v += 1;
        self.next_v
    }

    fn writers(&self) -> usize {
        self.model.ws.len()
    }

    fn op(&mut self) -> Op {
        let n = self.writers();
        if self.rng.chance(4) {
            let w = self.rng.below(n);
            let op = Op::Reconnect(w);
            self.model.op(&op);
            return op;
        }
        // A writer with a transaction left open is picked more often, so
        // that it ends.
        let open: Vec<usize> = (0..n).filter(|w| self.model.ws[*w].in_txn()).collect();
        let w = if !open.is_empty() && self.rng.chance(50) {
            *self.rng.pick(&open)
        } else {
            self.rng.below(n)
        };
        self.model.ws[w].in_use = true;
        let (mut act, flow) = self.top_act(w);
        if flow.panicked {
            self.model.panicked();
        }
        self.model.ws[w].in_use = false;
        if self.rng.chance(12) {
            act = Act::Thread(Box::new(act));
        }
        Op::On(w, act)
    }

    /// Tries `make` until the model accepts what it made (no lock conflict,
    /// or a SQLite conflict that will fail at once, taken now and then);
    /// falls back to a cached read.
    fn leaf(&mut self, w: usize, make: impl Fn(&mut Gen) -> Act) -> Act {
        for _ in 0..12 {
            let act = make(self);
            let saved = self.model.clone();
            let flow = self.model.act(w, &act);
            if !flow.conflict || (!self.model.strict() && self.rng.chance(25)) {
                return act;
            }
            self.model = saved;
        }
        Act::CachedRead(*self.rng.pick(&IDS))
    }

    fn top_act(&mut self, w: usize) -> (Act, Flow) {
        let open = self.model.ws[w].in_txn();
        let kind = self.kind;
        let special = kind != Kind::Mysql;
        let failing_commit = kind != Kind::Mysql;
        // write, raw, tx, special tx, cached read, read, failing commit
        let weights: [usize; 7] = if open {
            [14, 48, 8, if special { 3 } else { 0 }, 10, 5, 0]
        } else {
            [
                22,
                24,
                20,
                if special { 8 } else { 0 },
                6,
                4,
                if failing_commit { 5 } else { 0 },
            ]
        };
        match self.rng.weighted(&weights) {
            0 => (self.leaf(w, |g| Act::Write(g.write())), Flow::default()),
            1 => (self.leaf(w, |g| Act::Raw(g.top_raw(w))), Flow::default()),
            2 => self.tx(w, 0, TxHow::Plain),
            3 => {
                let how = match kind {
                    Kind::Sqlite => *self.rng.pick(&[TxHow::Immediate, TxHow::Exclusive]),
                    _ => *self.rng.pick(&[
                        TxHow::RepeatableRead,
                        TxHow::Serializable,
                        TxHow::ReadOnly,
                    ]),
                };
                self.tx(w, 0, how)
            }
            4 => (Act::CachedRead(*self.rng.pick(&IDS)), Flow::default()),
            5 => (Act::Read, Flow::default()),
            _ => self.failing_commit_tx(w),
        }
    }

    /// A transaction whose COMMIT fails on a deferred foreign key.
    fn failing_commit_tx(&mut self, w: usize) -> (Act, Flow) {
        let raw_before = self.model.ws[w].raw;
        let how = if self.kind == Kind::Sqlite && self.rng.chance(30) {
            TxHow::Immediate
        } else {
            TxHow::Plain
        };
        let mut flow = Flow {
            conflict: self.model.enter_tx(w, how),
            panicked: false,
        };
        let mut body = Vec::new();
        let write = self.leaf(w, |g| Act::Write(g.value_write()));
        body.push(Step::Own(write));
        let orphan = self.orphan_act(w);
        body.push(Step::Own(orphan));
        if self.rng.chance(50) {
            body.push(Step::Own(Act::CachedRead(*self.rng.pick(&IDS))));
        }
        if self.rng.chance(50) {
            let write = self.leaf(w, |g| Act::Write(g.value_write()));
            body.push(Step::Own(write));
        }
        self.model.exit_tx(w, raw_before);
        flow.panicked = false;
        (
            Act::Tx(Box::new(Tx {
                how,
                body,
                end: End::Commit,
            })),
            flow,
        )
    }

    /// An orphan insert the COMMIT will refuse (SQLite: after deferring
    /// the foreign keys).
    fn orphan_act(&mut self, w: usize) -> Act {
        let act = if self.kind == Kind::Sqlite {
            Act::Raw(vec![
                self.stmt(StmtKind::DeferFk),
                self.stmt(StmtKind::Write(Write::Orphan)),
            ])
        } else if self.rng.chance(50) {
            Act::Write(Write::Orphan)
        } else {
            Act::Raw(vec![self.stmt(StmtKind::Write(Write::Orphan))])
        };
        self.model.act(w, &act);
        act
    }

    /// A diesel transaction on `w` at nesting `depth`, its body generated
    /// step by step against the model.
    fn tx(&mut self, w: usize, depth: usize, how: TxHow) -> (Act, Flow) {
        let raw_before = self.model.ws[w].raw;
        let may_panic = self.may_panic;
        self.may_panic &= !begin_may_fail(&self.model.ws[w]);
        let mut flow = Flow {
            conflict: self.model.enter_tx(w, how),
            panicked: false,
        };
        let len = self.rng.range(1, 5);
        let mut body = Vec::new();
        for _ in 0..len {
            let (step, step_flow) = self.step(w, depth);
            body.push(step);
            flow = flow.and(step_flow);
            if flow.panicked {
                break;
            }
        }
        let end = if self.rng.chance(70) {
            End::Commit
        } else {
            End::Rollback
        };
        if !flow.panicked {
            self.model.exit_tx(w, raw_before);
        }
        self.may_panic = may_panic;
        flow.conflict = false;
        (Act::Tx(Box::new(Tx { how, body, end })), flow)
    }

    fn step(&mut self, w: usize, depth: usize) -> (Step, Flow) {
        let others: Vec<usize> = (0..self.writers())
            .filter(|u| *u != w && !self.model.ws[*u].in_use)
            .collect();
        let orphan = self.kind != Kind::Mysql;
        // write, cached read, read, raw, nested, other, orphan, panic
        let weights = [
            28,
            14,
            7,
            12,
            if depth < 2 { 10 } else { 0 },
            if others.is_empty() { 0 } else { 18 },
            if orphan { 3 } else { 0 },
            if self.may_panic { 2 } else { 0 },
        ];
        let none = Flow::default();
        match self.rng.weighted(&weights) {
            0 => (Step::Own(self.leaf(w, |g| Act::Write(g.write()))), none),
            1 => {
                let read = Act::CachedRead(*self.rng.pick(&IDS));
                let read = if self.rng.chance(25) {
                    Act::Thread(Box::new(read))
                } else {
                    read
                };
                (Step::Own(read), none)
            }
            2 => (Step::Own(Act::Read), none),
            3 => (Step::Own(self.leaf(w, |g| Act::Raw(g.body_raw()))), none),
            4 => {
                let (act, flow) = self.tx(w, depth + 1, TxHow::Plain);
                (Step::Own(act), flow)
            }
            5 => {
                let u = *self.rng.pick(&others);
                self.model.ws[u].in_use = true;
                let (act, flow) = self.other_act(u, depth + 1);
                if !flow.panicked {
                    self.model.ws[u].in_use = false;
                }
                (Step::Other(u, act), flow)
            }
            6 => (Step::Own(self.orphan_act(w)), none),
            _ => (
                Step::Own(Act::Panic),
                Flow {
                    conflict: false,
                    panicked: true,
                },
            ),
        }
    }

    /// What another writer does inside a transaction's body.
    fn other_act(&mut self, u: usize, depth: usize) -> (Act, Flow) {
        let open = self.model.ws[u].in_txn();
        // write, raw, tx, cached read, read
        let weights = [
            30,
            if open { 30 } else { 18 },
            if depth < 2 { 14 } else { 0 },
            12,
            6,
        ];
        match self.rng.weighted(&weights) {
            0 => (self.leaf(u, |g| Act::Write(g.write())), Flow::default()),
            1 => (self.leaf(u, |g| Act::Raw(g.top_raw(u))), Flow::default()),
            2 => self.tx(u, depth, TxHow::Plain),
            3 => (Act::CachedRead(*self.rng.pick(&IDS)), Flow::default()),
            _ => (Act::Read, Flow::default()),
        }
    }

    /// A write that changes a value (so that staleness shows).
    fn value_write(&mut self) -> Write {
        let id = *self.rng.pick(&IDS);
        let v = self.value();
        match self.rng.below(10) {
            0..=6 => Write::Update { id, v },
            _ => Write::Upsert { id, v },
        }
    }

    fn write(&mut self) -> Write {
        let id = *self.rng.pick(&IDS);
        let v = self.value();
        match self.rng.weighted(&[48, 8, 10, 10, 7, 5, 2, 4]) {
            0 => Write::Update { id, v },
            1 => Write::Insert { id, v },
            2 => Write::Upsert { id, v },
            3 => Write::Delete { id },
            4 => Write::Bump,
            5 => Write::Duplicate,
            6 => Write::Orphan,
            _ => {
                self.next_v += 1;
                let b = IDS[(IDS.iter().position(|i| *i == id).unwrap_or(0) + 1) % IDS.len()];
                Write::InsertPair { a: id, b, v }
            }
        }
    }

    /// A raw write statement (mostly ones that succeed).
    fn write_stmt(&mut self) -> Stmt {
        let mut write = self.write();
        if matches!(write, Write::Orphan) {
            write = self.value_write();
        }
        self.stmt(StmtKind::Write(write))
    }

    /// A batch on a connection inside a diesel transaction.
    fn body_raw(&mut self) -> Vec<Stmt> {
        let stmts = match self.rng.weighted(&[46, 14, 16, 6, 6, 6]) {
            0 => vec![self.write_stmt()],
            1 => {
                let name = *self.rng.pick(&['x', 'y']);
                let mut stmts = vec![self.stmt(StmtKind::Savepoint(name)), self.write_stmt()];
                if self.rng.chance(50) {
                    stmts.push(self.stmt(StmtKind::RollbackTo(name)));
                }
                stmts.push(self.stmt(StmtKind::Release(name)));
                stmts
            }
            2 => {
                let n = self.rng.range(2, 6);
                (0..n)
                    .map(|_| match self.rng.below(7) {
                        0 => self.stmt(StmtKind::Read),
                        1 if self.rng.chance(40) => self.stmt(StmtKind::Write(Write::Duplicate)),
                        2 if self.rng.chance(50) => self.stmt(StmtKind::Set),
                        _ => self.write_stmt(),
                    })
                    .collect()
            }
            3 => vec![self.stmt(StmtKind::Read)],
            4 => {
                let first = if self.kind == Kind::Mysql || self.rng.chance(60) {
                    StmtKind::Set
                } else {
                    StmtKind::Ddl
                };
                vec![self.stmt(first), self.write_stmt()]
            }
            // Transaction control behind diesel's back.
            _ => {
                let mut stmts = Vec::new();
                if self.rng.chance(50) {
                    stmts.push(self.write_stmt());
                }
                let control = match self.rng.below(4) {
                    0 => StmtKind::Commit,
                    1 => StmtKind::Rollback,
                    2 => StmtKind::Begin { locks: false },
                    _ => StmtKind::Commit,
                };
                stmts.push(self.stmt(control));
                if self.rng.chance(50) {
                    stmts.push(self.stmt(StmtKind::Begin { locks: false }));
                }
                if self.rng.chance(50) {
                    stmts.push(self.write_stmt());
                }
                stmts
            }
        };
        self.maybe_set(stmts)
    }

    /// Now and then a harmless `SET` somewhere in the batch.
    fn maybe_set(&mut self, mut stmts: Vec<Stmt>) -> Vec<Stmt> {
        if self.rng.chance(8) {
            let at = self.rng.below(stmts.len() + 1);
            let set = self.stmt(StmtKind::Set);
            stmts.insert(at, set);
        }
        stmts
    }

    fn commit_or_rollback(&mut self) -> StmtKind {
        let chain = matches!(self.kind, Kind::Postgres | Kind::Mysql);
        match self
            .rng
            .weighted(&[55, 30, if chain { 8 } else { 0 }, if chain { 7 } else { 0 }])
        {
            0 => StmtKind::Commit,
            1 => StmtKind::Rollback,
            2 => StmtKind::CommitChain,
            _ => StmtKind::RollbackChain,
        }
    }

    fn begin(&mut self) -> StmtKind {
        StmtKind::Begin {
            locks: self.kind == Kind::Sqlite && self.rng.chance(30),
        }
    }

    /// A write that cannot fail (but on a lock).
    fn sure_write_stmt(&mut self) -> Stmt {
        let write = if self.rng.chance(15) {
            Write::Bump
        } else {
            self.value_write()
        };
        self.stmt(StmtKind::Write(write))
    }

    /// A batch on a connection outside diesel's transactions (its raw
    /// transaction, if it left one open, goes on).
    fn top_raw(&mut self, w: usize) -> Vec<Stmt> {
        let stmts = self.top_raw_inner(w);
        self.maybe_set(stmts)
    }

    fn top_raw_inner(&mut self, w: usize) -> Vec<Stmt> {
        let s = self.model.ws[w].clone();
        let kind = self.kind;
        let sqlite = kind == Kind::Sqlite;
        let pg = kind == Kind::Postgres;
        let my = kind == Kind::Mysql;
        let open = s.raw != RawTx::Closed || s.autocommit_off;
        let mut stmts = Vec::new();
        if s.xa {
            if self.rng.chance(30) {
                stmts.push(self.sure_write_stmt());
            } else {
                if self.rng.chance(50) {
                    stmts.push(self.sure_write_stmt());
                }
                stmts.push(self.stmt(StmtKind::XaEnd));
                let end = if self.rng.chance(70) {
                    StmtKind::XaCommit
                } else {
                    StmtKind::XaRollback
                };
                stmts.push(self.stmt(end));
            }
            return stmts;
        }
        if open {
            let close = if s.autocommit_off && self.rng.chance(30) {
                Some(StmtKind::AutocommitOn)
            } else {
                None
            };
            // close, write, savepoint, mix, begin again, failing, implicit
            // commit (MySQL), prepare (PostgreSQL)
            match self.rng.weighted(&[
                45,
                14,
                10,
                14,
                5,
                5,
                if my { 5 } else { 0 },
                if pg && s.raw == RawTx::Open { 5 } else { 0 },
            ]) {
                0 => {
                    for _ in 0..self.rng.range(0, 2) {
                        stmts.push(self.write_stmt());
                    }
                    let end = close.unwrap_or_else(|| self.commit_or_rollback());
                    stmts.push(self.stmt(end));
                }
                1 => {
                    for _ in 0..self.rng.range(1, 2) {
                        stmts.push(self.write_stmt());
                    }
                }
                2 => {
                    let name = *self.rng.pick(&['a', 'b']);
                    match s.savepoints.last() {
                        Some(open_sp) if self.rng.chance(60) => {
                            let open_sp = *open_sp;
                            let end = if self.rng.chance(50) {
                                StmtKind::Release(open_sp)
                            } else {
                                StmtKind::RollbackTo(open_sp)
                            };
                            stmts.push(self.stmt(end));
                        }
                        _ => {
                            stmts.push(self.stmt(StmtKind::Savepoint(name)));
                            stmts.push(self.write_stmt());
                        }
                    }
                }
                3 => stmts = self.mix(),
                4 => stmts.push(self.stmt(StmtKind::Begin { locks: false })),
                5 => {
                    stmts.push(self.write_stmt());
                    stmts.push(self.stmt(StmtKind::Write(Write::Duplicate)));
                }
                6 => {
                    let ddl = if self.rng.chance(50) {
                        StmtKind::ImplicitCommit
                    } else {
                        StmtKind::Ddl
                    };
                    stmts.push(self.stmt(ddl));
                    if self.rng.chance(50) {
                        stmts.push(self.write_stmt());
                    }
                }
                _ => {
                    let gid = self.gid();
                    stmts.push(self.stmt(StmtKind::Prepare(gid)));
                }
            }
            return stmts;
        }
        // Prepared transactions wait for any writer to end them, alone.
        if let Some((gid, _)) = self.model.prepared.first().copied() {
            if self.rng.chance(50) {
                let end = if self.rng.chance(70) {
                    StmtKind::CommitPrepared(gid)
                } else {
                    StmtKind::RollbackPrepared(gid)
                };
                return vec![self.stmt(end)];
            }
        }
        // complete, open, single, savepoint block, failing middle, mix,
        // implicit block then BEGIN (PG), autocommit off (MySQL), DDL
        // (MySQL), doomed raw transaction, SET or DDL then writes, prepare
        // (PG), XA (MySQL)
        let weights = [
            20,
            14,
            10,
            10,
            8,
            16,
            if pg { 6 } else { 0 },
            if my { 6 } else { 0 },
            if my { 3 } else { 0 },
            if my { 0 } else { 4 },
            6,
            if pg && self.model.prepared.len() < 3 {
                4
            } else {
                0
            },
            if my { 5 } else { 0 },
        ];
        match self.rng.weighted(&weights) {
            0 => {
                let begin = self.begin();
                stmts.push(self.stmt(begin));
                for _ in 0..self.rng.range(1, 3) {
                    stmts.push(self.write_stmt());
                }
                if self.rng.chance(15) {
                    stmts.push(self.stmt(StmtKind::Write(Write::Duplicate)));
                }
                let end = if self.rng.chance(70) {
                    StmtKind::Commit
                } else {
                    StmtKind::Rollback
                };
                stmts.push(self.stmt(end));
            }
            1 => {
                let begin = self.begin();
                stmts.push(self.stmt(begin));
                for _ in 0..self.rng.range(0, 2) {
                    stmts.push(self.write_stmt());
                }
            }
            2 => stmts.push(self.write_stmt()),
            3 => {
                let name = *self.rng.pick(&['a', 'b']);
                if !sqlite {
                    stmts.push(self.stmt(StmtKind::Begin { locks: false }));
                }
                stmts.push(self.stmt(StmtKind::Savepoint(name)));
                stmts.push(self.write_stmt());
                if self.rng.chance(40) {
                    stmts.push(self.stmt(StmtKind::RollbackTo(name)));
                }
                if self.rng.chance(80) {
                    stmts.push(self.stmt(StmtKind::Release(name)));
                }
                if !sqlite && self.rng.chance(70) {
                    let end = self.commit_or_rollback();
                    stmts.push(self.stmt(end));
                }
            }
            4 => {
                stmts.push(self.write_stmt());
                stmts.push(self.stmt(StmtKind::Write(Write::Duplicate)));
                stmts.push(self.write_stmt());
            }
            5 => stmts = self.mix(),
            6 => {
                for _ in 0..self.rng.range(1, 2) {
                    stmts.push(self.write_stmt());
                }
                stmts.push(self.stmt(StmtKind::Begin { locks: false }));
                if self.rng.chance(50) {
                    stmts.push(self.write_stmt());
                }
            }
            7 => {
                stmts.push(self.stmt(StmtKind::AutocommitOff));
                for _ in 0..self.rng.range(0, 2) {
                    stmts.push(self.write_stmt());
                }
            }
            8 => {
                if self.rng.chance(50) {
                    stmts.push(self.stmt(StmtKind::Begin { locks: false }));
                    stmts.push(self.write_stmt());
                }
                stmts.push(self.stmt(StmtKind::ImplicitCommit));
            }
            9 => {
                let begin = self.begin();
                stmts.push(self.stmt(begin));
                stmts.push(self.write_stmt());
                if sqlite || self.rng.chance(30) {
                    stmts.push(self.stmt(StmtKind::DeferFk));
                }
                stmts.push(self.stmt(StmtKind::Write(Write::Orphan)));
                if self.rng.chance(70) {
                    stmts.push(self.stmt(StmtKind::Commit));
                }
            }
            10 => {
                if self.rng.chance(30) {
                    let begin = self.begin();
                    stmts.push(self.stmt(begin));
                }
                let first = if self.rng.chance(60) {
                    StmtKind::Set
                } else {
                    StmtKind::Ddl
                };
                stmts.push(self.stmt(first));
                for _ in 0..self.rng.range(1, 2) {
                    stmts.push(self.write_stmt());
                }
                if self.rng.chance(30) {
                    let set = self.stmt(StmtKind::Set);
                    stmts.push(set);
                    stmts.push(self.write_stmt());
                }
            }
            11 => {
                stmts.push(self.stmt(StmtKind::Begin { locks: false }));
                for _ in 0..self.rng.range(1, 2) {
                    stmts.push(self.sure_write_stmt());
                }
                let gid = self.gid();
                stmts.push(self.stmt(StmtKind::Prepare(gid)));
            }
            _ => {
                stmts.push(self.stmt(StmtKind::XaStart));
                for _ in 0..self.rng.range(1, 2) {
                    stmts.push(self.sure_write_stmt());
                }
                if self.rng.chance(70) {
                    stmts.push(self.stmt(StmtKind::XaEnd));
                    let end = if self.rng.chance(70) {
                        StmtKind::XaCommit
                    } else {
                        StmtKind::XaRollback
                    };
                    stmts.push(self.stmt(end));
                }
            }
        }
        stmts
    }

    fn gid(&mut self) -> u32 {
        self.next_gid += 1;
        self.next_gid
    }

    /// Five to seven statements of every kind, in any order.
    fn mix(&mut self) -> Vec<Stmt> {
        let n = self.rng.range(5, 7);
        let chain = self.kind != Kind::Sqlite;
        let mut stmts = Vec::new();
        for _ in 0..n {
            // write, read, begin, commit, rollback, savepoint, release,
            // rollback to, duplicate, chain, set, ddl
            let kind = match self.rng.weighted(&[
                36,
                10,
                12,
                10,
                6,
                6,
                4,
                4,
                4,
                if chain { 4 } else { 0 },
                5,
                3,
            ]) {
                0 => StmtKind::Write(self.write_inner()),
                1 => StmtKind::Read,
                2 => self.begin(),
                3 => StmtKind::Commit,
                4 => StmtKind::Rollback,
                5 => StmtKind::Savepoint(*self.rng.pick(&['a', 'b'])),
                6 => StmtKind::Release(*self.rng.pick(&['a', 'b'])),
                7 => StmtKind::RollbackTo(*self.rng.pick(&['a', 'b'])),
                8 => StmtKind::Write(Write::Duplicate),
                9 => {
                    if self.rng.chance(60) {
                        StmtKind::CommitChain
                    } else {
                        StmtKind::RollbackChain
                    }
                }
                10 => StmtKind::Set,
                _ => StmtKind::Ddl,
            };
            stmts.push(self.stmt(kind));
        }
        stmts
    }

    fn write_inner(&mut self) -> Write {
        match self.write() {
            Write::Orphan | Write::Duplicate => self.value_write(),
            w => w,
        }
    }

    /// A statement of `kind`, spelled one of the ways the backend accepts.
    fn stmt(&mut self, kind: StmtKind) -> Stmt {
        let text = self.spell(&kind);
        let text = match self.rng.below(20) {
            0 => format!("/* model */ {text}"),
            1 => format!("\n  {text}\n"),
            _ => text,
        };
        Stmt { kind, text }
    }

    fn table(&mut self) -> &'static str {
        let options: &[&'static str] = match self.kind {
            Kind::Sqlite => &[
                "model_rows",
                "model_rows",
                "\"model_rows\"",
                "`model_rows`",
                "main.model_rows",
                "MODEL_ROWS",
            ],
            Kind::Postgres => &[
                "model_rows",
                "model_rows",
                "\"model_rows\"",
                "public.model_rows",
                "MODEL_ROWS",
            ],
            Kind::Mysql => &["model_rows", "model_rows", "`model_rows`"],
        };
        options[self.rng.below(options.len())]
    }

    fn spell(&mut self, kind: &StmtKind) -> String {
        let k = self.kind;
        let one = |rng: &mut Rng, options: &[&str]| -> String { (*rng.pick(options)).to_string() };
        match kind {
            StmtKind::Write(write) => self.spell_write(write),
            StmtKind::Read => {
                let t = self.table();
                match self.rng.below(3) {
                    0 => format!("SELECT v FROM {t} WHERE id = 1"),
                    1 => format!("select count(*) from {t}"),
                    _ => "SELECT 1".to_string(),
                }
            }
            StmtKind::Begin { locks: true } => one(
                &mut self.rng,
                &[
                    "BEGIN IMMEDIATE",
                    "BEGIN EXCLUSIVE",
                    "begin immediate transaction",
                ],
            ),
            StmtKind::Begin { locks: false } => match k {
                Kind::Sqlite => one(
                    &mut self.rng,
                    &["BEGIN", "BEGIN TRANSACTION", "BEGIN DEFERRED", "begin"],
                ),
                Kind::Postgres => one(
                    &mut self.rng,
                    &[
                        "BEGIN",
                        "BEGIN WORK",
                        "START TRANSACTION",
                        "BEGIN ISOLATION LEVEL REPEATABLE READ",
                        "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                        "begin transaction read write",
                    ],
                ),
                Kind::Mysql => one(
                    &mut self.rng,
                    &[
                        "BEGIN",
                        "BEGIN WORK",
                        "START TRANSACTION",
                        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                        "start transaction read write",
                    ],
                ),
            },
            StmtKind::Commit => match k {
                Kind::Sqlite => one(
                    &mut self.rng,
                    &[
                        "COMMIT",
                        "END",
                        "COMMIT TRANSACTION",
                        "END TRANSACTION",
                        "commit",
                    ],
                ),
                Kind::Postgres => one(
                    &mut self.rng,
                    &["COMMIT", "END", "COMMIT WORK", "END TRANSACTION", "commit"],
                ),
                Kind::Mysql => one(
                    &mut self.rng,
                    &["COMMIT", "COMMIT WORK", "commit", "COMMIT AND NO CHAIN"],
                ),
            },
            StmtKind::Rollback => match k {
                Kind::Sqlite => one(
                    &mut self.rng,
                    &["ROLLBACK", "ROLLBACK TRANSACTION", "rollback"],
                ),
                Kind::Postgres => one(
                    &mut self.rng,
                    &["ROLLBACK", "ABORT", "ROLLBACK WORK", "rollback transaction"],
                ),
                Kind::Mysql => one(
                    &mut self.rng,
                    &[
                        "ROLLBACK",
                        "ROLLBACK WORK",
                        "rollback",
                        "ROLLBACK AND NO CHAIN",
                    ],
                ),
            },
            StmtKind::CommitChain => match k {
                Kind::Postgres => one(
                    &mut self.rng,
                    &["COMMIT AND CHAIN", "END AND CHAIN", "commit work and chain"],
                ),
                _ => one(
                    &mut self.rng,
                    &["COMMIT AND CHAIN", "COMMIT WORK AND CHAIN"],
                ),
            },
            StmtKind::RollbackChain => match k {
                Kind::Postgres => one(&mut self.rng, &["ROLLBACK AND CHAIN", "ABORT AND CHAIN"]),
                _ => one(
                    &mut self.rng,
                    &["ROLLBACK AND CHAIN", "rollback work and chain"],
                ),
            },
            StmtKind::Savepoint(name) => format!("SAVEPOINT {name}"),
            StmtKind::Release(name) => match (k, self.rng.below(2)) {
                (Kind::Mysql, _) | (_, 0) => format!("RELEASE SAVEPOINT {name}"),
                _ => format!("RELEASE {name}"),
            },
            StmtKind::RollbackTo(name) => match self.rng.below(3) {
                0 => format!("ROLLBACK TO SAVEPOINT {name}"),
                1 => format!("ROLLBACK TO {name}"),
                _ if k == Kind::Sqlite => format!("ROLLBACK TRANSACTION TO SAVEPOINT {name}"),
                _ => format!("ROLLBACK WORK TO SAVEPOINT {name}"),
            },
            StmtKind::DeferFk => match k {
                Kind::Sqlite => "PRAGMA defer_foreign_keys = ON".to_string(),
                _ => "SET CONSTRAINTS ALL DEFERRED".to_string(),
            },
            StmtKind::AutocommitOff => one(
                &mut self.rng,
                &[
                    "SET autocommit = 0",
                    "SET autocommit=OFF",
                    "SET SESSION autocommit = 0",
                    "SET @@autocommit = 0",
                    "set @@session.autocommit := 0",
                ],
            ),
            StmtKind::AutocommitOn => one(
                &mut self.rng,
                &[
                    "SET autocommit = 1",
                    "SET autocommit = ON",
                    "SET @@autocommit := 1",
                ],
            ),
            StmtKind::ImplicitCommit => one(
                &mut self.rng,
                &[
                    "CREATE TABLE IF NOT EXISTS model_ddl (x INTEGER)",
                    "DROP TABLE IF EXISTS model_ddl_missing",
                    "TRUNCATE TABLE model_scratch",
                ],
            ),
            StmtKind::Set => match k {
                Kind::Sqlite => one(
                    &mut self.rng,
                    &["PRAGMA cache_size = 2000", "PRAGMA temp_store = MEMORY"],
                ),
                Kind::Postgres => one(
                    &mut self.rng,
                    &[
                        "SET application_name = 'model'",
                        "SET LOCAL lock_timeout = '100ms'",
                        "set search_path = public",
                        "SET TIME ZONE 'UTC'",
                    ],
                ),
                Kind::Mysql => one(
                    &mut self.rng,
                    &["SET @model = 1", "SET NAMES utf8mb4", "set @model := 2"],
                ),
            },
            StmtKind::Ddl => match k {
                Kind::Sqlite => one(
                    &mut self.rng,
                    &[
                        "DROP VIEW IF EXISTS model_missing_view",
                        "DROP INDEX IF EXISTS model_missing_index",
                    ],
                ),
                Kind::Postgres => one(
                    &mut self.rng,
                    &[
                        "DROP VIEW IF EXISTS model_missing_view",
                        "DROP INDEX IF EXISTS model_missing_index",
                        "ALTER TABLE model_scratch ALTER COLUMN x SET DEFAULT 1",
                    ],
                ),
                Kind::Mysql => one(
                    &mut self.rng,
                    &[
                        "DROP VIEW IF EXISTS model_missing_view",
                        "ALTER TABLE model_scratch COMMENT = 'model'",
                    ],
                ),
            },
            StmtKind::Prepare(n) => format!("PREPARE TRANSACTION 'model_{n}'"),
            StmtKind::CommitPrepared(n) => format!("COMMIT PREPARED 'model_{n}'"),
            StmtKind::RollbackPrepared(n) => format!("ROLLBACK PREPARED 'model_{n}'"),
            StmtKind::XaStart => "XA START 'model'".to_string(),
            StmtKind::XaEnd => "XA END 'model'".to_string(),
            StmtKind::XaCommit => "XA COMMIT 'model' ONE PHASE".to_string(),
            StmtKind::XaRollback => "XA ROLLBACK 'model'".to_string(),
        }
    }

    fn spell_write(&mut self, write: &Write) -> String {
        let t = self.table();
        let k = self.kind;
        let lower = self.rng.chance(20);
        let with = k != Kind::Mysql && self.rng.chance(10);
        let text = match write {
            Write::Update { id, v } => format!("UPDATE {t} SET v = {v} WHERE id = {id}"),
            Write::Insert { id, v } => format!("INSERT INTO {t} (id, v) VALUES ({id}, {v})"),
            Write::InsertPair { a, b, v } => {
                format!("INSERT INTO {t} (id, v) VALUES ({a}, {v}), ({b}, {})", v + 1)
            }
            Write::Upsert { id, v } => match (k, self.rng.below(2)) {
                (Kind::Mysql, 0) => {
                    format!("INSERT INTO {t} (id, v) VALUES ({id}, {v}) ON DUPLICATE KEY UPDATE v = {v}")
                }
                (Kind::Mysql | Kind::Sqlite, _) => format!("REPLACE INTO {t} (id, v) VALUES ({id}, {v})"),
                _ => format!(
                    "INSERT INTO {t} (id, v) VALUES ({id}, {v}) ON CONFLICT (id) DO UPDATE SET v = excluded.v"
                ),
            },
            Write::Delete { id } => format!("DELETE FROM {t} WHERE id = {id}"),
            Write::Bump => format!("UPDATE {t} SET v = v + 1 WHERE id > 0"),
            Write::Duplicate => format!("INSERT INTO {t} (id, v) VALUES ({SENTINEL}, -1)"),
            Write::Orphan => {
                format!("INSERT INTO model_child (parent_id) VALUES ({MISSING_PARENT})")
            }
        };
        let text = if lower {
            lowercase_keywords(&text)
        } else {
            text
        };
        if with {
            format!("WITH unused AS (SELECT 1) {text}")
        } else {
            text
        }
    }
}

/// The statement with its keywords (not its identifiers) in lower case.
fn lowercase_keywords(text: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "UPDATE",
        "SET",
        "WHERE",
        "INSERT",
        "INTO",
        "VALUES",
        "DELETE",
        "FROM",
        "REPLACE",
        "ON",
        "CONFLICT",
        "DO",
        "DUPLICATE",
        "KEY",
    ];
    text.split(' ')
        .map(|word| {
            if KEYWORDS.contains(&word) {
                word.to_ascii_lowercase()
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------
// The backends

/// A database the model runs against, with its connections.
pub trait ModelDb: Sync + Sized {
    type Conn: Connection + Send;
    const KIND: Kind;

    /// A fresh database holding the model's tables at their initial rows
    /// (one for the run, one per attempt while shrinking).
    fn create() -> Self;
    /// Puts the initial rows back through `plain` (no writer is open).
    fn reset(&self, plain: &mut Self::Conn);
    /// A writer: instrumented, with a short lock timeout.
    fn writer(&self) -> Self::Conn;
    /// The reader: instrumented.
    fn reader(&self) -> Self::Conn;
    /// A connection dbkit does not track, for the committed values.
    fn plain(&self) -> Self::Conn;
    /// The cached function.
    fn cached(conn: &mut Self::Conn, id: i32) -> QueryResult<Option<i32>>;
    /// A diesel DSL write.
    fn write(conn: &mut Self::Conn, write: &Write) -> QueryResult<usize>;
    /// Every row, plainly.
    fn read(conn: &mut Self::Conn) -> QueryResult<Vec<(i32, i32)>>;
    /// Ends what a sequence may leave behind its connections (PostgreSQL:
    /// prepared transactions): found through `plain`, ended through the
    /// instrumented `reader` so that dbkit sees them end.
    fn cleanup(_plain: &mut Self::Conn, _reader: &mut Self::Conn) {}
    /// Runs `body` in a diesel transaction opened as `how` says.
    fn transaction_as(
        conn: &mut Self::Conn,
        how: TxHow,
        body: &mut dyn FnMut(&mut Self::Conn) -> QueryResult<()>,
    ) -> QueryResult<()>;
}

/// The DSL parts of a [`ModelDb`] implementation for a concrete connection
/// type: `write` (but `Write::Upsert`, which calls `Self::upsert`) and
/// `read`.
#[macro_export]
macro_rules! model_dsl {
    ($conn:ident) => {
        fn write(
            conn: &mut $conn,
            write: &$crate::common::model::Write,
        ) -> diesel::QueryResult<usize> {
            use diesel::prelude::*;
            use $crate::common::model::{model_child, model_rows, Write};
            match *write {
                Write::Update { id, v } => diesel::update(model_rows::table.find(id))
                    .set(model_rows::v.eq(v))
                    .execute(conn),
                Write::Insert { id, v } => diesel::insert_into(model_rows::table)
                    .values((model_rows::id.eq(id), model_rows::v.eq(v)))
                    .execute(conn),
                Write::Upsert { id, v } => Self::upsert(conn, id, v),
                Write::InsertPair { a, b, v } => diesel::insert_into(model_rows::table)
                    .values(vec![
                        (model_rows::id.eq(a), model_rows::v.eq(v)),
                        (model_rows::id.eq(b), model_rows::v.eq(v + 1)),
                    ])
                    .execute(conn),
                Write::Delete { id } => diesel::delete(model_rows::table.find(id)).execute(conn),
                Write::Bump => diesel::update(model_rows::table.filter(model_rows::id.gt(0)))
                    .set(model_rows::v.eq(model_rows::v + 1))
                    .execute(conn),
                Write::Duplicate => diesel::insert_into(model_rows::table)
                    .values((
                        model_rows::id.eq($crate::common::model::SENTINEL),
                        model_rows::v.eq(-1),
                    ))
                    .execute(conn),
                Write::Orphan => diesel::insert_into(model_child::table)
                    .values(model_child::parent_id.eq($crate::common::model::MISSING_PARENT))
                    .execute(conn),
            }
        }

        fn read(conn: &mut $conn) -> diesel::QueryResult<Vec<(i32, i32)>> {
            use diesel::prelude::*;
            use $crate::common::model::model_rows;
            model_rows::table
                .select((model_rows::id, model_rows::v))
                .order(model_rows::id)
                .load(conn)
        }
    };
}

/// The body of the cached function: `v` of row `id`, if it exists.
#[macro_export]
macro_rules! model_cached_body {
    ($conn:ident, $id:ident) => {{
        use diesel::prelude::*;
        use $crate::common::model::model_rows;
        model_rows::table
            .find($id)
            .select(model_rows::v)
            .get_result::<i32>($conn)
            .optional()
    }};
}

// ---------------------------------------------------------------------------
// The runner

/// The payload of [`Act::Panic`]: `resume_unwind` skips the panic hook.
struct ModelPanic;

/// Why a sequence failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The cache served a value the database does not hold.
    Stale,
    /// The reader's cached call itself failed.
    ReaderError,
    /// Writes still in flight once every connection was closed.
    LeakedMarks,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    /// The top-level operation it happened in (`ops.len()`: at the end).
    pub op: usize,
    pub trace: Vec<String>,
}

/// What running sequences did.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub sequences: usize,
    pub ops: usize,
    pub steps: usize,
    pub checks: usize,
    pub writer_errors: usize,
    pub lock_timeouts: usize,
    pub panics: usize,
    /// The most operations in one sequence.
    pub most_ops: usize,
    /// The sequence with the most steps: its operations, steps and seed.
    pub longest_ops: usize,
    pub longest_steps: usize,
    pub longest_seed: u64,
    /// Seeds of sequences where a writer hit its lock timeout (the model
    /// let it wait on another writer): a few, to look into.
    pub lock_timeout_seeds: Vec<u64>,
}

/// The reader and the plain connection, kept from one sequence to the next
/// (neither writes: the reader's tracker only ever sees reads).
pub struct Observers<D: ModelDb> {
    reader: D::Conn,
    plain: D::Conn,
}

impl<D: ModelDb> Observers<D> {
    pub fn new(db: &D) -> Self {
        Observers {
            reader: db.reader(),
            plain: db.plain(),
        }
    }
}

/// A writer connection's place: opened on first use, so that a writer the
/// sequence never uses costs no connection.
enum Slot<C> {
    Closed,
    Idle(C),
    /// Taken by the operation running.
    InUse,
}

struct Runner<'d, D: ModelDb> {
    db: &'d D,
    writers: Vec<Slot<D::Conn>>,
    reader: &'d mut D::Conn,
    plain: &'d mut D::Conn,
    trace: Vec<String>,
    depth: usize,
    op: usize,
    totals: Totals,
}

fn outcome<T: fmt::Debug>(r: &QueryResult<T>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({})", one_line(&e.to_string())),
    }
}

fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 110 {
        let mut end = 110;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s
    }
}

fn is_lock_timeout(e: &DieselError) -> bool {
    let text = e.to_string();
    text.contains("lock timeout") || text.contains("Lock wait timeout")
}

impl<D: ModelDb> Runner<'_, D> {
    fn log(&mut self, line: String) {
        let pad = "    ".repeat(self.depth);
        self.trace.push(format!("{pad}{line}"));
    }

    fn count<T>(&mut self, r: &QueryResult<T>) {
        if let Err(e) = r {
            self.totals.writer_errors += 1;
            if is_lock_timeout(e) {
                self.totals.lock_timeouts += 1;
                self.log("(a lock timeout: the model let this writer wait on another)".into());
            }
        }
    }

    /// Every cached value the reader gets must be what the database holds.
    fn check(&mut self, after: &str) -> Result<(), Failure> {
        self.totals.checks += 1;
        let committed = D::read(self.plain).expect("read the committed rows");
        for id in IDS {
            let db = committed.iter().find(|(i, _)| *i == id).map(|(_, v)| *v);
            match D::cached(self.reader, id) {
                Ok(cached) if cached == db => {}
                Ok(cached) => {
                    return Err(self.fail(
                        FailureKind::Stale,
                        format!(
                            "STALE READ after {after}: the reader's cached read of id {id} returned {cached:?}, the database holds {db:?} (committed rows: {committed:?})"
                        ),
                    ));
                }
                Err(e) => {
                    return Err(self.fail(
                        FailureKind::ReaderError,
                        format!("the reader's cached read of id {id} failed after {after}: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn fail(&mut self, kind: FailureKind, message: String) -> Failure {
        self.log(format!("!!! {message}"));
        Failure {
            kind,
            message,
            op: self.op,
            trace: std::mem::take(&mut self.trace),
        }
    }

    /// Writer `w`'s connection, opened if need be; `None` while in use.
    fn take(&mut self, w: usize) -> Option<D::Conn> {
        let slot = self.writers.get_mut(w)?;
        match std::mem::replace(slot, Slot::InUse) {
            Slot::Idle(conn) => Some(conn),
            Slot::Closed => Some(self.db.writer()),
            Slot::InUse => None,
        }
    }

    fn op(&mut self, i: usize, op: &Op) -> Result<(), Failure> {
        self.op = i;
        self.totals.ops += 1;
        match op {
            Op::Reconnect(w) => {
                // Dropped now, opened again when next used.
                self.writers[*w] = Slot::Closed;
                self.log(format!("{:>3}. w{w}: dropped and reopened", i + 1));
            }
            Op::On(w, act) => {
                self.log(format!("{:>3}. w{w}:", i + 1));
                self.depth = 1;
                let Some(mut conn) = self.take(*w) else {
                    self.log("(writer in use: skipped)".to_string());
                    return Ok(());
                };
                let result = panic::catch_unwind(AssertUnwindSafe(|| self.act(*w, &mut conn, act)));
                self.depth = 0;
                match result {
                    Ok(result) => {
                        self.writers[*w] = Slot::Idle(conn);
                        result?;
                    }
                    Err(payload) if payload.is::<ModelPanic>() => {
                        drop(conn);
                        self.totals.panics += 1;
                        let mut dropped = Vec::new();
                        for (u, slot) in self.writers.iter_mut().enumerate() {
                            if matches!(slot, Slot::InUse) {
                                *slot = Slot::Closed;
                                dropped.push(format!("w{u}"));
                            }
                        }
                        self.log(format!(
                            "     panicked out: {} dropped mid-transaction and reopened",
                            dropped.join(", ")
                        ));
                    }
                    Err(payload) => panic::resume_unwind(payload),
                }
            }
        }
        self.check(&format!("operation {}", i + 1))
    }

    fn act(&mut self, w: usize, conn: &mut D::Conn, act: &Act) -> Result<(), Failure> {
        self.totals.steps += 1;
        match act {
            Act::Write(write) => {
                let r = D::write(conn, write);
                self.count(&r);
                self.log(format!("diesel: {write} -> {}", outcome(&r)));
            }
            Act::Raw(stmts) => {
                let text = batch_text(stmts);
                let r = conn.batch_execute(&text);
                self.count(&r);
                self.log(format!("batch_execute({text:?}) -> {}", outcome(&r)));
            }
            Act::CachedRead(id) => {
                let r = D::cached(conn, *id);
                self.log(format!("cached read of id {id} on w{w} -> {}", outcome(&r)));
            }
            Act::Read => {
                let r = D::read(conn);
                self.count(&r);
                self.log(format!("plain read on w{w} -> {}", outcome(&r)));
            }
            Act::Panic => {
                self.log(format!("w{w} panics"));
                panic::resume_unwind(Box::new(ModelPanic));
            }
            Act::Thread(inner) => {
                self.log("on another thread:".to_string());
                self.depth += 1;
                let joined = std::thread::scope(|s| s.spawn(|| self.act(w, conn, inner)).join());
                self.depth -= 1;
                match joined {
                    Ok(r) => r?,
                    Err(payload) => panic::resume_unwind(payload),
                }
            }
            Act::Tx(tx) => {
                self.log(format!("w{w}: transaction ({:?}) {{", tx.how));
                self.depth += 1;
                let mut failure = None;
                let r = D::transaction_as(conn, tx.how, &mut |c| {
                    for (j, step) in tx.body.iter().enumerate() {
                        let r = match step {
                            Step::Own(a) => self.act(w, c, a),
                            Step::Other(u, a) => self.other(*u, a),
                        };
                        // A plain read changes neither the cache nor the
                        // database.
                        let r = if matches!(step, Step::Own(Act::Read)) {
                            r
                        } else {
                            r.and_then(|()| {
                                self.check(&format!("step {} of w{w}'s transaction", j + 1))
                            })
                        };
                        if let Err(f) = r {
                            failure = Some(f);
                            return Err(DieselError::RollbackTransaction);
                        }
                    }
                    match tx.end {
                        End::Commit => Ok(()),
                        End::Rollback => Err(DieselError::RollbackTransaction),
                    }
                });
                self.depth -= 1;
                if let Some(f) = failure {
                    return Err(f);
                }
                let expected_rollback =
                    tx.end == End::Rollback && matches!(r, Err(DieselError::RollbackTransaction));
                if !expected_rollback {
                    self.count(&r);
                }
                self.log(format!("}} -> {:?}: {}", tx.end, outcome(&r)));
            }
        }
        Ok(())
    }

    fn other(&mut self, u: usize, act: &Act) -> Result<(), Failure> {
        let Some(mut conn) = self.take(u) else {
            self.log(format!("w{u} is in use: skipped"));
            return Ok(());
        };
        self.log(format!("w{u}:"));
        self.depth += 1;
        // A panic drops `conn` here, and leaves its slot in use (then
        // closed).
        let r = self.act(u, &mut conn, act);
        self.depth -= 1;
        self.writers[u] = Slot::Idle(conn);
        r
    }
}

/// Writes in flight, by table.
fn in_flight() -> Vec<(String, u64)> {
    dbkit::report()
        .tables
        .into_iter()
        .filter(|t| t.writes_in_flight > 0)
        .map(|t| (t.table, t.writes_in_flight))
        .collect()
}

/// Runs one sequence on `db` (its rows at their initial values).
pub fn run_sequence<D: ModelDb>(
    db: &D,
    observers: &mut Observers<D>,
    seq: &Sequence,
) -> Result<Totals, Failure> {
    dbkit::clear_all();
    let in_flight_before = in_flight();
    let mut runner = Runner {
        db,
        writers: (0..seq.writers).map(|_| Slot::Closed).collect(),
        reader: &mut observers.reader,
        plain: &mut observers.plain,
        trace: Vec::new(),
        depth: 0,
        op: 0,
        totals: Totals::default(),
    };
    let outcome = (|| {
        runner.check("the start")?;
        for (i, op) in seq.ops.iter().enumerate() {
            runner.op(i, op)?;
        }
        runner.op = seq.ops.len();
        runner.writers.clear();
        runner.log("every writer closed".to_string());
        runner.check("every writer closed")
    })();
    runner.writers.clear();
    D::cleanup(runner.plain, runner.reader);
    outcome?;
    // Compared with what was in flight before: a leak stays for good.
    let leaked: Vec<String> = in_flight()
        .into_iter()
        .filter_map(|(table, n)| {
            let before = in_flight_before
                .iter()
                .find(|(t, _)| *t == table)
                .map_or(0, |(_, b)| *b);
            (n > before).then(|| format!("{table} ({} more in flight)", n - before))
        })
        .collect();
    if !leaked.is_empty() {
        return Err(runner.fail(
            FailureKind::LeakedMarks,
            format!(
                "writes still in flight once every connection was closed: {}",
                leaked.join(", ")
            ),
        ));
    }
    if std::env::var_os("DBKIT_MODEL_PRINT").is_some() {
        eprintln!("{seq}\n{}\n", runner.trace.join("\n"));
    }
    Ok(runner.totals)
}

// ---------------------------------------------------------------------------
// Shrinking

fn act_variants(act: &Act) -> Vec<Act> {
    match act {
        Act::Raw(stmts) if stmts.len() > 1 => (0..stmts.len())
            .map(|i| {
                let mut fewer = stmts.clone();
                fewer.remove(i);
                Act::Raw(fewer)
            })
            .collect(),
        Act::Thread(inner) => {
            let mut out = vec![(**inner).clone()];
            out.extend(
                act_variants(inner)
                    .into_iter()
                    .map(|a| Act::Thread(Box::new(a))),
            );
            out
        }
        Act::Tx(tx) => {
            let mut out = Vec::new();
            for i in 0..tx.body.len() {
                let mut fewer = (**tx).clone();
                fewer.body.remove(i);
                out.push(Act::Tx(Box::new(fewer)));
            }
            for (i, step) in tx.body.iter().enumerate() {
                let (Step::Own(a) | Step::Other(_, a)) = step;
                for variant in act_variants(a) {
                    let mut changed = (**tx).clone();
                    changed.body[i] = match step {
                        Step::Own(_) => Step::Own(variant),
                        Step::Other(u, _) => Step::Other(*u, variant),
                    };
                    out.push(Act::Tx(Box::new(changed)));
                }
            }
            if tx.how != TxHow::Plain {
                let mut plain = (**tx).clone();
                plain.how = TxHow::Plain;
                out.push(Act::Tx(Box::new(plain)));
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Every sequence one simplification away from `seq`.
fn variants(seq: &Sequence) -> Vec<Sequence> {
    let mut out = Vec::new();
    for i in 0..seq.ops.len() {
        let mut fewer = seq.clone();
        fewer.ops.remove(i);
        out.push(fewer);
    }
    for (i, op) in seq.ops.iter().enumerate() {
        if let Op::On(w, act) = op {
            for variant in act_variants(act) {
                let mut changed = seq.clone();
                changed.ops[i] = Op::On(*w, variant);
                out.push(changed);
            }
        }
    }
    out
}

/// Shrinks a failing sequence: keeps every simplification that still fails
/// the same way on a fresh database. Returns the smallest sequence, its
/// failure, and whether the original failure reproduced at all.
fn shrink<D: ModelDb>(seq: &Sequence, failure: Failure) -> (Sequence, Failure, bool) {
    let deadline = Instant::now() + Duration::from_secs(240);
    let kind = failure.kind;
    let fails = |candidate: &Sequence| -> Option<Failure> {
        let db = D::create();
        run_sequence(&db, &mut Observers::new(&db), candidate)
            .err()
            .filter(|f| f.kind == kind)
    };
    let Some(mut best_failure) = fails(seq) else {
        return (seq.clone(), failure, false);
    };
    let mut best = seq.clone();
    // What ran after the failing operation did not matter.
    best.ops.truncate(best_failure.op + 1);
    if let Some(f) = fails(&best) {
        best_failure = f;
    } else {
        best = seq.clone();
    }
    'outer: while Instant::now() < deadline {
        for candidate in variants(&best) {
            if Instant::now() >= deadline {
                break 'outer;
            }
            if !valid(&candidate) {
                continue;
            }
            if let Some(f) = fails(&candidate) {
                best = candidate;
                best_failure = f;
                continue 'outer;
            }
        }
        break;
    }
    (best, best_failure, true)
}

// ---------------------------------------------------------------------------
// The test

/// How many sequences, and how long each.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub sequences: usize,
    pub min_ops: usize,
    pub max_ops: usize,
}

/// The seed when `DBKIT_MODEL_SEED` is not set.
pub const DEFAULT_SEED: u64 = 20_261_202;

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
    )
}

/// Runs the model test against `D`: panics with a shrunk reproducer on the
/// first failure.
pub fn run<D: ModelDb>(config: Config) {
    let base = env_number("DBKIT_MODEL_SEED").unwrap_or(DEFAULT_SEED);
    let sequences = env_number("DBKIT_MODEL_SEQUENCES").map_or(config.sequences, |n| n as usize);
    let started = Instant::now();
    let db = D::create();
    let mut observers = Observers::new(&db);
    let mut totals = Totals::default();
    for i in 0..sequences {
        let seed = base.wrapping_add(i as u64);
        let seq = generate(seed, D::KIND, config.min_ops, config.max_ops);
        if i > 0 {
            db.reset(&mut observers.plain);
        }
        match run_sequence(&db, &mut observers, &seq) {
            Ok(t) => {
                totals.sequences += 1;
                totals.ops += t.ops;
                totals.steps += t.steps;
                totals.checks += t.checks;
                totals.writer_errors += t.writer_errors;
                totals.lock_timeouts += t.lock_timeouts;
                if t.lock_timeouts > 0 && totals.lock_timeout_seeds.len() < 5 {
                    totals.lock_timeout_seeds.push(seed);
                }
                totals.panics += t.panics;
                totals.most_ops = totals.most_ops.max(seq.ops.len());
                let size = seq.size();
                if size > totals.longest_steps {
                    totals.longest_steps = size;
                    totals.longest_ops = seq.ops.len();
                    totals.longest_seed = seed;
                }
            }
            Err(failure) => {
                eprintln!(
                    "{:?} model: sequence {i} (seed {seed}) failed after {} sequences; shrinking",
                    D::KIND,
                    totals.sequences
                );
                let (shrunk, failure, reproduced) = shrink::<D>(&seq, failure);
                panic!(
                    "{kind:?} model: {message}\n\
                     seed {seed} (sequence {i} of base seed {base}); reproduce with \
                     DBKIT_MODEL_SEED={seed} DBKIT_MODEL_SEQUENCES=1\n\
                     {repro}\
                     shrunk from {from} to {to} operations ({size} steps):\n{shrunk}\n\
                     what the shrunk sequence did:\n{trace}\n",
                    kind = D::KIND,
                    message = failure.message,
                    repro = if reproduced {
                        ""
                    } else {
                        "(it did NOT fail again on a fresh database: not shrunk)\n"
                    },
                    from = seq.ops.len(),
                    to = shrunk.ops.len(),
                    size = shrunk.size(),
                    trace = failure.trace.join("\n"),
                );
            }
        }
    }
    let elapsed = started.elapsed();
    let stats = super::stats_of("model_value");
    eprintln!(
        "{:?} model: seed {base}, {} sequences, {} operations ({} steps, {} checks) in {:.1} s; \
         longest sequence: {} operations; most steps: {} (seed {}, {} operations); \
         writer statements that failed: {}, \
         lock timeouts: {} (seeds {:?}), panics: {}; cache: {} hits, {} misses, {} stale refusals, {} stores, {} bypasses",
        D::KIND,
        totals.sequences,
        totals.ops,
        totals.steps,
        totals.checks,
        elapsed.as_secs_f64(),
        totals.most_ops,
        totals.longest_steps,
        totals.longest_seed,
        totals.longest_ops,
        totals.writer_errors,
        totals.lock_timeouts,
        totals.lock_timeout_seeds,
        totals.panics,
        stats.hits,
        stats.misses,
        stats.stale_rejections,
        stats.stores,
        stats.bypasses,
    );
    if sequences >= 100 {
        assert!(
            stats.hits > 0,
            "the cache never served a read: nothing was tested"
        );
        assert!(
            stats.stale_rejections > 0,
            "no write ever invalidated a cached entry: nothing was tested"
        );
    }
}
