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

    /// Whether the statement ahead may commit first on MySQL, by a state
    /// its text does not show: `UNLOCK TABLES` commits only under
    /// `LOCK TABLES`.
    fn may_commit_first(&mut self) -> bool {
        matches!(self.dialect, Dialect::Mysql | Dialect::Any) && is(self.peek(), "unlock")
    }

    /// Whether the statement ahead commits the open transaction before it
    /// runs on MySQL: data definition, account management, table
    /// maintenance and locking statements do.
    fn commits_first(&mut self) -> bool {
        if !matches!(self.dialect, Dialect::Mysql | Dialect::Any) {
            return false;
        }
        let Some(Token::Word(first)) = self.peek() else {
            return false;
        };
        if first.eq_ignore_ascii_case("create") || first.eq_ignore_ascii_case("drop") {
            // `CREATE [OR REPLACE] TEMPORARY TABLE`, `DROP TEMPORARY TABLE`
            // leave the transaction open.
            if self
                .words_after_peeked(3)
                .any(|w| w.eq_ignore_ascii_case("temporary"))
            {
                return false;
            }
        }
        if first.eq_ignore_ascii_case("set") {
            // `SET PASSWORD` is account management: it commits.
            return self
                .words_after_peeked(1)
                .any(|w| w.eq_ignore_ascii_case("password"));
        }
        [
            "create",
            "alter",
            "drop",
            "rename",
            "truncate",
            "lock",
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
        ]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
    }

    fn head(&mut self) -> Effect<'a> {
        let first = match self.peek() {
            None => return Effect::Empty,
            Some(Token::Semicolon) => return Effect::Empty,
            Some(Token::LParen) => return self.read_statement(),
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
            "begin" | "start" => {
                self.next();
                if keyword == "begin"
                    && matches!(self.dialect, Dialect::Mysql | Dialect::Any)
                    && (is(self.peek(), "not") || is(self.peek(), "atomic"))
                {
                    // MariaDB's `BEGIN NOT ATOMIC .. END`: a block that runs
                    // its statements (any of them), no transaction start.
                    self.skip_block_body(1);
                    return Effect::UnknownControl;
                }
                // A PL/pgSQL-style block is not a transaction start; those only
                // arrive inside DO/functions, which are unknown anyway.
                Effect::Begin
            }
            "commit" | "end" => {
                self.next();
                if self.eat("prepared") {
                    return match self.literal() {
                        Some(id) => Effect::CommitPrepared(id),
                        None => Effect::UnknownControl,
                    };
                }
                self.eat("work");
                self.eat("transaction");
                Effect::Commit {
                    chain: self.chain(),
                }
            }
            "rollback" | "abort" => {
                self.next();
                if self.eat("prepared") {
                    return match self.literal() {
                        Some(id) => Effect::RollbackPrepared(id),
                        None => Effect::UnknownControl,
                    };
                }
                self.eat("work");
                self.eat("transaction");
                if self.eat("to") {
                    self.eat("savepoint");
                    return match self.name() {
                        Some(name) => Effect::RollbackTo(name),
                        None => Effect::UnknownControl,
                    };
                }
                Effect::Rollback {
                    chain: self.chain(),
                }
            }
            "savepoint" => {
                self.next();
                match self.name() {
                    Some(name) => Effect::Savepoint(name),
                    None => Effect::UnknownControl,
                }
            }
            "release" => {
                self.next();
                self.eat("savepoint");
                match self.name() {
                    Some(name) => Effect::Release(name),
                    None => Effect::UnknownControl,
                }
            }
            "prepare" => {
                self.next();
                if self.eat("transaction") {
                    return match self.literal() {
                        Some(id) => Effect::PrepareTransaction(id),
                        None => Effect::UnknownControl,
                    };
                }
                Effect::NoData // PREPARE name AS/FROM ...: a statement, not run
            }
            "set" => {
                self.next();
                self.set_statement()
            }
            // XA transactions, and MySQL procedures (which may leave a
            // transaction open) and prepared statements (which may control one).
            "xa" => Effect::UnknownControl,
            "call" | "execute" if matches!(self.dialect, Dialect::Mysql | Dialect::Any) => {
                Effect::UnknownControl
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

    /// `SET ...`: no table data, unless it turns MySQL's autocommit off or
    /// on (`SET [SESSION] autocommit = 0`, `SET @@autocommit := OFF`, in a
    /// list of assignments too).
    fn set_statement(&mut self) -> Effect<'a> {
        if self.eat("statement") {
            // MariaDB: `SET STATEMENT var = value [, ..] FOR <statement>`
            // runs the statement.
            let mut depth = 0usize;
            loop {
                match self.peek() {
                    None | Some(Token::Semicolon) | Some(Token::Confused) => {
                        return Effect::UnknownControl
                    }
                    Some(Token::LParen) => depth += 1,
                    Some(Token::RParen) => depth = depth.saturating_sub(1),
                    Some(Token::Word(w)) if depth == 0 && w.eq_ignore_ascii_case("for") => {
                        self.next();
                        break;
                    }
                    Some(_) => {}
                }
                self.next();
            }
            self.inner_commits_first = self.commits_first();
            return self.head();
        }
        let mut found = None;
        loop {
            match self.peek() {
                None | Some(Token::Semicolon) => break,
                Some(Token::Confused) => return Effect::UnknownControl,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("autocommit") => {
                    self.next();
                    found = Some(self.autocommit_value());
                }
                _ => {
                    self.next();
                }
            }
        }
        match found {
            Some(value) => Effect::Autocommit(value),
            None => Effect::NoData,
        }
    }

    /// The value after `autocommit` `=` or `:=`, if a literal.
    fn autocommit_value(&mut self) -> Option<bool> {
        // `=` or `:=`, one character token at a time.
        let mut assigned = false;
        while let Some((Token::Other, text)) = self.peek_spanned() {
            if text != "=" && text != ":" {
                break;
            }
            assigned |= text == "=";
            self.next();
        }
        if !assigned {
            return None;
        }
        let (token, text) = self.next_spanned()?;
        let value = match (token, text.to_ascii_lowercase().as_str()) {
            (Token::Other, "0") | (Token::Word(_), "off" | "false") => Some(false),
            (Token::Other, "1") | (Token::Word(_), "on" | "true") => Some(true),
            (Token::Other, "'0'" | "'off'") => Some(false),
            (Token::Other, "'1'" | "'on'") => Some(true),
            _ => None,
        };
        // Anything but the end or the next assignment: an expression.
        match self.peek() {
            None | Some(Token::Semicolon) | Some(Token::Comma) => value,
            _ => None,
        }
    }

    /// A read: lists the tables after FROM and JOIN when reads are wanted.
    /// A top-level `INTO` (SELECT INTO creates a table) makes it unknown.
    fn read_statement(&mut self) -> Effect<'a> {
        let mut tables = Tables::default();
        let mut ctes: Tables<'a> = Tables::default();
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None | Some(Token::Semicolon) => return Effect::Reads(tables),
                // The end of an enclosing CTE body or subquery: not ours.
                Some(Token::RParen) if depth == 0 => return Effect::Reads(tables),
                Some(Token::Confused) => return Effect::WritesUnknown,
                Some(Token::LParen) => depth += 1,
                Some(Token::RParen) => depth = depth.saturating_sub(1),
                Some(Token::Word(w)) if depth == 0 && w.eq_ignore_ascii_case("into") => {
                    return Effect::WritesUnknown
                }
                Some(Token::Word(w)) if self.with_reads && w.eq_ignore_ascii_case("with") => {
                    self.next();
                    self.eat("recursive");
                    if let Some(name) = self.table_name() {
                        ctes.push(name);
                    }
                    continue;
                }
                Some(Token::Word(w))
                    if self.with_reads
                        && (w.eq_ignore_ascii_case("from") || w.eq_ignore_ascii_case("join")) =>
                {
                    self.next();
                    loop {
                        self.eat("only");
                        self.eat("lateral");
                        match self.table_name() {
                            Some(name) if self.peek() != Some(Token::LParen) => {
                                if !ctes.as_slice().iter().any(|c| c.eq_ignore_ascii_case(name)) {
                                    tables.push(name);
                                }
                                self.skip_alias();
                            }
                            _ => break, // a subquery or a function: scanned as we go
                        }
                        if self.peek() == Some(Token::Comma) {
                            self.next();
                        } else {
                            break;
                        }
                    }
                    continue;
                }
                _ => {}
            }
            self.next();
        }
    }

    /// `WITH [RECURSIVE] name [(cols)] AS [[NOT] MATERIALIZED] (stmt), ... main`:
    /// a write if any part writes (data-modifying CTEs).
    fn with_statement(&mut self) -> Effect<'a> {
        self.next();
        self.eat("recursive");
        let mut writes = Tables::default();
        let mut cte_reads = Tables::default();
        let mut unknown = false;
        let mut names = Tables::default();
        loop {
            match self.table_name() {
                Some(name) => names.push(name),
                None => return Effect::WritesUnknown,
            }
            if self.peek() == Some(Token::LParen) {
                self.skip_parens();
            }
            if !self.eat("as") {
                return Effect::WritesUnknown;
            }
            self.eat("not");
            self.eat("materialized");
            if self.next() != Some(Token::LParen) {
                return Effect::WritesUnknown;
            }
            // The CTE body: a statement ending at the matching `)`.
            match self.parenthesized_effect() {
                Effect::Writes(t) => merge(&mut writes, &t),
                Effect::Reads(t) => merge(&mut cte_reads, &t),
                Effect::Empty => {}
                _ => unknown = true,
            }
            if self.peek() == Some(Token::Comma) {
                self.next();
                continue;
            }
            break;
        }
        let main = self.head();
        if unknown {
            return Effect::WritesUnknown;
        }
        match main {
            Effect::Writes(t) => {
                merge(&mut writes, &t);
                if writes.overflowed() {
                    Effect::WritesUnknown
                } else {
                    Effect::Writes(writes)
                }
            }
            Effect::Reads(t) if writes.len == 0 => {
                // Tables read by the CTEs and the main query; CTE names are not tables.
                let mut reads = Tables::default();
                for name in cte_reads.as_slice().iter().chain(t.as_slice()) {
                    if !names
                        .as_slice()
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(name))
                    {
                        reads.push(name);
                    }
                }
                reads.overflow = t.overflow || cte_reads.overflow;
                Effect::Reads(reads)
            }
            Effect::Reads(_) if writes.overflowed() => Effect::WritesUnknown,
            Effect::Reads(_) => Effect::Writes(writes),
            _ => Effect::WritesUnknown,
        }
    }

    /// Classifies the statement inside parentheses just opened; consumes the `)`.
    fn parenthesized_effect(&mut self) -> Effect<'a> {
        let effect = self.head();
        // Skip whatever the head did not consume, up to the matching `)`.
        let mut depth = 0usize;
        loop {
            match self.next() {
                None | Some(Token::Confused) => return Effect::WritesUnknown,
                Some(Token::LParen) => depth += 1,
                Some(Token::RParen) if depth == 0 => return effect,
                Some(Token::RParen) => depth -= 1,
                Some(Token::Semicolon) => return Effect::WritesUnknown,
                Some(_) => {}
            }
        }
    }

    /// Skips the body of a routine, trigger or compound statement up to the
    /// `;` that ends it (not consumed), `depth` blocks already open: `BEGIN`
    /// and `CASE` open a block, `END` closes one (`END IF`, `END LOOP`,
    /// `END WHILE`, `END REPEAT` close what was not counted; `END CASE`
    /// closes its `CASE`). `false` when an `END` closes nothing.
    fn skip_block_body(&mut self, mut depth: usize) -> bool {
        loop {
            match self.peek() {
                None | Some(Token::Confused) => return true,
                Some(Token::Semicolon) if depth == 0 => return true,
                Some(Token::Word(w))
                    if w.eq_ignore_ascii_case("begin") || w.eq_ignore_ascii_case("case") =>
                {
                    depth += 1
                }
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("end") => {
                    self.next();
                    if ["if", "loop", "while", "repeat"]
                        .iter()
                        .any(|k| is(self.peek(), k))
                    {
                        self.next();
                        continue;
                    }
                    self.eat("case");
                    match depth.checked_sub(1) {
                        Some(d) => depth = d,
                        None => return false,
                    }
                    continue;
                }
                _ => {}
            }
            self.next();
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

    /// Walks table references (`a [AS x], b JOIN c ON ...`), pushing every
    /// table. After `,` or a word of `more` another table follows; the walk
    /// stops before a word of `until`, or at the statement's end. `false` if
    /// the text cannot be read or a subquery stands where a table should.
    fn table_references(&mut self, tables: &mut Tables<'a>, more: &[&str], until: &[&str]) -> bool {
        let mut expect_table = true;
        loop {
            if expect_table {
                self.eat("only");
                match self.table_name() {
                    Some(name) => tables.push(name),
                    None if self.peek() == Some(Token::LParen) => return false,
                    None => {}
                }
                self.skip_alias();
                expect_table = false;
                continue;
            }
            match self.peek() {
                None | Some(Token::Semicolon) | Some(Token::RParen) => return true,
                Some(Token::Confused) => return false,
                Some(Token::Comma) => expect_table = true,
                Some(Token::Word(w)) if until.iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                    return true
                }
                Some(Token::Word(w)) if more.iter().any(|k| w.eq_ignore_ascii_case(k)) => {
                    expect_table = true
                }
                _ => {}
            }
            self.next();
        }
    }

    fn single_target(&mut self) -> Effect<'a> {
        self.eat("only");
        match self.table_name() {
            Some(name) => {
                let mut tables = Tables::default();
                tables.push(name);
                Effect::Writes(tables)
            }
            None => Effect::WritesUnknown,
        }
    }

    /// INSERT/REPLACE: `[OR x] [LOW_PRIORITY|DELAYED|HIGH_PRIORITY] [IGNORE] [INTO] table`.
    fn insert_target(&mut self) -> Effect<'a> {
        if self.eat("or") {
            self.next(); // REPLACE, IGNORE, ROLLBACK, ABORT, FAIL
        }
        for modifier in ["low_priority", "delayed", "high_priority", "ignore"] {
            self.eat(modifier);
        }
        self.eat("into");
        self.single_target()
    }

    /// UPDATE: the table list before SET (MySQL may update several, joined).
    fn update_targets(&mut self) -> Effect<'a> {
        if self.eat("or") {
            self.next();
        }
        self.eat("low_priority");
        self.eat("ignore");
        let mut tables = Tables::default();
        if !self.table_references(&mut tables, &["join"], &["set"]) {
            return Effect::WritesUnknown;
        }
        self.writes(tables)
    }

    /// DELETE: `[LOW_PRIORITY] [QUICK] [IGNORE] FROM t[, t2] [USING ..]`, or
    /// MySQL's `DELETE a, b FROM t1 a JOIN t2 b ...`, where the names before
    /// FROM may be aliases: then every table after FROM counts too.
    fn delete_targets(&mut self) -> Effect<'a> {
        for modifier in ["low_priority", "quick", "ignore"] {
            self.eat(modifier);
        }
        let mut tables = Tables::default();
        if self.eat("from") {
            loop {
                self.eat("only");
                match self.table_name() {
                    Some(name) => tables.push(name),
                    None => return Effect::WritesUnknown,
                }
                if self.peek() == Some(Token::Dot) {
                    return Effect::WritesUnknown;
                }
                self.skip_alias();
                if self.peek() == Some(Token::Comma) {
                    self.next();
                } else {
                    break;
                }
            }
            // MySQL `DELETE FROM a, b USING a JOIN b ...` is covered by the list;
            // PostgreSQL's USING tables are only read.
            return self.writes(tables);
        }
        // Multi-table form: the names before FROM (tables or aliases) and
        // every table referenced after it; join conditions are skipped.
        if !self.table_references(&mut tables, &["from", "join", "using"], &["where"]) {
            return Effect::WritesUnknown;
        }
        self.writes(tables)
    }

    /// A comma list of tables, as TRUNCATE and DROP TABLE take; CASCADE
    /// reaches tables not named, so it is unknown.
    fn table_list_with_cascade(&mut self) -> Effect<'a> {
        let mut tables = Tables::default();
        loop {
            self.eat("only");
            match self.table_name() {
                Some(name) => tables.push(name),
                None => return Effect::WritesUnknown,
            }
            if self.peek() == Some(Token::Other) {
                self.next(); // `t *` (descendants)
            }
            if self.peek() == Some(Token::Comma) {
                self.next();
            } else {
                break;
            }
        }
        loop {
            match self.peek() {
                None | Some(Token::Semicolon) | Some(Token::RParen) => break,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("cascade") => {
                    return Effect::WritesUnknown
                }
                Some(Token::Confused) => return Effect::WritesUnknown,
                _ => {
                    self.next();
                }
            }
        }
        self.writes(tables)
    }

    fn writes(&self, tables: Tables<'a>) -> Effect<'a> {
        if tables.len == 0 || tables.overflowed() {
            Effect::WritesUnknown
        } else {
            Effect::Writes(tables)
        }
    }

    /// COPY t [(cols)] FROM ... writes t; COPY ... TO only reads.
    fn copy_statement(&mut self) -> Effect<'a> {
        if self.peek() == Some(Token::LParen) {
            return Effect::NoData; // COPY (query) TO: a read
        }
        let Some(name) = self.table_name() else {
            return Effect::WritesUnknown;
        };
        if self.peek() == Some(Token::LParen) {
            self.skip_parens();
        }
        if self.eat("to") {
            return Effect::NoData;
        }
        let mut tables = Tables::default();
        tables.push(name);
        Effect::Writes(tables)
    }

    fn create_statement(&mut self) -> Effect<'a> {
        self.eat("or");
        self.eat("replace");
        if self.eat("definer") {
            // MySQL: `DEFINER = user` before the kind of routine.
            while ![
                "procedure",
                "function",
                "trigger",
                "event",
                "aggregate",
                "package",
            ]
            .iter()
            .any(|k| is(self.peek(), k))
            {
                match self.peek() {
                    None | Some(Token::Semicolon) | Some(Token::Confused) => return Effect::NoData,
                    _ => {
                        self.next();
                    }
                }
            }
        }
        self.eat("temp");
        self.eat("temporary");
        self.eat("aggregate");
        if ["procedure", "function", "trigger", "event", "package"]
            .iter()
            .any(|k| is(self.peek(), k))
        {
            // Its body is one statement for the server, `;` and all
            // (MySQL's and SQLite's `BEGIN .. END`, PostgreSQL's
            // `BEGIN ATOMIC .. END`): it runs nothing now.
            return if self.skip_block_body(0) {
                Effect::NoData
            } else {
                Effect::UnknownControl
            };
        }
        for modifier in [
            "global",
            "local",
            "temp",
            "temporary",
            "unlogged",
            "virtual",
        ] {
            self.eat(modifier);
        }
        if self.eat("table") || (self.eat("materialized") && self.eat("view")) {
            self.eat("if");
            self.eat("not");
            self.eat("exists");
            return self.single_target();
        }
        // Indexes, views, functions, triggers, types, schemas, sequences:
        // no table data changes when they are created.
        Effect::NoData
    }

    fn drop_statement(&mut self) -> Effect<'a> {
        if self.eat("table") {
            self.eat("if");
            self.eat("exists");
            return self.table_list_with_cascade();
        }
        if self.eat("materialized") && self.eat("view") {
            self.eat("if");
            self.eat("exists");
            return self.table_list_with_cascade();
        }
        if self.eat("schema") || self.eat("database") || self.eat("owned") {
            return Effect::WritesUnknown;
        }
        // DROP INDEX/VIEW/FUNCTION/...: no data, unless it cascades.
        loop {
            match self.peek() {
                None | Some(Token::Semicolon) => return Effect::NoData,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("cascade") => {
                    return Effect::WritesUnknown
                }
                Some(Token::Confused) => return Effect::WritesUnknown,
                _ => {
                    self.next();
                }
            }
        }
    }

    fn alter_statement(&mut self) -> Effect<'a> {
        if !self.eat("table") {
            return Effect::NoData; // ALTER INDEX/SEQUENCE/USER/...: no table data
        }
        self.eat("if");
        self.eat("exists");
        let Effect::Writes(mut tables) = self.single_target() else {
            return Effect::WritesUnknown;
        };
        // `RENAME TO new`: the new name is written as well.
        loop {
            match self.peek() {
                None | Some(Token::Semicolon) => break,
                Some(Token::Confused) => return Effect::WritesUnknown,
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("to") => {
                    self.next();
                    if let Some(name) = self.table_name() {
                        tables.push(name);
                    }
                }
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("cascade") => {
                    return Effect::WritesUnknown
                }
                _ => {
                    self.next();
                }
            }
        }
        self.writes(tables)
    }

    /// EXPLAIN runs the statement only with ANALYZE (PostgreSQL, MySQL).
    fn explain_statement(&mut self) -> Effect<'a> {
        let mut analyze = false;
        if self.peek() == Some(Token::LParen) {
            // EXPLAIN (ANALYZE, BUFFERS) ...
            self.next();
            loop {
                match self.next() {
                    None | Some(Token::Semicolon) | Some(Token::Confused) => {
                        return Effect::WritesUnknown
                    }
                    Some(Token::RParen) => break,
                    Some(Token::Word(w))
                        if w.eq_ignore_ascii_case("analyze")
                            || w.eq_ignore_ascii_case("analyse") =>
                    {
                        analyze = true
                    }
                    _ => {}
                }
            }
        }
        loop {
            match self.peek() {
                Some(Token::Word(w))
                    if w.eq_ignore_ascii_case("analyze") || w.eq_ignore_ascii_case("analyse") =>
                {
                    analyze = true;
                    self.next();
                }
                Some(Token::Word(w))
                    if ["verbose", "query", "plan", "extended", "format"]
                        .iter()
                        .any(|k| w.eq_ignore_ascii_case(k)) =>
                {
                    self.next();
                    if self.peek() == Some(Token::Other) {
                        self.next(); // FORMAT=JSON
                    }
                }
                _ => break,
            }
        }
        let inner = self.head();
        if analyze {
            inner
        } else {
            Effect::NoData // a plan only: nothing runs
        }
    }
}
