//! Stage 2: the function's signature as a session needs it: the connection
//! first, by `&mut`, and a `Result` to return a failed checkout through.

use proc_macro2::Span;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

use crate::ctxt::Ctxt;
use crate::fn_rules::{check_fn_kind, is_connection_type};

const NEEDS_CONN: &str =
    "`#[with_session]` needs a first parameter `conn: &mut C` where `C: diesel::Connection`";

pub(crate) struct Signature {
    /// The connection parameter's name.
    pub conn: Ident,
    /// `C` in `conn: &mut C`.
    pub conn_ty: Type,
    /// The other parameters, as the outer function forwards them.
    pub args: Vec<Ident>,
    /// The return type, a `Result`.
    pub output: Type,
}

/// Checks the function against the rules of a session.
pub(crate) fn analyse(func: &ItemFn, cx: &mut Ctxt) -> Option<Signature> {
    check_fn_kind(
        func,
        "with_session",
        "the pool is chosen by the connection type; make the connection type concrete (`&mut PgConnection`)",
        cx,
    );
    let conn = analyse_conn(func, cx);
    let args = forwarded_args(func, cx);
    let output = analyse_output(func, cx);
    let (conn, conn_ty) = conn?;
    Some(Signature {
        conn,
        conn_ty,
        args: args?,
        output: output?,
    })
}

fn analyse_conn(func: &ItemFn, cx: &mut Ctxt) -> Option<(Ident, Type)> {
    let mut inputs = func.sig.inputs.iter();
    let first = match inputs.next() {
        None => {
            cx.push(syn::Error::new(
                func.sig.paren_token.span.join(),
                format!("{NEEDS_CONN}; this function has no parameters"),
            ));
            return None;
        }
        Some(FnArg::Receiver(receiver)) => {
            cx.error_spanned_by(
                receiver,
                "`#[with_session]` cannot be used on a method; make it a free function whose first parameter is `conn: &mut C`",
            );
            return None;
        }
        Some(FnArg::Typed(first)) => first,
    };
    // A connection further down the list is most likely the one meant.
    let later = inputs.find_map(|input| match input {
        FnArg::Typed(t) if is_connection_type(&t.ty) => Some(t),
        _ => None,
    });
    let problem = match &*first.ty {
        Type::Reference(r) if r.mutability.is_some() => None,
        Type::Reference(_) => Some(
            "the connection must be borrowed mutably: write `&mut C`, as diesel's queries take it"
                .to_owned(),
        ),
        _ => Some(format!(
            "{NEEDS_CONN}; the connection is passed by `&mut`, it is checked out for the call and returned after"
        )),
    };
    if let Some(problem) = problem {
        match later {
            Some(later) => cx.error_spanned_by(
                later,
                "the connection must be the first parameter of a `#[with_session]` function; move it first",
            ),
            None => cx.error_spanned_by(&first.ty, problem),
        }
        return None;
    }
    let Type::Reference(reference) = &*first.ty else {
        return None;
    };
    if let Some(later) = later {
        cx.error_spanned_by(
            later,
            "a `#[with_session]` function gets one connection, its first parameter; remove this one",
        );
        return None;
    }
    let conn = match &*first.pat {
        Pat::Ident(p) if p.subpat.is_none() => p.ident.clone(),
        other => {
            cx.error_spanned_by(
                other,
                "name the connection parameter, e.g. `conn: &mut PgConnection`",
            );
            return None;
        }
    };
    Some((conn, (*reference.elem).clone()))
}

/// The names the outer function gives the other parameters: the user's own
/// where they are plain identifiers.
fn forwarded_args(func: &ItemFn, cx: &mut Ctxt) -> Option<Vec<Ident>> {
    let mut args = Vec::new();
    for (i, input) in func.sig.inputs.iter().enumerate().skip(1) {
        match input {
            FnArg::Typed(t) => args.push(match &*t.pat {
                Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => p.ident.clone(),
                _ => Ident::new(&format!("__dbkit_arg{i}"), Span::call_site()),
            }),
            FnArg::Receiver(r) => {
                cx.error_spanned_by(r, "`self` can only be the first parameter");
                return None;
            }
        }
    }
    Some(args)
}

fn analyse_output(func: &ItemFn, cx: &mut Ctxt) -> Option<Type> {
    const HOW: &str = "return `Result<T, E>` where `E: From<dbkit::Error>`, so a failed checkout reaches the caller";
    let ty = match &func.sig.output {
        ReturnType::Default => {
            cx.push(syn::Error::new(
                func.sig.paren_token.span.close(),
                format!("a `#[with_session]` function must return a `Result`; {HOW}"),
            ));
            return None;
        }
        ReturnType::Type(_, ty) => &**ty,
    };
    let is_result = matches!(ty, Type::Path(p)
        if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident.to_string().ends_with("Result")));
    if !is_result {
        cx.error_spanned_by(
            ty,
            format!("`#[with_session]` cannot return a failed checkout through this type; {HOW}"),
        );
        return None;
    }
    Some(ty.clone())
}
