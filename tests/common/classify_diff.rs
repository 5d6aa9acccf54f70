//! The SQL classifier (`dbkit_diesel::classify`) against real databases:
//! random texts built from pieces that stress lexing (quotes of every kind,
//! dollar quotes, comments of every kind, `;` inside all of them, numbers
//! like `1--1`, parameters, keywords) around real statements on
//! `t(id INTEGER PRIMARY KEY, v INTEGER)`, run with `batch_execute` on a
//! database reset for each text. The database is the oracle, for the
//! verdicts (`statements(text, dialect, false)`) of its own dialect and of
//! `Dialect::Any` (which must hide nothing any database runs;
//! `DBKIT_DIFF_ANY=0` leaves it out):
//!
//! - if `t` changed, the verdict must write `t`, or unknown tables;
//! - if the connection is left inside a transaction, the verdict must open
//!   one (or be unknown control);
//! - if the whole text ran without an error (every statement ran), the
//!   verdict's transaction steps, played in order, must end where the
//!   database ended (inside a transaction or not), unless it has unknown
//!   control: a COMMIT the classifier did not see leaves it believing that
//!   the transaction is still open.
//!
//! A text the database rejects, or stops running at an error, is fine: what
//! it did before is what is checked. Counterexamples are shrunk (pieces, then
//! characters, dropped while the same check still fails) and printed.
//!
//! Seeded: `DBKIT_DIFF_SEED` (decimal or `0x` hex; fixed by default, so CI
//! runs the same texts every time) picks the texts, and every run prints
//! its seed. `DBKIT_DIFF_CASES` (texts; each database has its
//! default) and `DBKIT_DIFF_SECS` (default 45) bound it; `DBKIT_DIFF_SHRINK`
//! is how many failing texts are shrunk (default 60). `DBKIT_DIFF_TEXT` runs
//! that one text instead and prints what the classifier and the database
//! made of it; `DBKIT_DIFF_SHOW` prints every text so.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use dbkit_diesel::classify::{statements, Dialect, Effect};
use diesel::prelude::*;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::methods::LoadQuery;
use diesel::sql_types::BigInt;

/// What `t` holds, in three numbers: rows, `sum(v)`, `sum(id * v)`.
#[derive(QueryableByName, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
    #[diesel(sql_type = BigInt)]
    pub s: i64,
    #[diesel(sql_type = BigInt)]
    pub w: i64,
}

/// The checksum query (SQLite, PostgreSQL).
pub const CHECKSUM_SQL: &str =
    "SELECT count(*) AS n, coalesce(sum(v), 0) AS s, coalesce(sum(id * v), 0) AS w FROM t";

/// What every text starts from.
pub const ROWS: &str = "INSERT INTO t (id, v) VALUES (1, 10), (2, 20), (3, 30)";

/// `t`'s checksum on `conn`, with `sql` (three BIGINT columns n, s, w).
pub fn checksum<C>(conn: &mut C, sql: &str) -> QueryResult<Checksum>
where
    C: Connection,
    SqlQuery: LoadQuery<'static, C, Checksum>,
{
    diesel::sql_query(sql).get_result::<Checksum>(conn)
}

/// A database to run texts on.
pub trait Database {
    /// For messages.
    const NAME: &'static str;
    /// Whose rules the classifier reads the texts by.
    const DIALECT: Dialect;
    /// How many texts a run tries by default.
    const CASES: u64;
    /// Ends any transaction and puts `t` back to [`ROWS`], outside a
    /// transaction; returns `t`'s checksum then.
    fn reset(&mut self) -> Checksum;
    /// `batch_execute(text)`.
    fn execute(&mut self, text: &str) -> Result<(), String>;
    /// Right after [`execute`](Database::execute): `t`'s checksum as the
    /// connection sees it (its own uncommitted writes included; after an
    /// aborted transaction, once rolled back), and whether the connection
    /// was left inside a transaction.
    fn observe(&mut self) -> (Checksum, bool);
}

/// What the database did with one text.
#[derive(Debug, Clone)]
pub struct Observed {
    pub result: Result<(), String>,
    pub changed: bool,
    pub in_transaction: bool,
}

fn observe<D: Database>(db: &mut D, text: &str) -> Observed {
    let before = db.reset();
    // diesel hands libmariadb's `mysql_real_query` a dangling pointer for
    // an empty text, which crashes it: run nothing instead.
    let result = if text.is_empty() {
        Ok(())
    } else {
        db.execute(text)
    };
    let (after, in_transaction) = db.observe();
    Observed {
        result,
        changed: after != before,
        in_transaction,
    }
}

/// A check the classifier failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Failure {
    /// `t` changed; the verdict writes neither `t` nor unknown tables.
    HiddenWrite,
    /// The connection was left inside a transaction; the verdict opens none.
    HiddenTransaction,
    /// Every statement ran; played in order, the verdict ends
    /// `modelled_open`, the database did not.
    WrongEndState { modelled_open: bool },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::HiddenWrite => {
                f.write_str("t changed, but the verdict has no write of t nor of unknown tables")
            }
            Failure::HiddenTransaction => f.write_str(
                "left inside a transaction, but the verdict opens none (nor unknown control)",
            ),
            Failure::WrongEndState { modelled_open } => write!(
                f,
                "every statement ran and the database is {}inside a transaction, but the \
                 verdict's transaction steps end {}inside one",
                if *modelled_open { "not " } else { "" },
                if *modelled_open { "" } else { "not " },
            ),
        }
    }
}

/// The classifier's verdict on `text`, as printed.
pub fn verdict(text: &str, dialect: Dialect) -> Vec<String> {
    statements(text, dialect, false)
        .map(|s| {
            let effect = match s.effect {
                Effect::Reads(t) => format!("Reads{:?}", t.as_slice()),
                Effect::Writes(t) if t.overflowed() => format!("Writes{:?}+more", t.as_slice()),
                Effect::Writes(t) => format!("Writes{:?}", t.as_slice()),
                other => format!("{other:?}"),
            };
            if s.commits_first {
                format!("{effect} (commits first)")
            } else {
                effect
            }
        })
        .collect()
}

/// Whether the verdict says `t` (or anything) may be written.
fn writes_t(effects: &[Effect<'_>]) -> bool {
    effects.iter().any(|e| match e {
        Effect::Writes(tables) => {
            tables.overflowed()
                || tables
                    .as_slice()
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case("t"))
        }
        Effect::WritesUnknown | Effect::UnknownControl => true,
        _ => false,
    })
}

/// Whether the verdict has a statement that may leave a transaction open
/// on `dialect`.
fn opens_transaction(effects: &[Effect<'_>], dialect: Dialect) -> bool {
    effects.iter().any(|e| match e {
        Effect::Begin | Effect::UnknownControl => true,
        Effect::Commit { chain } | Effect::Rollback { chain } => *chain,
        // Outside a transaction SQLite's SAVEPOINT opens one; PostgreSQL
        // refuses it, MySQL ignores it.
        Effect::Savepoint(_) => dialect == Dialect::Sqlite,
        Effect::Autocommit(value) => *value != Some(true),
        _ => false,
    })
}

/// The verdict's statements played in order, all of them run: whether a
/// transaction is open at the end. `None` where it cannot be modelled.
fn modelled_end_state(effects: &[Effect<'_>], dialect: Dialect) -> Option<bool> {
    let mut open = false;
    // SQLite: a transaction a SAVEPOINT opened ends when its outermost
    // savepoint is released.
    let mut by_savepoint = false;
    let mut savepoints: Vec<String> = Vec::new();
    for effect in effects {
        match effect {
            Effect::UnknownControl
            | Effect::Autocommit(_)
            | Effect::PrepareTransaction(_)
            | Effect::CommitPrepared(_)
            | Effect::RollbackPrepared(_) => return None,
            Effect::Begin => {
                open = true;
                by_savepoint = false;
                savepoints.clear();
            }
            Effect::Commit { chain } | Effect::Rollback { chain } => {
                open = *chain;
                by_savepoint = false;
                savepoints.clear();
            }
            Effect::Savepoint(name) if dialect == Dialect::Sqlite => {
                if !open {
                    open = true;
                    by_savepoint = true;
                }
                savepoints.push(name.to_ascii_lowercase());
            }
            Effect::Release(name) if dialect == Dialect::Sqlite => {
                let name = name.to_ascii_lowercase();
                let at = savepoints.iter().rposition(|s| *s == name)?;
                savepoints.truncate(at);
                if savepoints.is_empty() && by_savepoint {
                    open = false;
                    by_savepoint = false;
                }
            }
            Effect::RollbackTo(name) if dialect == Dialect::Sqlite => {
                let name = name.to_ascii_lowercase();
                let at = savepoints.iter().rposition(|s| *s == name)?;
                savepoints.truncate(at + 1);
            }
            _ => {}
        }
    }
    Some(open)
}

/// Every check that the verdict for `dialect` on `text` fails, given what
/// the database (whose rules are `db`'s) did.
pub fn judge(text: &str, dialect: Dialect, db: Dialect, observed: &Observed) -> Vec<Failure> {
    let effects: Vec<Effect<'_>> = statements(text, dialect, false).map(|s| s.effect).collect();
    let mut failures = Vec::new();
    if observed.changed && !writes_t(&effects) {
        failures.push(Failure::HiddenWrite);
    }
    if observed.in_transaction && !opens_transaction(&effects, db) {
        failures.push(Failure::HiddenTransaction);
    }
    if observed.result.is_ok() {
        if let Some(modelled_open) = modelled_end_state(&effects, db) {
            if modelled_open != observed.in_transaction {
                failures.push(Failure::WrongEndState { modelled_open });
            }
        }
    }
    failures
}

/// The first check `text` fails, by the verdict of each of `dialects`.
fn first_failure(
    text: &str,
    dialects: &[Dialect],
    db: Dialect,
    observed: &Observed,
) -> Option<(Dialect, Failure)> {
    dialects.iter().find_map(|&dialect| {
        judge(text, dialect, db, observed)
            .first()
            .map(|&failure| (dialect, failure))
    })
}

/// splitmix64: small, seeded, good enough to pick pieces.
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

    /// In `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.next_u64() % 100 < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index into `weights`, chosen by weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut at = (self.next_u64() % u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if at < *w {
                return i;
            }
            at -= w;
        }
        weights.len() - 1
    }
}

/// Statements that write `t`; `{id}` takes a small id (so that some
/// inserts collide and fail).
const WRITES: &[&str] = &[
    "UPDATE t SET v = v + 1",
    "UPDATE t SET v = v + 1 WHERE id = 1",
    "DELETE FROM t WHERE id = 2",
    "DELETE FROM t",
    "INSERT INTO t VALUES ({id}, 1)",
    "INSERT INTO t (id, v) VALUES ({id}, 5)",
];

/// PostgreSQL's data-modifying CTEs, bare and in parentheses.
const CTE_WRITES: &[&str] = &[
    "WITH d AS (DELETE FROM t WHERE id = 3 RETURNING id) SELECT 1",
    "(WITH d AS (UPDATE t SET v = v + 1 RETURNING id) SELECT 1)",
];

/// Transaction control, in the spellings of every dialect (each database
/// refuses some of them).
const CONTROL: &[&str] = &[
    "BEGIN",
    "BEGIN TRANSACTION",
    "BEGIN WORK",
    "START TRANSACTION",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "COMMIT AND CHAIN",
    "ROLLBACK AND CHAIN",
    "SAVEPOINT x",
    "SAVEPOINT y",
    "RELEASE x",
    "RELEASE SAVEPOINT y",
    "ROLLBACK TO x",
    "ROLLBACK TO SAVEPOINT y",
];

const READS: &[&str] = &[
    "SELECT 1",
    "SELECT v FROM t WHERE id = 1",
    "SELECT count(*) FROM t",
];

/// Quotes: strings (prefixed too), quoted identifiers, dollar quotes with
/// ASCII and non-ASCII tags (letters, a digit that is no ASCII digit, a
/// symbol, an emoji, a combining accent).
const QUOTES: &[(&str, &str)] = &[
    ("'", "'"),
    ("'", "'"),
    ("E'", "'"),
    ("e'", "'"),
    ("N'", "'"),
    ("X'", "'"),
    ("U&'", "'"),
    ("_utf8mb4'", "'"),
    ("\"", "\""),
    ("`", "`"),
    ("[", "]"),
    ("$$", "$$"),
    ("$a$", "$a$"),
    ("$tag$", "$tag$"),
    ("$_1$", "$_1$"),
    ("$é$", "$é$"),
    ("$ü1$", "$ü1$"),
    ("$日本$", "$日本$"),
    ("$٣$", "$٣$"),
    ("$€$", "$€$"),
    ("$😀$", "$😀$"),
    ("$e\u{301}$", "$e\u{301}$"),
];

/// Comments of every dialect, MySQL's executable ones too.
const COMMENTS: &[(&str, &str)] = &[
    ("/*", "*/"),
    ("/* ", " */"),
    ("/* /*", "*/ */"),
    ("/*!", "*/"),
    ("/*!50000 ", "*/"),
    ("/*M!", "*/"),
    ("/*+", "*/"),
    ("--", "\n"),
    ("-- ", "\n"),
    ("--\t", "\n"),
    ("--\x7f", "\n"),
    ("--\x0b", "\n"),
    ("#", "\n"),
    ("# ", "\n"),
    ("--", "\r"),
    ("-- ", "\r"),
    ("#", "\r"),
];

/// Parameters, SQLite's Tcl-style `$a(...)` ones too, and parentheses.
const PARAMS: &[(&str, &str)] = &[
    ("$a(", ")"),
    (":a(", ")"),
    ("@a(", ")"),
    ("#a(", ")"),
    ("(", ")"),
];

/// Loose pieces that open nothing (or close what they open).
#[rustfmt::skip]
const SAFE: &[&str] = &[
    ";", ";", ";", "\n", " ", " ", "\t", "\r\n", "\x0b", "\x0c", "1--1", "1-- 1", "1 --1", "1#1",
    "1/*2*/", "?", "?1", ":x", "@x", "@@x", "x", "t", "é", "٣", "€", "SELECT", "SELECT 1",
    "FROM t", "BEGIN", "COMMIT", "ROLLBACK", "END", "NOT ATOMIC", "E", "N", "U&", ",", ".", "=",
    "+", "*", "/", "-", "!", "0x1", "1e", "1.5", ".5", "'a'", "'a;b'", "\"a\"", "\"a;b\"", "[a]",
    "`a`", "$a", ":a", "@a", "$1", "(", ")", "/* ; */", "-- ;\n", "# ;\n", "$$;$$", "\\",
];

/// Loose pieces that may open (or close) a quote or a comment, by some
/// dialect's rules.
#[rustfmt::skip]
const RISKY: &[&str] = &[
    "'", "'", "''", "\\'", "\\\\", "\"", "\"\"", "`", "``", "--", "-- ", "/*", "*/", "#", "$",
    "$$", "$a$", "$٣$", "$€$", "[", "]", "\x7f", "'''", "E'\\''", "'\\''", "--\x7f", "$a(", ":a(",
    "/*!", "/*M!",
];

/// MariaDB's compound statements, which it runs outside stored programs
/// too, around one statement, and its `SET STATEMENT .. FOR` prefix.
const COMPOUND: &[(&str, &str)] = &[
    ("BEGIN NOT ATOMIC ", " END"),
    ("l: BEGIN NOT ATOMIC ", " END l"),
    ("IF 1 THEN ", " END IF"),
    ("CASE WHEN 1 THEN ", " END CASE"),
    ("REPEAT ", " UNTIL 1 END REPEAT"),
    ("FOR i IN 1..1 DO ", " END FOR"),
    ("WHILE 0 DO ", " END WHILE"),
    ("SET STATEMENT max_statement_time = 0 FOR ", ""),
];

const SEPARATORS: &[&str] = &[" ", " ", " ", "\n", "\n", "", "", "; ", ";\n"];

fn statement(rng: &mut Rng) -> String {
    let pool = match rng.weighted(&[47, 35, 15, 3]) {
        0 => WRITES,
        1 => CONTROL,
        2 => READS,
        _ => CTE_WRITES,
    };
    let id = 4 + rng.below(8);
    rng.pick(pool).replace("{id}", &id.to_string())
}

/// `count` segments, each after a separator.
fn segments(rng: &mut Rng, depth: usize, count: usize, out: &mut Vec<String>) {
    for n in 0..count {
        if n > 0 || depth > 0 {
            out.push(rng.pick(SEPARATORS).to_string());
        }
        // statement, SELECT quote/parameter, comment, any pair, safe,
        // risky, compound
        let weights: &[u32] = if depth == 0 {
            &[40, 18, 14, 6, 10, 6, 3]
        } else {
            &[25, 8, 6, 6, 25, 30, 1]
        };
        match rng.weighted(weights) {
            0 => {
                out.push(statement(rng));
                if rng.percent(70) {
                    out.push(";".into());
                }
            }
            1 => {
                out.push(
                    rng.pick(&["SELECT ", "SELECT 1, ", "SELECT 1 AS "])
                        .to_string(),
                );
                let pairs = if rng.percent(65) { QUOTES } else { PARAMS };
                wrapper(rng, depth, pairs, out);
            }
            2 => wrapper(rng, depth, COMMENTS, out),
            3 => {
                let pairs = *rng.pick(&[QUOTES, COMMENTS, PARAMS]);
                wrapper(rng, depth, pairs, out);
            }
            4 => out.push(rng.pick(SAFE).to_string()),
            5 => out.push(rng.pick(RISKY).to_string()),
            _ => {
                // MariaDB runs compound statements outside stored programs.
                let (open, close) = *rng.pick(COMPOUND);
                out.push(open.into());
                out.push(statement(rng));
                out.push(";".into());
                out.push(close.into());
            }
        }
    }
}

/// An opener from `pairs`, what it holds (past a depth, loose pieces only),
/// and mostly its own closer.
fn wrapper(rng: &mut Rng, depth: usize, pairs: &[(&str, &str)], out: &mut Vec<String>) {
    let (open, close) = *rng.pick(pairs);
    out.push(open.into());
    let inner = rng.below(4);
    if depth < 2 {
        segments(rng, depth + 1, inner, out);
    } else {
        for _ in 0..inner {
            out.push(rng.pick(RISKY).to_string());
        }
    }
    match rng.weighted(&[80, 12, 8]) {
        0 => out.push(close.into()),
        1 => {
            let pairs = *rng.pick(&[QUOTES, COMMENTS, PARAMS]);
            out.push(rng.pick(pairs).1.into());
        }
        _ => {}
    }
}

/// Text number `index` of the run seeded `seed`, as its pieces.
pub fn generate(seed: u64, index: u64) -> Vec<String> {
    let mut rng = Rng::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
    let mut out = Vec::new();
    let count = 1 + rng.below(6);
    segments(&mut rng, 0, count, &mut out);
    out.retain(|piece| !piece.is_empty());
    out
}

/// Drops pieces while `fails` still holds; `budget` bounds the checks.
pub fn shrink_pieces(
    pieces: Vec<String>,
    mut budget: usize,
    mut fails: impl FnMut(&str) -> bool,
) -> String {
    drop_spans(pieces, &mut budget, |p: &[String]| fails(&p.concat())).concat()
}

/// Drops characters while `fails` still holds; `budget` bounds the checks.
pub fn shrink_chars(text: &str, mut budget: usize, mut fails: impl FnMut(&str) -> bool) -> String {
    let chars: Vec<char> = text.chars().collect();
    drop_spans(chars, &mut budget, |c: &[char]| {
        fails(&c.iter().collect::<String>())
    })
    .into_iter()
    .collect()
}

/// Drops spans of `units` while `fails` holds: halves first, then every
/// span of up to four units at every place, to a fixpoint. Never tries
/// nothing at all (an empty text crashes libmariadb's `mysql_real_query`).
fn drop_spans<T: Clone>(
    mut units: Vec<T>,
    budget: &mut usize,
    mut fails: impl FnMut(&[T]) -> bool,
) -> Vec<T> {
    let mut try_without = |units: &mut Vec<T>, at: usize, len: usize, budget: &mut usize| {
        let end = (at + len).min(units.len());
        if *budget == 0 || end - at == units.len() {
            return false;
        }
        *budget -= 1;
        let candidate: Vec<T> = units[..at].iter().chain(&units[end..]).cloned().collect();
        if fails(&candidate) {
            *units = candidate;
            true
        } else {
            false
        }
    };
    let mut chunk = units.len() / 2;
    while chunk > 4 {
        let mut at = 0;
        while at < units.len() {
            if !try_without(&mut units, at, chunk, budget) {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    loop {
        let mut progress = false;
        for len in (1..=4).rev() {
            let mut at = 0;
            while at + len <= units.len() {
                if try_without(&mut units, at, len, budget) {
                    progress = true;
                } else {
                    at += 1;
                }
            }
        }
        if !progress || *budget == 0 {
            return units;
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value:?} is no number")))
}

/// A counterexample, shrunk.
struct Found {
    /// Whose verdict failed.
    dialect: Dialect,
    failure: Failure,
    text: String,
    observed: Observed,
    /// Which text of the seed; `None` for a known one.
    index: Option<u64>,
    original: String,
}

/// Most failing texts shrunk per run (the rest are counted);
/// `DBKIT_DIFF_SHRINK` overrides it.
const SHRUNK_AT_MOST: u64 = 60;

/// Runs `known` (counterexamples found before, kept as regression texts),
/// then the texts of one seed on `db`; panics with every counterexample.
/// The verdicts checked are those for the database's dialect and for
/// [`Dialect::Any`] (a connection of unknown backend: what any database
/// runs, it must not hide); `DBKIT_DIFF_ANY=0` leaves the latter out.
pub fn run<D: Database>(db: &mut D, known: &[&str]) {
    // A fixed seed by default, so a run in CI is the run anyone replays;
    // explore with other seeds through the variable.
    let seed = env_number("DBKIT_DIFF_SEED").unwrap_or(20_261_202);
    let cases = env_number("DBKIT_DIFF_CASES").unwrap_or(D::CASES);
    let limit = Duration::from_secs(env_number("DBKIT_DIFF_SECS").unwrap_or(45));
    let shrink_at_most = env_number("DBKIT_DIFF_SHRINK").unwrap_or(SHRUNK_AT_MOST);
    let db_dialect = D::DIALECT;
    let dialects: &[Dialect] = if env_number("DBKIT_DIFF_ANY") == Some(0) {
        &[D::DIALECT]
    } else {
        &[D::DIALECT, Dialect::Any]
    };
    if let Ok(text) = std::env::var("DBKIT_DIFF_TEXT") {
        let observed = observe(db, &text);
        println!("{}: {text:?}\n  database: {observed:?}", D::NAME);
        for &dialect in dialects {
            println!(
                "  {dialect:?} verdict: {:?}\n  {dialect:?} failures: {:?}",
                verdict(&text, dialect),
                judge(&text, dialect, db_dialect, &observed)
            );
        }
        return;
    }
    println!(
        "{}: seed {seed} (DBKIT_DIFF_SEED={seed} replays it), up to {cases} texts in {} s, \
         verdicts of {dialects:?}",
        D::NAME,
        limit.as_secs()
    );
    let show = std::env::var_os("DBKIT_DIFF_SHOW").is_some();
    let started = Instant::now();
    let (mut texts, mut ran_whole, mut changed, mut left_open, mut unknown, mut failing) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut found: Vec<Found> = Vec::new();
    let mut seen = BTreeSet::new();
    for text in known {
        let observed = observe(db, text);
        if let Some((dialect, failure)) = first_failure(text, dialects, db_dialect, &observed) {
            seen.insert((dialect_key(dialect), failure, verdict(text, dialect)));
            found.push(Found {
                dialect,
                failure,
                text: text.to_string(),
                observed,
                index: None,
                original: text.to_string(),
            });
        }
    }
    let known_failing = found.len();
    let mut shrunk_count = 0;
    for index in 0..cases {
        if started.elapsed() > limit {
            break;
        }
        texts += 1;
        let pieces = generate(seed, index);
        let text = pieces.concat();
        let observed = observe(db, &text);
        if show {
            println!(
                "{index}: {text:?}\n    {:?}\n    {observed:?}",
                verdict(&text, db_dialect)
            );
        }
        ran_whole += u64::from(observed.result.is_ok());
        changed += u64::from(observed.changed);
        left_open += u64::from(observed.in_transaction);
        if statements(&text, db_dialect, false)
            .any(|s| matches!(s.effect, Effect::WritesUnknown | Effect::UnknownControl))
        {
            unknown += 1;
        }
        let Some((dialect, failure)) = first_failure(&text, dialects, db_dialect, &observed) else {
            continue;
        };
        failing += 1;
        if shrunk_count >= shrink_at_most {
            continue;
        }
        shrunk_count += 1;
        let mut still_fails = |candidate: &str| {
            if show {
                println!("  shrinking: {candidate:?}");
            }
            let observed = observe(db, candidate);
            judge(candidate, dialect, db_dialect, &observed).contains(&failure)
        };
        // Pieces first: a mistake already found, found again through
        // another text, mostly shows as the same verdict by then.
        let coarse = shrink_pieces(pieces, 150, &mut still_fails);
        let coarse_verdict = verdict(&coarse, dialect);
        if !seen.insert((dialect_key(dialect), failure, coarse_verdict.clone())) {
            continue;
        }
        let shrunk = shrink_chars(&coarse, 400, &mut still_fails);
        let shrunk_verdict = verdict(&shrunk, dialect);
        if shrunk_verdict == coarse_verdict
            || seen.insert((dialect_key(dialect), failure, shrunk_verdict))
        {
            let observed = observe(db, &shrunk);
            found.push(Found {
                dialect,
                failure,
                text: shrunk,
                observed,
                index: Some(index),
                original: text,
            });
        }
    }
    db.reset();
    println!(
        "{}: {} known texts, {known_failing} failing; {texts} texts in {:.1} s: {ran_whole} ran \
         whole, {changed} changed t, {left_open} left a transaction open, {unknown} with unknown \
         verdicts; {failing} failed a check; {shrunk_count} shrunk, {} distinct",
        D::NAME,
        known.len(),
        started.elapsed().as_secs_f64(),
        found.len() - known_failing,
    );
    if found.is_empty() {
        return;
    }
    let mut report = String::new();
    for (n, f) in found.iter().enumerate() {
        let (from, unshrunk) = match f.index {
            Some(index) => (
                format!("text {index} of seed {seed}"),
                format!("\n  unshrunk: {:?}", f.original),
            ),
            None => ("a known text".to_string(), String::new()),
        };
        report.push_str(&format!(
            "\n#{n} ({:?} verdict on {}, {from}): {}\n  text:     {:?}\n  verdict:  {:?}\n  \
             database: {:?}, t changed: {}, left in a transaction: {}{unshrunk}\n",
            f.dialect,
            D::NAME,
            f.failure,
            f.text,
            verdict(&f.text, f.dialect),
            f.observed.result,
            f.observed.changed,
            f.observed.in_transaction,
        ));
    }
    panic!(
        "{}: the classifier disagrees with the database on {known_failing} of {} known texts \
         and {failing} of {texts} generated texts (seed {seed}):\n{report}",
        D::NAME,
        known.len(),
    );
}

/// A dialect, orderable (for the set of failures seen).
fn dialect_key(dialect: Dialect) -> u8 {
    match dialect {
        Dialect::Postgres => 0,
        Dialect::Sqlite => 1,
        Dialect::Mysql => 2,
        Dialect::Any => 3,
    }
}
