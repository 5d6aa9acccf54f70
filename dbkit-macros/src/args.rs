//! What both attributes' arguments share: `name = value` pairs, literal
//! values, the `crate = "..."` override.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, Token};

use crate::ctxt::Ctxt;
use crate::suggest;

/// One `name = value` (or bare `name`) argument as written.
pub(crate) struct RawOption {
    pub(crate) name: Ident,
    pub(crate) value: Option<Expr>,
}

impl Parse for RawOption {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name = Ident::parse_any(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(RawOption { name, value })
    }
}

/// The options of one attribute as written, each known and given once.
pub(crate) struct Screened {
    pub(crate) options: Vec<RawOption>,
    /// Names an unknown option was taken for: not reported missing as well.
    pub(crate) suggested: Vec<&'static str>,
}

/// Parses `#[attr(...)]`'s arguments and reports, in `cx`, each unknown
/// option (with the closest known name) and each repeated one. `usage`
/// shows how options are written, for a malformed list.
pub(crate) fn screen(
    args: TokenStream,
    attr: &str,
    known: &[&'static str],
    usage: &str,
    cx: &mut Ctxt,
) -> Option<Screened> {
    let raw = match Punctuated::<RawOption, Token![,]>::parse_terminated.parse2(args) {
        Ok(raw) => raw,
        Err(e) => {
            cx.push(syn::Error::new(e.span(), format!("{e}; {usage}")));
            return None;
        }
    };
    let mut screened = Screened {
        options: Vec::new(),
        suggested: Vec::new(),
    };
    for opt in raw {
        let name = opt.name.to_string();
        if !known.contains(&name.as_str()) {
            let hint = match suggest::closest(&name, known) {
                Some(close) => {
                    screened.suggested.push(close);
                    format!("did you mean `{close}`?")
                }
                None => format!("expected one of {}", list(known)),
            };
            cx.error_spanned_by(
                &opt.name,
                format!("unknown `{attr}` option `{name}`; {hint}"),
            );
        } else if screened.options.iter().any(|o| o.name == opt.name) {
            cx.error_spanned_by(&opt.name, format!("duplicate `{attr}` option `{name}`"));
        } else {
            screened.options.push(opt);
        }
    }
    Some(screened)
}

pub(crate) fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn lit(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => lit(&g.expr),
        _ => None,
    }
}

pub(crate) fn parse_bool(name: &str, value: &Expr, cx: &mut Ctxt) -> Option<bool> {
    match lit(value) {
        Some(Lit::Bool(b)) => Some(b.value),
        _ => {
            cx.error_spanned_by(value, format!("`{name}` expects `true` or `false`"));
            None
        }
    }
}

pub(crate) fn parse_crate(value: &Expr, cx: &mut Ctxt) -> Option<syn::Path> {
    match lit(value) {
        Some(Lit::Str(s)) => match s.parse::<syn::Path>() {
            Ok(path) => Some(path),
            Err(_) => {
                cx.error_spanned_by(
                    s,
                    "`crate` expects a path to the dbkit crate, e.g. `crate = \"::dbkit\"`",
                );
                None
            }
        },
        _ => {
            cx.error_spanned_by(
                value,
                "`crate` expects a string, e.g. `crate = \"::my_reexport::dbkit\"`",
            );
            None
        }
    }
}
