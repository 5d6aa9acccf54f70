//! What both attributes' arguments share: `name = value` pairs, literal
//! values, the `crate = "..."` override.

use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ExprLit, Ident, Lit, Token};

use crate::ctxt::Ctxt;

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
