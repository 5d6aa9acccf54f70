//! Stage 1: `#[with_session(...)]`'s arguments, parsed into typed [`Options`].

use proc_macro2::TokenStream;
use syn::{Expr, Lit};

use crate::args::{lit, parse_bool, parse_crate, screen};
use crate::ctxt::Ctxt;

const OPTIONS: &[&str] = &["pool", "transaction", "label", "crate"];

/// What `#[with_session(...)]` asked for, validated.
pub(crate) struct Options {
    /// `pool = PATH`: where to check out from; the default pool otherwise.
    pub pool: Option<syn::Path>,
    /// Run the body in `conn.transaction(...)`.
    pub transaction: bool,
    /// The session's label in reports; the function's path otherwise.
    pub label: Option<String>,
    pub krate: syn::Path,
}

/// Parses and checks every option, recording all problems in `cx`.
pub(crate) fn parse(args: TokenStream, cx: &mut Ctxt) -> Option<Options> {
    let screened = screen(
        args,
        "with_session",
        OPTIONS,
        "options are written `name = value` or as a bare flag, e.g. `#[with_session(pool = crate::db::POOL, transaction)]`",
        cx,
    )?;
    let mut options = Options {
        pool: None,
        transaction: false,
        label: None,
        krate: syn::parse_quote!(::dbkit),
    };
    let mut ok = true;
    for opt in screened.options {
        let name = opt.name.to_string();
        match (name.as_str(), opt.value) {
            ("transaction", None) => options.transaction = true,
            ("transaction", Some(value)) => match parse_bool(&name, &value, cx) {
                Some(b) => options.transaction = b,
                None => ok = false,
            },
            (_, None) => {
                cx.error_spanned_by(
                    &opt.name,
                    format!("`{name}` needs a value; {}", example(&name)),
                );
                ok = false;
            }
            ("pool", Some(value)) => match value {
                Expr::Path(p) if p.qself.is_none() => options.pool = Some(p.path),
                other => {
                    cx.error_spanned_by(
                        other,
                        "`pool` expects a path to a pool, e.g. `pool = crate::db::POOL` (a `static` `dbkit::Pool`, `LazyLock` or `OnceLock`)",
                    );
                    ok = false;
                }
            },
            ("label", Some(value)) => match lit(&value) {
                Some(Lit::Str(s)) if !s.value().trim().is_empty() => {
                    options.label = Some(s.value())
                }
                _ => {
                    cx.error_spanned_by(
                        &value,
                        "`label` expects a non-empty string, e.g. `label = \"checkout::pay\"`",
                    );
                    ok = false;
                }
            },
            (_, Some(value)) => match parse_crate(&value, cx) {
                Some(path) => options.krate = path,
                None => ok = false,
            },
        }
    }
    ok.then_some(options)
}

fn example(name: &str) -> &'static str {
    match name {
        "pool" => "write `pool = crate::db::POOL`",
        "label" => "write `label = \"checkout::pay\"`",
        _ => "write `crate = \"::dbkit\"`",
    }
}
