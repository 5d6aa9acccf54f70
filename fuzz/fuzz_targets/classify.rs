//! The statement classifier on arbitrary input: it never panics, and a write
//! is never reported as a read, whatever comments, case, quoting or garbage
//! surround it.
#![no_main]

use dbkit_diesel::classify::{classify, statements, Dialect, Effect};
use libfuzzer_sys::fuzz_target;

/// Write statements the fuzzer's bytes are spliced into.
const WRITES: &[&str] = &[
    "INSERT INTO {t} VALUES (1)",
    "insert or replace into {t} (a) values (?)",
    "UPDATE {t} SET a = 1",
    "DELETE FROM {t} WHERE a = 1",
    "TRUNCATE {t}",
    "REPLACE INTO {t} VALUES (1)",
    "MERGE INTO {t} USING s ON true WHEN MATCHED THEN DELETE",
    "WITH x AS (DELETE FROM {t} RETURNING *) SELECT * FROM x",
    "ALTER TABLE {t} ADD COLUMN b int",
    "DROP TABLE {t}",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    // 1. Any text, in every dialect: no panic, and the combined effect
    //    agrees with its parts.
    for dialect in [Dialect::Postgres, Dialect::Sqlite, Dialect::Mysql, Dialect::Any] {
        let parts: Vec<Effect<'_>> = statements(text, dialect, true).map(|s| s.effect).collect();
        let whole = classify(text, dialect, true);
        if parts.iter().any(Effect::is_write) {
            assert!(whole.is_write(), "{text:?}: a part writes but the whole does not");
        }
    }

    // 2. A known write with fuzzed trivia before it and a fuzzed table name:
    //    a write of that table, or "unknown" (writes everything); never a read.
    let mid = (0..=text.len() / 2).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let (prefix, rest) = text.split_at(mid);
    // Trivia only: one well-formed comment (no `*` inside, so it cannot end
    // early or nest) and a line comment. Garbage that is not trivia would make
    // the statement a syntax error the database never runs.
    let prefix = format!("/*{}*/ -- {}\n", prefix.replace('*', ""), prefix.replace(['\n', '\r'], ""));
    let table: String = rest.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(20).collect();
    let table = if table.is_empty() || table.as_bytes()[0].is_ascii_digit() { format!("t{table}") } else { table };
    let pick = data.first().map_or(0, |b| *b as usize) % WRITES.len();
    let sql = format!("{prefix}{}", WRITES[pick].replace("{t}", &format!("\"{table}\"")));
    match classify(&sql, Dialect::Any, false) {
        Effect::Writes(tables) => assert!(
            tables.as_slice().iter().any(|t| *t == table),
            "{sql:?}: wrote {:?}, not {table}",
            tables.as_slice()
        ),
        Effect::WritesUnknown => {}
        other => panic!("{sql:?} classified as {other:?}"),
    }
});
