//! Tokens of SQL text, enough to find a statement's head, its tables and its
//! end: words, quoted identifiers, literals skipped whole, comments skipped,
//! punctuation, by the rules of one [`Dialect`]:
//!
//! | | PostgreSQL | SQLite | MySQL |
//! |---|---|---|---|
//! | `#` | an operator | a parameter sigil | a line comment |
//! | `--` | a comment | a comment | a comment only before a space |
//! | `/* /* */ */` | nests | ends at the first `*/` | ends at the first `*/`; `/*!` is executed |
//! | `\` in `'..'` | literal (escapes only in `E'..'`) | literal | escapes |
//! | `$tag$..$tag$` | a string | `$name` is a parameter | `$` is an identifier letter |
//! | `[a]`, `` `a` `` | not quotes | identifiers | `` `a` `` only |
//!
//! Where a server setting changes a rule (`standard_conforming_strings`,
//! `NO_BACKSLASH_ESCAPES`, `ANSI_QUOTES`) a literal is read both ways and
//! must end in the same place; [`Dialect::Any`] (a connection whose backend
//! is not known) takes a construct the dialects read differently the same
//! way. The lexer never panics on any input. When it cannot be sure where a
//! literal or comment ends it yields [`Token::Confused`], which the
//! classifier turns into "writes every table" (being conservative is always
//! allowed).

/// One token, borrowing the SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// An unquoted word: keyword or identifier.
    Word(&'a str),
    /// A quoted identifier, quotes removed (`"a"`, `` `a` ``, `[a]`).
    Quoted(&'a str),
    /// A string, number, parameter or operator: no meaning for us.
    Other,
    LParen,
    RParen,
    Comma,
    Dot,
    Semicolon,
    /// An unterminated literal or comment: the rest cannot be read safely.
    Confused,
}

/// Where a token came from: its text, and whether whitespace or a comment
/// separated it from the token before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spanned<'a> {
    pub text: &'a str,
    pub spaced: bool,
}

/// Whose rules SQL text is read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
    /// MySQL and MariaDB.
    Mysql,
    /// Not known (a `MultiConnection`): what any dialect may read
    /// differently is unreadable.
    #[default]
    Any,
}

#[derive(Clone)]
pub(crate) struct Lexer<'a> {
    sql: &'a str,
    pos: usize,
    dialect: Dialect,
}

/// How backslashes in a quoted literal may be read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backslash {
    /// Never an escape (standard SQL strings, identifiers).
    Literal,
    /// Always an escape (PostgreSQL `E'..'`).
    Escapes,
    /// Either, by a server setting: both readings must end in one place.
    Either,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(sql: &'a str, dialect: Dialect) -> Self {
        Lexer {
            sql,
            pos: 0,
            dialect,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.sql.as_bytes()
    }

    fn peek_byte(&self, ahead: usize) -> Option<u8> {
        self.bytes().get(self.pos + ahead).copied()
    }

    /// Skips whitespace and comments. `false` where the text cannot be read
    /// safely: an unterminated block comment, a comment the dialects end in
    /// different places, one MySQL executes.
    fn skip_trivia(&mut self) -> bool {
        loop {
            match (self.peek_byte(0), self.peek_byte(1)) {
                // The vertical tab too: SQLite and MySQL skip it.
                (Some(b), _) if b.is_ascii_whitespace() || b == 0x0b => self.pos += 1,
                (Some(b'-'), Some(b'-')) => {
                    // MySQL wants a space or control character (DEL too)
                    // after `--`: `1--1` is `1 - -1` there, a comment
                    // elsewhere.
                    let spaced = self.peek_byte(2).is_none_or(|c| c <= b' ' || c == 0x7f);
                    let ended = match self.dialect {
                        Dialect::Postgres | Dialect::Sqlite => self.skip_line(true),
                        _ if spaced => self.skip_line(true),
                        Dialect::Mysql => return true,
                        Dialect::Any => return false,
                    };
                    if !ended {
                        return false;
                    }
                }
                (Some(b'#'), _) => match self.dialect {
                    Dialect::Mysql => {
                        self.skip_line(false);
                    }
                    Dialect::Postgres | Dialect::Sqlite => return true,
                    Dialect::Any => return false,
                },
                (Some(b'/'), Some(b'*')) => {
                    if !self.block_comment() {
                        return false;
                    }
                }
                _ => return true,
            }
        }
    }

    /// A block comment at `pos`. PostgreSQL nests them, SQLite and MySQL
    /// end them at the first `*/`; MySQL runs `/*! .. */` as SQL.
    fn block_comment(&mut self) -> bool {
        let executable = matches!(self.peek_byte(2), Some(b'!'))
            || (matches!(self.peek_byte(2), Some(b'M')) && matches!(self.peek_byte(3), Some(b'!')));
        if executable && matches!(self.dialect, Dialect::Mysql | Dialect::Any) {
            return false;
        }
        self.pos += 2;
        let mut depth = 1usize;
        loop {
            match (self.peek_byte(0), self.peek_byte(1)) {
                (Some(b'*'), Some(b'/')) => {
                    self.pos += 2;
                    depth -= 1;
                    if depth == 0 || self.dialect != Dialect::Postgres {
                        return true;
                    }
                }
                (Some(b'/'), Some(b'*')) if self.dialect == Dialect::Postgres => {
                    self.pos += 2;
                    depth += 1;
                }
                // The dialects disagree on where it ends (fuzzing found a
                // write hidden so).
                (Some(b'/'), Some(b'*')) if self.dialect == Dialect::Any => return false,
                (None, _) => return false,
                (Some(_), _) => self.pos += 1,
            }
        }
    }

    /// Skips a line comment. PostgreSQL ends a `--` comment at `\r` too,
    /// the others at `\n` only: `false` where that makes a difference to
    /// [`Dialect::Any`] (a `\r` without a `\n` after it).
    fn skip_line(&mut self, dashes: bool) -> bool {
        while let Some(b) = self.peek_byte(0) {
            self.pos += 1;
            match b {
                b'\n' => break,
                b'\r' if dashes && self.dialect == Dialect::Postgres => break,
                b'\r'
                    if dashes
                        && self.dialect == Dialect::Any
                        && self.peek_byte(0) != Some(b'\n') =>
                {
                    return false
                }
                _ => {}
            }
        }
        true
    }

    /// The end of the SQLite parameter at `pos` (`$`, `:`, `@` or `#`, then
    /// a name with `::` allowed inside and a Tcl-style `(..)` suffix that
    /// runs to the first `)` over anything but whitespace), and the bytes
    /// inside that suffix. `None` when the suffix never closes.
    fn sqlite_variable_end(&self) -> Option<(usize, &'a [u8])> {
        let bytes = self.bytes();
        let mut at = self.pos + 1;
        let mut letters = 0usize;
        while let Some(&c) = bytes.get(at) {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                letters += 1;
                at += 1;
            } else if c == b'(' && letters > 0 {
                let open = at + 1;
                at = open;
                while bytes
                    .get(at)
                    .is_some_and(|&c| c != b')' && !(c.is_ascii_whitespace() || c == 0x0b))
                {
                    at += 1;
                }
                if bytes.get(at) != Some(&b')') {
                    return None;
                }
                return Some((at + 1, &bytes[open..at]));
            } else if c == b':' && bytes.get(at + 1) == Some(&b':') {
                at += 2;
            } else {
                break;
            }
        }
        Some((at, &[]))
    }

    /// Whether SQLite reads a parameter's `(..)` suffix over a quote, a
    /// comment or a `;` the other dialects see (for [`Dialect::Any`]).
    fn sqlite_variable_disagrees(&self) -> bool {
        match self.sqlite_variable_end() {
            Some((_, inner)) => {
                inner.iter().any(|b| b"'\"`[];#$".contains(b))
                    || inner.windows(2).any(|w| matches!(w, b"--" | b"/*" | b"*/"))
            }
            None => false,
        }
    }

    /// Skips a literal closed by `close`, where a doubled `close` is an
    /// escaped one. Returns the inner text, or `None` if unterminated or,
    /// with [`Backslash::Either`], if the two readings end apart.
    fn quoted(&mut self, close: u8, backslash: Backslash) -> Option<&'a str> {
        let start = self.pos;
        let (end, saw_backslash) =
            self.scan_quoted(start, close, backslash == Backslash::Escapes)?;
        if backslash == Backslash::Either && saw_backslash {
            let (other, _) = self.scan_quoted(start, close, true)?;
            if other != end {
                return None;
            }
        }
        self.pos = end + 1;
        self.sql.get(start..end)
    }

    /// Where the literal starting at `from` closes (the index of its
    /// closing byte), and whether a backslash was met on the way.
    fn scan_quoted(&self, from: usize, close: u8, escapes: bool) -> Option<(usize, bool)> {
        let bytes = self.bytes();
        let mut at = from;
        let mut saw_backslash = false;
        loop {
            match *bytes.get(at)? {
                b'\\' => {
                    saw_backslash = true;
                    at += if escapes { 2 } else { 1 };
                }
                b if b == close => {
                    if bytes.get(at + 1) == Some(&close) {
                        at += 2;
                    } else {
                        return Some((at, saw_backslash));
                    }
                }
                _ => at += 1,
            }
        }
    }

    /// `$tag$ ... $tag$` (PostgreSQL); `pos` is at the first `$`. The tag
    /// is an identifier: letters (any script), digits after the first, `_`.
    /// `None` when no tag starts here (a `$1` parameter).
    fn dollar_quoted(&mut self) -> Option<Token<'a>> {
        let rest = self.sql.get(self.pos..)?;
        let after = rest.get(1..)?;
        let tag_len = after.find('$')?;
        let tag_text = &after[..tag_len];
        let is_tag = tag_text.chars().enumerate().all(|(i, c)| {
            // Any byte past ASCII may be in a tag, letter or not.
            c.is_ascii_alphabetic() || c == '_' || !c.is_ascii() || (i > 0 && c.is_ascii_digit())
        });
        if !is_tag {
            return None;
        }
        let tag = &rest[..tag_len + 2];
        let body = &rest[tag.len()..];
        match body.find(tag) {
            Some(end) => {
                self.pos += tag.len() + end + tag.len();
                Some(Token::Other)
            }
            None => Some(Token::Confused),
        }
    }

    /// The next token, or `None` at the end of the text.
    #[cfg(test)]
    pub(crate) fn next_token(&mut self) -> Option<Token<'a>> {
        self.next_spanned().map(|(token, _)| token)
    }

    /// The next token with its text as written (quotes and all), and
    /// whether trivia (whitespace, comments) came before it.
    pub(crate) fn next_spanned(&mut self) -> Option<(Token<'a>, Spanned<'a>)> {
        let before = self.pos;
        if !self.skip_trivia() {
            let text = self.sql.get(before..).unwrap_or_default();
            self.pos = self.sql.len();
            return Some((Token::Confused, Spanned { text, spaced: true }));
        }
        let start = self.pos;
        let token = self.token_at_pos()?;
        let text = self.sql.get(start..self.pos).unwrap_or_default();
        let spaced = start > before;
        Some((token, Spanned { text, spaced }))
    }

    fn token_at_pos(&mut self) -> Option<Token<'a>> {
        let b = self.peek_byte(0)?;
        let token = match b {
            b'(' => {
                self.pos += 1;
                Token::LParen
            }
            b')' => {
                self.pos += 1;
                Token::RParen
            }
            b',' => {
                self.pos += 1;
                Token::Comma
            }
            b'.' if !self.peek_byte(1).is_some_and(|d| d.is_ascii_digit()) => {
                self.pos += 1;
                Token::Dot
            }
            b';' => {
                self.pos += 1;
                Token::Semicolon
            }
            b'"' => {
                self.pos += 1;
                // MySQL reads it as a string (backslashes escape) unless
                // ANSI_QUOTES makes it an identifier.
                let backslash = match self.dialect {
                    Dialect::Mysql | Dialect::Any => Backslash::Either,
                    Dialect::Postgres | Dialect::Sqlite => Backslash::Literal,
                };
                match self.quoted(b, backslash) {
                    Some(inner) => Token::Quoted(inner),
                    None => Token::Confused,
                }
            }
            b'`' if self.dialect != Dialect::Postgres => {
                self.pos += 1;
                match self.quoted(b, Backslash::Literal) {
                    Some(inner) => Token::Quoted(inner),
                    None => Token::Confused,
                }
            }
            b'[' if matches!(self.dialect, Dialect::Sqlite | Dialect::Any) => {
                if self.dialect == Dialect::Any {
                    // An identifier in SQLite, a subscript elsewhere.
                    Token::Confused
                } else {
                    self.pos += 1;
                    match self.quoted(b']', Backslash::Literal) {
                        Some(inner) => Token::Quoted(inner),
                        None => Token::Confused,
                    }
                }
            }
            b'\'' => {
                self.pos += 1;
                // Standard strings: '' escapes. PostgreSQL (with
                // standard_conforming_strings off) and MySQL (without
                // NO_BACKSLASH_ESCAPES) also take backslash escapes.
                let backslash = match self.dialect {
                    Dialect::Sqlite => Backslash::Literal,
                    _ => Backslash::Either,
                };
                match self.quoted(b'\'', backslash) {
                    Some(_) => Token::Other,
                    None => Token::Confused,
                }
            }
            b'$' | b':' | b'@'
                if self.dialect == Dialect::Any && self.sqlite_variable_disagrees() =>
            {
                Token::Confused
            }
            b'$' if matches!(self.dialect, Dialect::Postgres | Dialect::Any)
                && self
                    .sql
                    .get(self.pos + 1..)
                    .and_then(|r| r.chars().next())
                    .is_some_and(|c| {
                        c == '$' || c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
                    }) =>
            {
                match self.dollar_quoted() {
                    // MySQL and SQLite read `$a$` as a name: no agreement.
                    Some(_) if self.dialect == Dialect::Any => Token::Confused,
                    Some(token) => token,
                    None => {
                        // A `$name` that is no tag: skip the sigil.
                        self.pos += 1;
                        Token::Other
                    }
                }
            }
            b'$' | b':' | b'@' | b'#'
                if self.dialect == Dialect::Sqlite
                    && self
                        .peek_byte(1)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80) =>
            {
                // A parameter, whole, its `(..)` suffix included.
                match self.sqlite_variable_end() {
                    Some((end, _)) => {
                        self.pos = end;
                        Token::Other
                    }
                    None => Token::Confused,
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => {
                let start = self.pos;
                // E'...' (escape string), X'..', B'..', N'..': a prefixed literal.
                if matches!(b | 0x20, b'e' | b'x' | b'b' | b'n') && self.peek_byte(1) == Some(b'\'')
                {
                    self.pos += 2;
                    let backslash = match (b | 0x20, self.dialect) {
                        (b'e', Dialect::Postgres) => Backslash::Escapes,
                        (_, Dialect::Sqlite) => Backslash::Literal,
                        _ => Backslash::Either,
                    };
                    if self.quoted(b'\'', backslash).is_some() {
                        return Some(Token::Other);
                    }
                    self.pos = self.sql.len();
                    return Some(Token::Confused);
                }
                while let Some(c) = self.peek_byte(0) {
                    if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                match self.sql.get(start..self.pos) {
                    Some(word) => Token::Word(word),
                    None => Token::Confused, // split inside a UTF-8 sequence: cannot happen
                }
            }
            b'$' | b'?' | b':' if self.peek_byte(1).is_some_and(|d| d.is_ascii_digit()) => {
                // `$1`, `?1`, `:1` bind parameters.
                self.pos += 1;
                while self.peek_byte(0).is_some_and(|d| d.is_ascii_digit()) {
                    self.pos += 1;
                }
                Token::Other
            }
            _ => {
                // Numbers, operators, parameters: one char at a time (UTF-8 safe).
                let len = self
                    .sql
                    .get(self.pos..)
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                self.pos += len;
                Token::Other
            }
        };
        if token == Token::Confused {
            // Nothing after an unreadable point can be trusted: end the text.
            self.pos = self.sql.len();
        }
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(sql: &str) -> Vec<Token<'_>> {
        tokens_in(sql, Dialect::Postgres)
    }

    fn tokens_in(sql: &str, dialect: Dialect) -> Vec<Token<'_>> {
        let mut lexer = Lexer::new(sql, dialect);
        std::iter::from_fn(|| lexer.next_token()).collect()
    }

    #[test]
    fn skips_comments_and_literals() {
        assert_eq!(
            tokens("/* a */ -- line\n SELECT 'x''y', $1, $$body;$$ FROM \"we\"\"ird\""),
            vec![
                Token::Word("SELECT"),
                Token::Other,
                Token::Comma,
                Token::Other,
                Token::Comma,
                Token::Other,
                Token::Word("FROM"),
                Token::Quoted("we\"\"ird"),
            ]
        );
    }

    #[test]
    fn unterminated_text_is_confusion() {
        assert_eq!(tokens("SELECT 'abc").last(), Some(&Token::Confused));
        assert_eq!(tokens("SELECT /* abc").last(), Some(&Token::Confused));
        // Nested comments: PostgreSQL and SQLite end them in different places.
        assert_eq!(
            tokens_in("/* a /* b */ DELETE FROM t", Dialect::Any).last(),
            Some(&Token::Confused)
        );
        assert_eq!(
            tokens("/* a /* b */ DELETE FROM t */ SELECT"),
            vec![Token::Word("SELECT")]
        );
        assert_eq!(
            tokens_in("/* a /* b */ DELETE", Dialect::Sqlite),
            vec![Token::Word("DELETE")]
        );
        assert_eq!(tokens("SELECT $x$ abc").last(), Some(&Token::Confused));
    }
}
