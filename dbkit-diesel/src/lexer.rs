//! Tokens of SQL text, enough to find a statement's head, its tables and its
//! end: words, quoted identifiers, literals skipped whole, comments skipped,
//! punctuation. Dialects: PostgreSQL, SQLite, MySQL.
//!
//! The lexer never panics on any input. When it cannot be sure where a
//! literal or comment ends it yields [`Token::Confused`], which the classifier
//! turns into "writes every table" (being conservative is always allowed).

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

pub(crate) struct Lexer<'a> {
    sql: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(sql: &'a str) -> Self {
        Lexer { sql, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.sql.as_bytes()
    }

    fn peek_byte(&self, ahead: usize) -> Option<u8> {
        self.bytes().get(self.pos + ahead).copied()
    }

    /// Skips whitespace and comments. `false` on an unterminated block comment.
    fn skip_trivia(&mut self) -> bool {
        loop {
            match (self.peek_byte(0), self.peek_byte(1)) {
                (Some(b), _) if b.is_ascii_whitespace() => self.pos += 1,
                (Some(b'-'), Some(b'-')) => self.skip_line(),
                (Some(b'#'), _) => self.skip_line(), // MySQL
                (Some(b'/'), Some(b'*')) => {
                    // PostgreSQL nests block comments, SQLite and MySQL end them
                    // at the first `*/`: with a `/*` inside, the dialects
                    // disagree on where the comment ends, so whatever follows
                    // cannot be read safely (fuzzing found a write hidden so).
                    self.pos += 2;
                    loop {
                        match (self.peek_byte(0), self.peek_byte(1)) {
                            (Some(b'*'), Some(b'/')) => {
                                self.pos += 2;
                                break;
                            }
                            (Some(b'/'), Some(b'*')) | (None, _) => return false,
                            (Some(_), _) => self.pos += 1,
                        }
                    }
                }
                _ => return true,
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(b) = self.peek_byte(0) {
            self.pos += 1;
            if b == b'\n' {
                break;
            }
        }
    }

    /// Skips a literal closed by `close`, where a doubled `close` is an
    /// escaped one and, if `backslash`, `\x` escapes too. Returns the inner
    /// text, or `None` if unterminated.
    fn quoted(&mut self, close: u8, backslash: bool) -> Option<&'a str> {
        let start = self.pos;
        loop {
            match self.peek_byte(0)? {
                b'\\' if backslash => self.pos += 2,
                b if b == close => {
                    if self.peek_byte(1) == Some(close) {
                        self.pos += 2;
                    } else {
                        let inner = self.sql.get(start..self.pos);
                        self.pos += 1;
                        return inner;
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    /// `$tag$ ... $tag$` (PostgreSQL); `pos` is at the first `$`.
    fn dollar_quoted(&mut self) -> Option<Token<'a>> {
        let rest = &self.bytes()[self.pos..];
        let tag_len = rest[1..].iter().position(|&b| b == b'$').filter(|&n| {
            rest[1..1 + n]
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'_')
        })?;
        let tag = &rest[..tag_len + 2];
        let body = &rest[tag.len()..];
        let end = body.windows(tag.len()).position(|w| w == tag);
        match end {
            Some(end) => {
                self.pos += tag.len() + end + tag.len();
                Some(Token::Other)
            }
            None => Some(Token::Confused),
        }
    }

    /// The next token, or `None` at the end of the text.
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
            b'"' | b'`' => {
                self.pos += 1;
                match self.quoted(b, false) {
                    Some(inner) => Token::Quoted(inner),
                    None => Token::Confused,
                }
            }
            b'[' => {
                self.pos += 1;
                match self.quoted(b']', false) {
                    Some(inner) => Token::Quoted(inner),
                    None => Token::Confused,
                }
            }
            b'\'' => {
                self.pos += 1;
                // Standard strings: '' escapes. A backslash may escape in
                // MySQL; if reading it the standard way leaves a stray quote,
                // the text ends up unterminated and we are confused, never wrong.
                match self.quoted(b'\'', false) {
                    Some(_) => Token::Other,
                    None => Token::Confused,
                }
            }
            b'$' if self
                .peek_byte(1)
                .is_some_and(|c| c == b'$' || c.is_ascii_alphabetic() || c == b'_') =>
            {
                match self.dollar_quoted() {
                    Some(token) => token,
                    None => {
                        // `$1`-style or `$name` parameter: skip the sigil.
                        self.pos += 1;
                        Token::Other
                    }
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 => {
                let start = self.pos;
                // E'...' (escape string), X'..', B'..', N'..': a prefixed literal.
                if matches!(b | 0x20, b'e' | b'x' | b'b' | b'n') && self.peek_byte(1) == Some(b'\'')
                {
                    self.pos += 2;
                    let backslash = b | 0x20 == b'e';
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
        let mut lexer = Lexer::new(sql);
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
            tokens("/* a /* b */ DELETE FROM t").last(),
            Some(&Token::Confused)
        );
        assert_eq!(tokens("SELECT $x$ abc").last(), Some(&Token::Confused));
    }
}
