//! Statements that read: the tables after FROM and JOIN (for the
//! stale-read guard), and what a read may hide (`SELECT .. INTO`, a
//! data-modifying `WITH`, `EXPLAIN ANALYZE`).

use super::{merge, Scanner, Tables};
use crate::classify::Effect;
use crate::lexer::Token;

impl<'a> Scanner<'a> {
    /// A read: lists the tables after FROM and JOIN when reads are wanted.
    /// A top-level `INTO` (SELECT INTO creates a table) makes it unknown.
    pub(super) fn read_statement(&mut self) -> Effect<'a> {
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
    pub(super) fn with_statement(&mut self) -> Effect<'a> {
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
    pub(super) fn parenthesized_effect(&mut self) -> Effect<'a> {
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

    /// EXPLAIN runs the statement only with ANALYZE (PostgreSQL, MySQL).
    pub(super) fn explain_statement(&mut self) -> Effect<'a> {
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
