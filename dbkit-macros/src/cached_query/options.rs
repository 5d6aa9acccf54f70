//! Stage 1: the attribute's arguments, parsed into typed [`Options`].
//!
//! Every option is checked on its own here (value kind, range, spelling);
//! rules that involve the function's signature live in `signature.rs`.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use syn::{Expr, ExprUnary, Lit, UnOp};

use crate::args::{lit, parse_bool, parse_crate, screen};
use crate::ctxt::Ctxt;
use crate::duration;

const OPTIONS: &[&str] = &[
    "ttl",
    "tables",
    "max_entries",
    "single_flight",
    "cache_none",
    "redis",
    "crate",
];

/// Default bound on a function's entries (mirrors dbkit-core).
const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// What `#[cached_query(...)]` asked for, validated.
pub(crate) struct Options {
    pub ttl: Duration,
    /// Table names as written (`users`, `app.accounts`), checked identifiers.
    pub tables: Vec<String>,
    pub max_entries: usize,
    pub single_flight: bool,
    /// `cache_none = false`, with its span for errors about the return type.
    pub skip_none: Option<Span>,
    /// `redis` (or `redis = true`): Redis as L2, with the option's span.
    pub redis: Option<Span>,
    pub krate: syn::Path,
}

/// Parses and checks every option, recording all problems in `cx`.
pub(crate) fn parse(args: TokenStream, cx: &mut Ctxt) -> Option<Options> {
    let screened = screen(
        args,
        "cached_query",
        OPTIONS,
        "options are written `name = value`, e.g. `#[cached_query(ttl = 300, tables = \"users\")]`",
        cx,
    )?;

    let mut ttl = None;
    let mut tables = None;
    let mut max_entries = None;
    let mut single_flight = None;
    let mut skip_none = None;
    let mut redis = None;
    let mut krate = None;
    let seen: Vec<String> = screened
        .options
        .iter()
        .map(|o| o.name.to_string())
        .collect();

    for opt in screened.options {
        let name = opt.name.to_string();
        if name == "redis" {
            redis = parse_redis(&opt.name, opt.value.as_ref(), cx);
            continue;
        }
        let Some(value) = opt.value else {
            cx.error_spanned_by(
                &opt.name,
                format!("`{name}` needs a value; {}", example(&name)),
            );
            continue;
        };
        match name.as_str() {
            "ttl" => ttl = parse_ttl(&value, cx),
            "tables" => tables = parse_tables(&value, cx),
            "max_entries" => max_entries = parse_max_entries(&value, cx),
            "single_flight" => single_flight = parse_bool(&name, &value, cx),
            "cache_none" => {
                if parse_bool(&name, &value, cx) == Some(false) {
                    skip_none = Some(syn::spanned::Spanned::span(&value));
                }
            }
            "crate" => krate = parse_crate(&value, cx),
            _ => unreachable!("every name in OPTIONS is handled"),
        }
    }

    let missing =
        |name: &str| !seen.iter().any(|s| s == name) && !screened.suggested.contains(&name);
    if missing("tables") {
        cx.push(syn::Error::new(
            Span::call_site(),
            "missing `tables`; name the tables the query reads, e.g. `tables = \"users, posts\"`, so writes to them invalidate its results",
        ));
    }
    if missing("ttl") {
        cx.push(syn::Error::new(
            Span::call_site(),
            "missing `ttl`; add `ttl = 300` (seconds) or `ttl = \"5m\"`: it bounds staleness from writes dbkit cannot see",
        ));
    }

    Some(Options {
        ttl: ttl?,
        tables: tables?,
        max_entries: max_entries.unwrap_or(DEFAULT_MAX_ENTRIES),
        single_flight: single_flight.unwrap_or(true),
        skip_none,
        redis,
        krate: krate.unwrap_or_else(|| syn::parse_quote!(::dbkit)),
    })
}

/// `redis` alone or `redis = true|false`; only with dbkit's `redis` feature.
fn parse_redis(name: &syn::Ident, value: Option<&Expr>, cx: &mut Ctxt) -> Option<Span> {
    let on = match value {
        None => true,
        Some(value) => parse_bool("redis", value, cx)?,
    };
    if !on {
        return None;
    }
    if cfg!(feature = "redis") {
        Some(name.span())
    } else {
        cx.error_spanned_by(
            name,
            "`redis` needs dbkit's `redis` feature: `dbkit = { version = \"...\", features = [\"redis\"] }` in Cargo.toml",
        );
        None
    }
}

fn example(name: &str) -> &'static str {
    match name {
        "ttl" => "write `ttl = 300` (seconds) or `ttl = \"5m\"`",
        "tables" => "write `tables = \"users, posts\"`",
        "max_entries" => "write `max_entries = 1000`",
        "single_flight" => "write `single_flight = false`",
        "cache_none" => "write `cache_none = false`",
        _ => "write `crate = \"::dbkit\"`",
    }
}

fn parse_ttl(value: &Expr, cx: &mut Ctxt) -> Option<Duration> {
    const HOW: &str = "write whole seconds (`ttl = 300`) or a duration string (`ttl = \"5m\"`)";
    let ttl = match (value, lit(value)) {
        (
            Expr::Unary(ExprUnary {
                op: UnOp::Neg(_), ..
            }),
            _,
        ) => {
            cx.error_spanned_by(value, format!("`ttl` must be positive; {HOW}"));
            return None;
        }
        (_, Some(Lit::Int(int))) => match int.base10_parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                cx.error_spanned_by(
                    int,
                    format!("`ttl` is not a whole number of seconds; {HOW}"),
                );
                return None;
            }
        },
        (_, Some(Lit::Str(text))) => match duration::parse(&text.value()) {
            Ok(d) => d,
            Err(why) => {
                cx.error_spanned_by(text, format!("cannot read `ttl`: {why}; {HOW}"));
                return None;
            }
        },
        _ => {
            cx.error_spanned_by(value, format!("`ttl` expects a literal; {HOW}"));
            return None;
        }
    };
    if ttl.is_zero() {
        cx.error_spanned_by(
            value,
            format!("`ttl` must be positive, a zero ttl caches nothing; {HOW}"),
        );
        return None;
    }
    Some(ttl)
}

fn parse_tables(value: &Expr, cx: &mut Ctxt) -> Option<Vec<String>> {
    let Some(Lit::Str(text)) = lit(value) else {
        cx.error_spanned_by(value, "`tables` expects a string of comma-separated table names, e.g. `tables = \"users, posts\"`");
        return None;
    };
    let mut tables: Vec<String> = Vec::new();
    let mut ok = true;
    let joined = text.value();
    if joined.trim().is_empty() {
        cx.error_spanned_by(
            text,
            "`tables` is empty; name at least one table the query reads, e.g. `tables = \"users\"`",
        );
        return None;
    }
    for name in joined.split(',').map(str::trim) {
        if let Err(why) = check_table_name(name) {
            cx.error_spanned_by(text, why);
            ok = false;
        } else if tables.iter().any(|t| t.eq_ignore_ascii_case(name)) {
            cx.error_spanned_by(text, format!("table `{name}` is listed twice in `tables`"));
            ok = false;
        } else {
            tables.push(name.to_owned());
        }
    }
    ok.then_some(tables)
}

/// A table is an SQL identifier, optionally qualified by one schema.
fn check_table_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty table name in `tables`; separate names with single commas, e.g. `\"users, posts\"`".into());
    }
    let parts: Vec<&str> = name.split('.').collect();
    let is_ident = |p: &str| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    if parts.len() > 2 || !parts.iter().all(|p| is_ident(p)) {
        return Err(format!(
            "`{name}` is not a table name; write an identifier such as `users`, optionally with its schema (`app.users`)"
        ));
    }
    Ok(())
}

fn parse_max_entries(value: &Expr, cx: &mut Ctxt) -> Option<usize> {
    match lit(value) {
        Some(Lit::Int(int)) => match int.base10_parse::<usize>() {
            Ok(0) => cx.error_spanned_by(int, "`max_entries` must be at least 1"),
            Ok(n) => return Some(n),
            Err(_) => cx.error_spanned_by(
                int,
                "`max_entries` expects a whole number, e.g. `max_entries = 1000`",
            ),
        },
        _ => cx.error_spanned_by(
            value,
            "`max_entries` expects a whole number, e.g. `max_entries = 1000`",
        ),
    }
    None
}
