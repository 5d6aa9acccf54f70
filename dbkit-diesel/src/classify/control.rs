//! Transaction control and what decides it: MySQL's `SET autocommit`,
//! the statements that commit implicitly, and the bodies of routines and
//! compound statements, whose `;` do not end them.

use super::{is, Scanner};
use crate::classify::Effect;
use crate::lexer::{Dialect, Token};

impl<'a> Scanner<'a> {
    /// A statement that opens, ends or changes a transaction, if the one
    /// ahead is (`keyword` is its first word, lowercased): its effect.
    pub(super) fn control(&mut self, keyword: &str) -> Option<Effect<'a>> {
        let is_control = matches!(
            keyword,
            "begin"
                | "start"
                | "commit"
                | "end"
                | "rollback"
                | "abort"
                | "savepoint"
                | "release"
                | "prepare"
                | "set"
                | "xa"
        ) || (matches!(keyword, "call" | "execute")
            && matches!(self.dialect, Dialect::Mysql | Dialect::Any));
        if !is_control {
            return None;
        }
        Some(self.control_statement(keyword))
    }

    /// Whether the statement ahead is a MariaDB compound statement: `IF`,
    /// `CASE`, `LOOP`, `REPEAT`, `WHILE`, `FOR`, `BEGIN NOT ATOMIC` or a
    /// labelled one (`label: ...`).
    pub(super) fn compound(&mut self, keyword: &str) -> bool {
        match keyword {
            "if" | "case" | "loop" | "repeat" | "while" | "for" => true,
            "begin" => self
                .words_after_peeked(1)
                .any(|w| w.eq_ignore_ascii_case("not")),
            _ => {
                let mut ahead = self.lexer.clone();
                matches!(ahead.next_spanned(), Some((Token::Other, s)) if s.text == ":")
                    && !matches!(ahead.next_spanned(), Some((Token::Other, s)) if s.text == "=")
            }
        }
    }

    fn control_statement(&mut self, keyword: &str) -> Effect<'a> {
        match keyword {
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
            _ => Effect::UnknownControl,
        }
    }

    /// Whether the statement ahead may commit first on MySQL, by a state
    /// its text does not show: `UNLOCK TABLES` commits only under
    /// `LOCK TABLES`.
    pub(super) fn may_commit_first(&mut self) -> bool {
        matches!(self.dialect, Dialect::Mysql | Dialect::Any) && is(self.peek(), "unlock")
    }

    /// Whether the statement ahead commits the open transaction before it
    /// runs on MySQL: data definition, account management, table
    /// maintenance and locking statements do.
    pub(super) fn commits_first(&mut self) -> bool {
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

    /// `SET ...`: no table data, unless it turns MySQL's autocommit off or
    /// on (`SET [SESSION] autocommit = 0`, `SET @@autocommit := OFF`, in a
    /// list of assignments too).
    pub(super) fn set_statement(&mut self) -> Effect<'a> {
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
    pub(super) fn autocommit_value(&mut self) -> Option<bool> {
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

    /// Skips the body of a routine, trigger or compound statement up to the
    /// `;` that ends it (not consumed), `depth` blocks already open: `BEGIN`
    /// and `CASE` open a block, `END` closes one (`END IF`, `END LOOP`,
    /// `END WHILE`, `END REPEAT` close what was not counted; `END CASE`
    /// closes its `CASE`). `false` when an `END` closes nothing.
    pub(super) fn skip_block_body(&mut self, mut depth: usize) -> bool {
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
}
