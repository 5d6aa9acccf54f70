//! Statements that write: the tables they name.

use super::{is, Scanner, Tables};
use crate::classify::Effect;
use crate::lexer::Token;

impl<'a> Scanner<'a> {
    /// Walks table references (`a [AS x], b JOIN c ON ...`), pushing every
    /// table. After `,` or a word of `more` another table follows; the walk
    /// stops before a word of `until`, or at the statement's end. `false` if
    /// the text cannot be read or a subquery stands where a table should.
    pub(super) fn table_references(
        &mut self,
        tables: &mut Tables<'a>,
        more: &[&str],
        until: &[&str],
    ) -> bool {
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

    pub(super) fn single_target(&mut self) -> Effect<'a> {
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
    pub(super) fn insert_target(&mut self) -> Effect<'a> {
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
    pub(super) fn update_targets(&mut self) -> Effect<'a> {
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
    pub(super) fn delete_targets(&mut self) -> Effect<'a> {
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
    pub(super) fn table_list_with_cascade(&mut self) -> Effect<'a> {
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

    pub(super) fn writes(&self, tables: Tables<'a>) -> Effect<'a> {
        if tables.len == 0 || tables.overflowed() {
            Effect::WritesUnknown
        } else {
            Effect::Writes(tables)
        }
    }

    /// COPY t [(cols)] FROM ... writes t; COPY ... TO only reads.
    pub(super) fn copy_statement(&mut self) -> Effect<'a> {
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

    pub(super) fn create_statement(&mut self) -> Effect<'a> {
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

    pub(super) fn drop_statement(&mut self) -> Effect<'a> {
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

    pub(super) fn alter_statement(&mut self) -> Effect<'a> {
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
}
