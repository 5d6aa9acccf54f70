//! A statement's shape, as pg_stat_statements shows it: literals and bind
//! parameters become `?`, whitespace and comments fold into single spaces,
//! and lists of values fold into one (`IN (...)`, one row of a multi-row
//! `VALUES`), so executions that differ only in their values, or in how many
//! of them there are, count as one statement.

use std::fmt::Write as _;

use dbkit_core::queries::Shape;

use crate::lexer::{Dialect, Lexer, Token};

/// Shapes longer than this are cut: a shape is for reading, and a huge
/// `batch_execute` script would otherwise be kept whole.
const MAX_LEN: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Piece<'a> {
    /// A keyword or identifier, as written (quoted ones with their quotes).
    Word(&'a str),
    /// A literal or bind parameter.
    Value,
    /// Punctuation or one operator character; `glued` when nothing separated
    /// it from the piece before.
    Punct(&'a str, bool),
}

/// The shape of `sql`, read by the rules of `dialect`.
pub(crate) fn shape_of(sql: &str, dialect: Dialect) -> Shape {
    let pieces = pieces(sql, dialect);
    let is_select =
        matches!(pieces.first(), Some(Piece::Word(w)) if w.eq_ignore_ascii_case("select"));
    Shape::new(render(&fold_lists(&pieces)), is_select)
}

fn pieces(sql: &str, dialect: Dialect) -> Vec<Piece<'_>> {
    let mut lexer = Lexer::new(sql, dialect);
    let mut out: Vec<Piece<'_>> = Vec::new();
    // Whether the last piece is a number still being read (`1.5e3`).
    let mut in_number = false;
    while let Some((token, span)) = lexer.next_spanned() {
        let glued = !span.spaced;
        let number_part = in_number
            && glued
            && match token {
                Token::Word(_) => true,
                Token::Other => {
                    span.text == "." || span.text.starts_with(|c: char| c.is_ascii_digit())
                }
                _ => false,
            };
        if number_part {
            continue;
        }
        in_number = false;
        let piece = match token {
            Token::Word(w) => Piece::Word(w),
            Token::Quoted(_) => Piece::Word(span.text),
            Token::Confused => Piece::Value,
            Token::Other if is_value(span.text) => {
                if span
                    .text
                    .starts_with(|c: char| c.is_ascii_digit() || c == '.')
                {
                    in_number = true;
                    // A sign glued to a number that follows an operator is
                    // the number's own: `= -1` is `= ?`.
                    if let [.., Piece::Punct(before, _), Piece::Punct("-" | "+", _)] =
                        out.as_slice()
                    {
                        if glued && *before != ")" {
                            out.pop();
                        }
                    }
                }
                Piece::Value
            }
            Token::Other
            | Token::LParen
            | Token::RParen
            | Token::Comma
            | Token::Dot
            | Token::Semicolon => Piece::Punct(span.text, glued),
        };
        out.push(piece);
    }
    out
}

/// Literals (`'a'`, `E'a'`, `$$a$$`, `12`, `.5`) and bind parameters (`?`,
/// `$1`, `?1`, `:1`).
fn is_value(text: &str) -> bool {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some('\'' | '?'), _) => true,
        (Some(c), _) if c.is_ascii_digit() => true,
        (Some('.'), Some(d)) => d.is_ascii_digit(),
        (Some('$'), Some(d)) => d.is_ascii_digit() || d == '$' || text.ends_with('$'),
        (Some(':'), Some(d)) => d.is_ascii_digit(),
        (Some(c), Some('\'')) => c.is_ascii_alphabetic(), // E'..', X'..', B'..', N'..'
        _ => false,
    }
}

/// `IN (?, ?, ?)` becomes `IN (...)`; `VALUES (?, ?), (?, ?)` keeps its
/// first row and `, ...` for the rest.
fn fold_lists<'a>(pieces: &[Piece<'a>]) -> Vec<Piece<'a>> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut i = 0;
    while i < pieces.len() {
        let piece = pieces[i];
        out.push(piece);
        i += 1;
        let Piece::Word(word) = piece else { continue };
        if word.eq_ignore_ascii_case("in") {
            if let Some(len) = value_list(&pieces[i..]) {
                out.extend([
                    Piece::Punct("(", false),
                    Piece::Word("..."),
                    Piece::Punct(")", true),
                ]);
                i += len;
            }
        } else if word.eq_ignore_ascii_case("values") {
            let Some(row) = group(&pieces[i..]) else {
                continue;
            };
            out.extend_from_slice(&pieces[i..i + row]);
            i += row;
            let mut folded = false;
            while let [Piece::Punct(",", _), rest @ ..] = &pieces[i..] {
                match group(rest) {
                    Some(len) if rest[..len] == pieces[i - row..i] => {
                        i += 1 + len;
                        folded = true;
                    }
                    _ => break,
                }
            }
            if folded {
                out.extend([Piece::Punct(",", true), Piece::Word("...")]);
            }
        }
    }
    out
}

/// The length of a parenthesized group at the start of `pieces`, nested
/// parentheses included.
fn group(pieces: &[Piece<'_>]) -> Option<usize> {
    if !matches!(pieces.first(), Some(Piece::Punct("(", _))) {
        return None;
    }
    let mut depth = 0usize;
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Punct("(", _) => depth += 1,
            Piece::Punct(")", _) => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// The length of `(?, ?, …)` at the start of `pieces`: values only.
fn value_list(pieces: &[Piece<'_>]) -> Option<usize> {
    let len = group(pieces)?;
    let inner = &pieces[1..len - 1];
    let only_values = !inner.is_empty()
        && inner.iter().enumerate().all(|(i, p)| match i % 2 {
            0 => *p == Piece::Value,
            _ => matches!(p, Piece::Punct(",", _)),
        });
    only_values.then_some(len)
}

/// One canonical spelling: single spaces, none inside parentheses, before
/// commas or around dots; operator characters written together stay
/// together (`>=`, `::`).
fn render(pieces: &[Piece<'_>]) -> String {
    let mut out = String::with_capacity(pieces.len() * 4);
    let mut previous: Option<Piece<'_>> = None;
    for piece in pieces {
        let space = match (previous, piece) {
            (None, _) => false,
            (_, Piece::Punct(")" | "," | "." | ";", _)) => false,
            (Some(Piece::Punct("(" | ".", _)), _) => false,
            // A cast (`a::text`) is written without spaces.
            (_, Piece::Punct(":", true)) | (Some(Piece::Punct(":", _)), Piece::Word(_)) => false,
            // A function call or a glued operator stays as written.
            (Some(Piece::Word(_)), Piece::Punct("(", glued)) => !glued,
            (Some(Piece::Punct(p, _)), Piece::Punct(q, true))
                if is_operator(p) && is_operator(q) =>
            {
                false
            }
            _ => true,
        };
        if space {
            out.push(' ');
        }
        match piece {
            Piece::Word(w) => out.push_str(w),
            Piece::Value => out.push('?'),
            Piece::Punct(p, _) => out.push_str(p),
        }
        previous = Some(*piece);
        if out.len() > MAX_LEN {
            let mut cut = MAX_LEN;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            let _ = write!(out, " …");
            break;
        }
    }
    out
}

fn is_operator(p: &str) -> bool {
    !matches!(p, "(" | ")" | "," | "." | ";")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(sql: &str) -> String {
        shape_of(sql, Dialect::Postgres).text().to_owned()
    }

    #[test]
    fn literals_and_binds_become_placeholders() {
        assert_eq!(
            shape("SELECT * FROM users WHERE id = 42 AND name = 'bob'"),
            "SELECT * FROM users WHERE id = ? AND name = ?"
        );
        assert_eq!(
            shape("SELECT * FROM users WHERE id = 7 AND name = 'o''hara'"),
            shape("SELECT * FROM users WHERE id = 42 AND name = 'bob'")
        );
        assert_eq!(
            shape(r#"SELECT "users"."id" FROM "users" WHERE "users"."id" = $1"#),
            r#"SELECT "users"."id" FROM "users" WHERE "users"."id" = ?"#
        );
        assert_eq!(
            shape_of(
                "SELECT `users`.`id` FROM `users` WHERE `users`.`id` = ?",
                Dialect::Mysql
            )
            .text(),
            "SELECT `users`.`id` FROM `users` WHERE `users`.`id` = ?"
        );
        assert_eq!(
            shape("SELECT 1.5e3, -2, x - 1, E'a\\'b', $$q$$"),
            "SELECT ?, ?, x - ?, ?, ?"
        );
    }

    #[test]
    fn whitespace_and_comments_fold() {
        assert_eq!(
            shape("select  a,b\n  from t -- why\n where a>=1 /* c */"),
            "select a, b from t where a >= ?"
        );
        assert_eq!(shape("SELECT count(*) FROM t"), "SELECT count(*) FROM t");
        assert_eq!(shape("SELECT a::text FROM t"), "SELECT a::text FROM t");
    }

    #[test]
    fn value_lists_fold() {
        assert_eq!(
            shape("SELECT * FROM t WHERE id IN ($1, $2, $3)"),
            "SELECT * FROM t WHERE id IN (...)"
        );
        assert_eq!(
            shape("SELECT * FROM t WHERE id IN (?)"),
            shape("SELECT * FROM t WHERE id IN (?, ?, ?, ?)")
        );
        assert_eq!(
            shape("INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)"),
            "INSERT INTO t (a, b) VALUES (?, ?), ..."
        );
        assert_eq!(
            shape("INSERT INTO t (a, b) VALUES (?, ?)"),
            "INSERT INTO t (a, b) VALUES (?, ?)"
        );
        // A subquery is not a list of values.
        assert_eq!(
            shape("SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = 1)"),
            "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE x = ?)"
        );
    }

    #[test]
    fn only_selects_are_selects() {
        assert!(shape_of("SELECT 1", Dialect::Postgres).is_select());
        assert!(shape_of("  select * from t", Dialect::Postgres).is_select());
        assert!(!shape_of("UPDATE t SET a = 1", Dialect::Postgres).is_select());
        assert!(!shape_of(
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            Dialect::Postgres
        )
        .is_select());
    }

    #[test]
    fn never_panics_and_stays_bounded() {
        let long = format!("SELECT {} FROM t", vec!["a"; 5000].join(", "));
        assert!(shape(&long).len() <= MAX_LEN + 4);
        for sql in [
            "", "'", "\"", "$", "$$", "(", ")", "IN (", "VALUES (", "é'", "-", "1e",
        ] {
            let _ = shape(sql);
        }
    }
}
