//! Stage 3: two functions from one.
//!
//! ```text
//! #[with_session(transaction)]
//! fn rename(conn: &mut PgConnection, id: i32, name: &str) -> Result<(), AppError> { /* body */ }
//! // becomes
//! #[track_caller]
//! fn rename(id: i32, name: &str) -> Result<(), AppError> {
//!     let __dbkit_session = /* check out from the pool, or return Err(AppError::from(e)) */;
//!     // on a panic: roll back, return the connection, then go on panicking
//!     __dbkit_session.run(|conn| rename_with_conn(conn, id, name))
//! }
//! fn rename_with_conn(conn: &mut PgConnection, id: i32, name: &str) -> Result<(), AppError> {
//!     diesel::Connection::transaction(conn, |conn| { /* body */ })
//! }
//! ```
//!
//! Callers without a connection call `rename`; callers that hold one (in
//! another session or transaction) call `rename_with_conn` and no second
//! checkout happens.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, ItemFn};

use super::options::Options;
use super::signature::Signature;
use crate::fn_rules::respan;

/// Attributes that belong on both functions; doc comments go on the one
/// callers use, everything else (`#[cached_query]`, `#[inline]`, ...) on
/// the one with the body.
fn is_shared(attr: &Attribute) -> bool {
    [
        "cfg",
        "cfg_attr",
        "allow",
        "expect",
        "warn",
        "deny",
        "deprecated",
    ]
    .iter()
    .any(|name| attr.path().is_ident(name))
}

pub(crate) fn expand(func: &ItemFn, options: &Options, signature: &Signature) -> TokenStream {
    let krate = &options.krate;
    let private = quote!(#krate::__private);
    let vis = &func.vis;
    let name = &func.sig.ident;
    let with_conn = format_ident!("{}_with_conn", name);
    let generics = &func.sig.generics;
    let where_clause = &generics.where_clause;
    let output = &func.sig.output;
    let conn = &signature.conn;
    let conn_ty = &signature.conn_ty;
    let args = &signature.args;

    let docs: Vec<&Attribute> = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .collect();
    let shared: Vec<&Attribute> = func.attrs.iter().filter(|a| is_shared(a)).collect();
    let rest: Vec<&Attribute> = func
        .attrs
        .iter()
        .filter(|a| !a.path().is_ident("doc") && !is_shared(a))
        .collect();

    let outer_params = func
        .sig
        .inputs
        .iter()
        .skip(1)
        .zip(args)
        .map(|(input, arg)| {
            let FnArg::Typed(typed) = input else {
                unreachable!("receivers are rejected by the signature check")
            };
            let ty = &typed.ty;
            quote!(#arg: #ty)
        });

    let label = match &options.label {
        Some(label) => quote!(#label),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#name)
        )),
    };
    let location = quote!(::core::panic::Location::caller());
    let checkout = match &options.pool {
        None => quote! {
            #private::checkout_default::<#conn_ty>(#label, #location)
        },
        Some(pool) => {
            let at_pool = respan(&private, pool.span());
            quote_spanned! {pool.span()=>
                #at_pool::checkout_from::<#conn_ty, _>(&#pool, #label, #location)
            }
        }
    };
    // A missing `From<dbkit::Error>` is blamed on the return type.
    let ret_span = signature.output.span();
    let at_ret = respan(&private, ret_span);
    let into_error = quote_spanned!(ret_span=> #at_ret::session_error(__dbkit_error));

    let inputs = &func.sig.inputs;
    let block = &func.block;
    let body = if options.transaction {
        quote! {{
            #private::diesel::Connection::transaction(#conn, |#conn| #block)
        }}
    } else {
        quote!(#block)
    };
    let with_conn_doc = format!(
        " Like [`{name}`], on a connection the caller already holds (inside another session or transaction): no checkout happens."
    );

    quote! {
        #(#docs)*
        #(#shared)*
        #[track_caller]
        #vis fn #name #generics (#(#outer_params),*) #output #where_clause {
            let __dbkit_session = match #checkout {
                ::core::result::Result::Ok(session) => session,
                ::core::result::Result::Err(__dbkit_error) => {
                    return ::core::result::Result::Err(#into_error);
                }
            };
            __dbkit_session.run(|__dbkit_conn| #with_conn(__dbkit_conn, #(#args),*))
        }

        #[doc = #with_conn_doc]
        #(#shared)*
        #(#rest)*
        #vis fn #with_conn #generics (#inputs) #output #where_clause #body
    }
}
