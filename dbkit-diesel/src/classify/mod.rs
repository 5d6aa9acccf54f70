//! What a statement does to the tables, from its text: a hand-written scanner
//! of the statement head (no full SQL parse on the per-statement path).
//!
//! The rule that matters: a statement that may write is never reported as a
//! read. Whatever the scanner cannot place (an unknown keyword, `CALL`, `DO`,
//! `EXECUTE`, `... CASCADE`, unreadable text) is [`Effect::WritesUnknown`]:
//! every cached result is refused, which costs misses, never staleness.
//!
//! Table names come back as written, quotes removed; the table clock maps a
//! schema-qualified name to its bare table (see `dbkit_core::tables`).

pub use crate::lexer::Dialect;
use crate::lexer::{Lexer, Token};

mod control;
mod reads;
mod writes;

/// Most tables one statement is tracked with; more means "unknown tables".
pub const MAX_TABLES: usize = 8;

/// A few table names, without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tables<'a> {
    names: [&'a str; MAX_TABLES],
    len: usize,
    overflow: bool,
}

impl<'a> Tables<'a> {
    fn push(&mut self, name: &'a str) {
        if self.names[..self.len]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            return;
        }
        if self.len == MAX_TABLES {
            self.overflow = true;
        } else {
            self.names[self.len] = name;
            self.len += 1;
        }
    }

    /// The names, in order of appearance.
    pub fn as_slice(&self) -> &[&'a str] {
        &self.names[..self.len]
    }

    /// Whether more tables were named than fit.
    pub fn overflowed(&self) -> bool {
        self.overflow
    }
}

/// What one statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect<'a> {
    /// Reads these tables (filled only when reads are asked for).
    Reads(Tables<'a>),
    /// Writes exactly these tables.
    Writes(Tables<'a>),
    /// May write, tables unknown: everything must be invalidated.
    WritesUnknown,
    /// `BEGIN`, `START TRANSACTION`.
    Begin,
    /// `COMMIT`, `END`; `chain` (`AND CHAIN`) opens the next transaction.
    Commit {
        /// `AND CHAIN`.
        chain: bool,
    },
    /// `ROLLBACK` of the whole transaction; `chain` opens the next one.
    Rollback {
        /// `AND CHAIN`.
        chain: bool,
    },
    /// `SAVEPOINT name`.
    Savepoint(&'a str),
    /// `RELEASE [SAVEPOINT] name`.
    Release(&'a str),
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo(&'a str),
    /// `PREPARE TRANSACTION 'id'` (PostgreSQL).
    PrepareTransaction(&'a str),
    /// `COMMIT PREPARED 'id'`.
    CommitPrepared(&'a str),
    /// `ROLLBACK PREPARED 'id'`.
    RollbackPrepared(&'a str),
    /// `SET autocommit = ..` (MySQL): `Some(false)` for 0/OFF, `Some(true)`
    /// for 1/ON, `None` for a value that is not a literal.
    Autocommit(Option<bool>),
    /// May open or end a transaction in a way that cannot be modelled (`XA`,
    /// a MySQL procedure, which may leave a transaction open); may write.
    UnknownControl,
    /// Changes no table data (`SET`, `PRAGMA`, `CREATE INDEX`, `EXPLAIN`...).
    NoData,
    /// Comments or whitespace only.
    Empty,
}

impl Effect<'_> {
    /// Whether this statement opens, ends or changes a transaction.
    pub fn is_control(&self) -> bool {
        matches!(
            self,
            Effect::Begin
                | Effect::Commit { .. }
                | Effect::Rollback { .. }
                | Effect::Savepoint(_)
                | Effect::Release(_)
                | Effect::RollbackTo(_)
                | Effect::PrepareTransaction(_)
                | Effect::CommitPrepared(_)
                | Effect::RollbackPrepared(_)
                | Effect::Autocommit(_)
                | Effect::UnknownControl
        )
    }

    /// Whether this statement may change table data.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Effect::Writes(_) | Effect::WritesUnknown | Effect::UnknownControl
        )
    }
}

/// One statement of a text: its effect, and whether it commits the open
/// transaction before it runs (MySQL's DDL and a few others do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement<'a> {
    /// What it does to the tables.
    pub effect: Effect<'a>,
    /// Commits the open transaction first, even when it then fails.
    pub commits_first: bool,
    /// May commit the open transaction first, by a state the text does not
    /// show (MySQL's `UNLOCK TABLES`).
    pub may_commit_first: bool,
}

/// Every statement of `sql` (a `batch_execute` string may hold several), in
/// order, read by the rules of `dialect`.
///
/// `with_reads`: also list the tables SELECTs read (costs a full scan; only
/// the stale-read guard asks for it).
///
/// ```
/// use dbkit_diesel::classify::{statements, Dialect, Effect};
///
/// let sql = r#"UPDATE "users" SET name = $1 WHERE id = $2"#;
/// let parts: Vec<_> = statements(sql, Dialect::Postgres, false).collect();
/// assert!(matches!(parts[0].effect, Effect::Writes(t) if t.as_slice() == ["users"]));
///
/// // `#` starts a comment in MySQL only: in PostgreSQL the UPDATE runs.
/// let sql = "SELECT 5 # 3; UPDATE users SET name = 'x'";
/// assert_eq!(statements(sql, Dialect::Postgres, false).count(), 2);
/// assert_eq!(statements(sql, Dialect::Mysql, false).count(), 1);
/// ```
pub fn statements(
    sql: &str,
    dialect: Dialect,
    with_reads: bool,
) -> impl Iterator<Item = Statement<'_>> {
    let mut scanner = Scanner {
        lexer: Lexer::new(sql, dialect),
        dialect,
        peeked: None,
        with_reads,
        done: false,
        ended: false,
        unreadable: None,
        inner_commits_first: false,
    };
    std::iter::from_fn(move || {
        while !scanner.done {
            let statement = scanner.statement();
            if statement.effect != Effect::Empty {
                return Some(statement);
            }
        }
        None
    })
}

/// The combined effect of a whole text on tables, as one statement would
/// have it: writes merged, transaction control reported only when alone.
pub fn classify(sql: &str, dialect: Dialect, with_reads: bool) -> Effect<'_> {
    let mut all = statements(sql, dialect, with_reads).map(|s| s.effect);
    let Some(first) = all.next() else {
        return Effect::Empty;
    };
    let Some(second) = all.next() else {
        return first;
    };
    // Several statements (a batch): what matters is whether any may write.
    let mut writes = Tables::default();
    let mut reads = Tables::default();
    let mut any_write = false;
    for effect in [first, second].into_iter().chain(all) {
        match effect {
            Effect::WritesUnknown | Effect::UnknownControl => return Effect::WritesUnknown,
            Effect::Writes(t) => {
                any_write = true;
                merge(&mut writes, &t);
            }
            Effect::Reads(t) => merge(&mut reads, &t),
            // A batch that opens or ends a transaction by hand: the caller
            // tracks those (see `Batch`); as one effect it is a write of
            // whatever it writes.
            _ => {}
        }
    }
    if any_write {
        if writes.overflowed() {
            Effect::WritesUnknown
        } else {
            Effect::Writes(writes)
        }
    } else {
        Effect::Reads(reads)
    }
}

fn merge<'a>(into: &mut Tables<'a>, from: &Tables<'a>) {
    for name in from.as_slice() {
        into.push(name);
    }
    into.overflow |= from.overflow;
}

struct Scanner<'a> {
    lexer: Lexer<'a>,
    dialect: Dialect,
    /// The next token and its text as written.
    peeked: Option<Option<(Token<'a>, &'a str)>>,
    with_reads: bool,
    done: bool,
    /// A head consumed the statement's `;`: it ended there.
    ended: bool,
    /// The text from the first token that could not be read to the end.
    unreadable: Option<&'a str>,
    /// The statement inside `SET STATEMENT .. FOR` commits first.
    inner_commits_first: bool,
}

fn is(token: Option<Token<'_>>, keyword: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
}

/// Words that end a table list or cannot be an alias.
const CLAUSE_WORDS: &[&str] = &[
    "where",
    "set",
    "from",
    "using",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "outer",
    "on",
    "group",
    "order",
    "limit",
    "offset",
    "having",
    "window",
    "union",
    "intersect",
    "except",
    "returning",
    "values",
    "select",
    "default",
    "as",
    "lateral",
    "only",
    "partition",
    "straight_join",
    "for",
    "fetch",
    "into",
    "when",
    "then",
    "use",
    "force",
    "ignore",
    "index",
    "restart",
    "continue",
    "cascade",
    "restrict",
    "with",
    "indexed",
    "not",
];

/// Whether unreadable text may hold a statement that opens, ends or
/// changes a transaction: any word that can start one (or commit
/// implicitly) in any dialect. Words inside literals count too.
fn may_control(text: &str) -> bool {
    // `SET` is left out (every UPDATE has one): what a SET may control is
    // named by `autocommit` or `password`.
    const WORDS: &[&str] = &[
        "begin",
        "start",
        "commit",
        "end",
        "rollback",
        "abort",
        "savepoint",
        "release",
        "prepare",
        "xa",
        "call",
        "execute",
        "autocommit",
        "password",
        "lock",
        "unlock",
        "create",
        "alter",
        "drop",
        "rename",
        "truncate",
        "grant",
        "revoke",
        "analyze",
        "optimize",
        "repair",
        "check",
        "flush",
        "reset",
        "cache",
        "install",
        "uninstall",
        "load",
    ];
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .any(|w| WORDS.iter().any(|k| k.eq_ignore_ascii_case(w)))
}

fn is_clause_word(word: &str) -> bool {
    CLAUSE_WORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

impl<'a> Scanner<'a> {
    fn peek_spanned(&mut self) -> Option<(Token<'a>, &'a str)> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_spanned().map(|(t, s)| (t, s.text)));
        }
        self.peeked.flatten()
    }

    fn peek(&mut self) -> Option<Token<'a>> {
        self.peek_spanned().map(|(t, _)| t)
    }

    fn next(&mut self) -> Option<Token<'a>> {
        self.next_spanned().map(|(t, _)| t)
    }

    fn next_spanned(&mut self) -> Option<(Token<'a>, &'a str)> {
        let next = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_spanned().map(|(t, s)| (t, s.text)),
        };
        // Whoever consumes a `;` ends the statement there, so a head that
        // reads too far never swallows the next statement; whoever consumes
        // unreadable text makes the statement unreadable.
        match next {
            Some((Token::Semicolon, _)) => self.ended = true,
            Some((Token::Confused, text)) => {
                self.unreadable = Some(text);
                self.done = true;
            }
            _ => {}
        }
        next
    }

    /// A name (savepoint): a word or a quoted identifier, as written.
    fn name(&mut self) -> Option<&'a str> {
        match self.peek() {
            Some(Token::Word(w)) | Some(Token::Quoted(w)) => {
                self.next();
                Some(w)
            }
            _ => None,
        }
    }

    /// A string literal's text, quotes and all (a prepared transaction's id).
    fn literal(&mut self) -> Option<&'a str> {
        match self.peek_spanned() {
            Some((Token::Other, text)) if text.starts_with('\'') => {
                self.next();
                Some(text)
            }
            _ => None,
        }
    }

    /// `AND [NO] CHAIN` after COMMIT or ROLLBACK: whether it chains.
    fn chain(&mut self) -> bool {
        if !self.eat("and") {
            return false;
        }
        !self.eat("no") && self.eat("chain")
    }

    fn eat(&mut self, keyword: &str) -> bool {
        if is(self.peek(), keyword) {
            self.next();
            true
        } else {
            false
        }
    }

    /// Skips to the end of the current statement (`;` at depth 0 or the
    /// end). `Err` with the text from the first token that could not be read
    /// to the end, if the statement had one.
    fn finish_statement(&mut self) -> Result<(), &'a str> {
        if !std::mem::take(&mut self.ended) {
            let mut depth = 0usize;
            loop {
                match self.next() {
                    None | Some(Token::Confused) => {
                        self.done = true;
                        break;
                    }
                    Some(Token::LParen) => depth += 1,
                    Some(Token::RParen) => depth = depth.saturating_sub(1),
                    Some(Token::Semicolon) if depth == 0 => {
                        self.ended = false;
                        break;
                    }
                    Some(_) => {}
                }
            }
        }
        match self.unreadable.take() {
            Some(text) => Err(text),
            None => Ok(()),
        }
    }

    /// The words after the one peeked, without consuming anything.
    fn words_after_peeked(&self, n: usize) -> impl Iterator<Item = &'a str> {
        let mut ahead = self.lexer.clone();
        std::iter::from_fn(move || match ahead.next_spanned() {
            Some((Token::Word(w), _)) => Some(w),
            _ => None,
        })
        .take(n)
    }

    /// A table name: `name`, `"name"`, `schema.name`. The last part is kept.
    fn table_name(&mut self) -> Option<&'a str> {
        let mut name = match self.peek() {
            Some(Token::Word(w)) if !is_clause_word(w) => w,
            Some(Token::Quoted(q)) => q,
            _ => return None,
        };
        self.next();
        while self.peek() == Some(Token::Dot) {
            self.next();
            match self.next() {
                Some(Token::Word(w)) | Some(Token::Quoted(w)) => name = w,
                _ => return None,
            }
        }
        Some(name)
    }

    /// Skips `[AS] alias` after a table reference.
    fn skip_alias(&mut self) {
        if self.eat("as") {
            self.next();
            return;
        }
        match self.peek() {
            Some(Token::Word(w)) if !is_clause_word(w) => {
                self.next();
            }
            Some(Token::Quoted(_)) => {
                self.next();
            }
            _ => {}
        }
    }

    /// One statement; consumes through its `;`.
    fn statement(&mut self) -> Statement<'a> {
        let commits_first = self.commits_first();
        let may_commit_first = self.may_commit_first();
        self.inner_commits_first = false;
        let effect = self.head();
        let commits_first = commits_first || self.inner_commits_first;
        let effect = match self.finish_statement() {
            // Unreadable text may hide anything: transaction control too,
            // where a word that could start it is in there.
            Err(unread) if effect.is_control() || may_control(unread) => Effect::UnknownControl,
            Err(_) => Effect::WritesUnknown,
            // Its text cannot say whether it commits first: assume so.
            Ok(()) if (commits_first || may_commit_first) && self.dialect == Dialect::Any => {
                Effect::UnknownControl
            }
            Ok(()) => effect,
        };
        Statement {
            effect,
            commits_first: commits_first && self.dialect == Dialect::Mysql,
            may_commit_first: may_commit_first && self.dialect == Dialect::Mysql,
        }
    }

    fn head(&mut self) -> Effect<'a> {
        let first = match self.peek() {
            None => return Effect::Empty,
            Some(Token::Semicolon) => return Effect::Empty,
            Some(Token::LParen) => {
                // `(SELECT ..) UNION ..`, or a parenthesized statement that
                // may write (`(WITH d AS (UPDATE ..) SELECT ..)`).
                self.next();
                return match self.parenthesized_effect() {
                    Effect::Reads(mut tables) => match self.read_statement() {
                        Effect::Reads(rest) => {
                            merge(&mut tables, &rest);
                            Effect::Reads(tables)
                        }
                        other => other,
                    },
                    Effect::Empty => self.read_statement(),
                    Effect::Writes(t) => Effect::Writes(t),
                    _ => Effect::WritesUnknown,
                };
            }
            Some(Token::Word(w)) => w,
            Some(_) => return Effect::WritesUnknown,
        };
        // Lowercased on the stack: no allocation per statement. Longer words
        // are no keyword we know.
        let mut buf = [0u8; 16];
        let keyword = match buf.get_mut(..first.len()) {
            Some(dst) => {
                dst.copy_from_slice(first.as_bytes());
                dst.make_ascii_lowercase();
                std::str::from_utf8(dst).unwrap_or("")
            }
            None => "",
        };
        if matches!(self.dialect, Dialect::Mysql | Dialect::Any) && self.compound(keyword) {
            // MariaDB runs compound statements outside stored programs too:
            // their `;` do not end them, and anything may run inside.
            while self.next().is_some() {}
            return Effect::UnknownControl;
        }
        if let Some(control) = self.control(keyword) {
            return control;
        }
        match keyword {
            "select" | "values" | "table" | "show" | "describe" | "desc" => self.read_statement(),
            "with" => self.with_statement(),
            "insert" | "replace" => {
                self.next();
                self.insert_target()
            }
            "update" => {
                self.next();
                self.update_targets()
            }
            "delete" => {
                self.next();
                self.delete_targets()
            }
            "merge" => {
                self.next();
                self.eat("into");
                self.single_target()
            }
            "truncate" => {
                self.next();
                self.eat("table");
                self.table_list_with_cascade()
            }
            "copy" => {
                self.next();
                self.copy_statement()
            }
            "load" => {
                // MySQL LOAD DATA ... INTO TABLE t
                self.next();
                loop {
                    match self.peek() {
                        None | Some(Token::Semicolon) | Some(Token::Confused) => {
                            return Effect::WritesUnknown
                        }
                        Some(Token::Word(w)) if w.eq_ignore_ascii_case("table") => {
                            self.next();
                            return self.single_target();
                        }
                        _ => {
                            self.next();
                        }
                    }
                }
            }
            "create" => {
                self.next();
                self.create_statement()
            }
            "drop" => {
                self.next();
                self.drop_statement()
            }
            "alter" => {
                self.next();
                self.alter_statement()
            }
            "refresh" => {
                // REFRESH MATERIALIZED VIEW [CONCURRENTLY] name
                self.next();
                self.eat("materialized");
                self.eat("view");
                self.eat("concurrently");
                self.single_target()
            }
            "explain" => {
                self.next();
                self.explain_statement()
            }
            "reset" | "pragma" | "analyze" | "analyse" | "vacuum" | "reindex" | "cluster"
            | "checkpoint" | "discard" | "listen" | "unlisten" | "notify" | "lock" | "unlock"
            | "grant" | "revoke" | "comment" | "use" | "deallocate" | "attach" | "detach"
            | "security" | "declare" | "fetch" | "move" | "close" => Effect::NoData,
            // CALL, DO, EXECUTE, HANDLER, and anything unknown.
            _ => Effect::WritesUnknown,
        }
    }

    fn skip_parens(&mut self) {
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            match token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.next();
                        return;
                    }
                }
                Token::Semicolon | Token::Confused => return,
                _ => {}
            }
            self.next();
        }
    }
}
