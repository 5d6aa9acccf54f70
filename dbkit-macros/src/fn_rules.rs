//! Rules on the attributed function that both macros share.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use syn::{GenericParam, ItemFn, Type};

use crate::ctxt::Ctxt;

/// Rules every attributed function obeys: synchronous, safe, non-`const`,
/// Rust ABI, not variadic, generic over lifetimes only (`generic` says why).
pub(crate) fn check_fn_kind(func: &ItemFn, attr: &str, generic: &str, cx: &mut Ctxt) {
    let sig = &func.sig;
    if let Some(token) = &sig.asyncness {
        cx.error_spanned_by(
            token,
            format!("`#[{attr}]` does not support `async fn` yet; diesel's API is synchronous: make the function synchronous and call it from `spawn_blocking`"),
        );
    }
    if let Some(token) = &sig.constness {
        cx.error_spanned_by(
            token,
            format!("`#[{attr}]` cannot be used on a `const fn`; remove `const`"),
        );
    }
    if let Some(token) = &sig.unsafety {
        cx.error_spanned_by(
            token,
            format!("`#[{attr}]` cannot be used on an `unsafe fn`; keep the unsafe part in a helper the function calls"),
        );
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(
            abi,
            format!("`#[{attr}]` cannot be used on an `extern` function; remove the ABI"),
        );
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(
            variadic,
            format!("`#[{attr}]` cannot be used on a variadic function"),
        );
    }
    for param in &sig.generics.params {
        match param {
            GenericParam::Lifetime(_) => {}
            GenericParam::Type(_) | GenericParam::Const(_) => cx.error_spanned_by(
                param,
                format!("`#[{attr}]` cannot be used on a generic function: {generic}"),
            ),
        }
    }
}

/// `&mut C` where `C`'s name ends in `Connection` (`SqliteConnection`,
/// `PgConnection`, `PooledConnection<..>`): the diesel connection.
pub(crate) fn is_connection_type(ty: &Type) -> bool {
    let Type::Reference(r) = ty else { return false };
    if r.mutability.is_none() {
        return false;
    }
    match &*r.elem {
        Type::Path(p) => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident.to_string().ends_with("Connection")),
        _ => false,
    }
}

/// `tokens` with every span set to `span`, so a path to the runtime written by
/// the macro is blamed on the user's type rather than on the attribute.
pub(crate) fn respan(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(&group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
