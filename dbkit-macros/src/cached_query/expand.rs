//! Stage 3: the code, generated from the checked [`Options`] and
//! [`Signature`] only. It reads like what a person would write by hand:
//!
//! ```text
//! fn user_by_email(conn: &mut SqliteConnection, email: &str) -> QueryResult<User> {
//!     fn __dbkit_query(conn: &mut SqliteConnection, email: &str) -> QueryResult<User> { /* body */ }
//!     static __DBKIT_CACHE: LazyCache<(String,), User> = LazyCache::new(CacheSpec { .. });
//!     let __dbkit_ticket = match __DBKIT_CACHE.get().get_or_begin(&(email,), matches, make_key) {
//!         Ok(__dbkit_hit) => return Ok(__dbkit_hit),
//!         Err(__dbkit_ticket) => __dbkit_ticket,
//!     };
//!     let __dbkit_output = __dbkit_query(conn, email);
//!     if let Ok(value) = &__dbkit_output { __dbkit_ticket.store(value.clone()) }
//!     __dbkit_output
//! }
//! ```

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat};

use super::options::Options;
use super::signature::{Output, Param, Passing, Role, Signature};

pub(crate) fn expand(func: &ItemFn, options: &Options, signature: &Signature) -> TokenStream {
    let krate = &options.krate;
    let private = quote!(#krate::__private);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = sig.ident.to_string();

    let keyed: Vec<(&Param, &syn::Type, Passing)> = signature
        .params
        .iter()
        .filter_map(|p| match &p.role {
            Role::Key { keyed_ty, passing } => Some((p, keyed_ty, *passing)),
            Role::Connection | Role::Skipped => None,
        })
        .collect();

    // The key: each argument's owned form, in parameter order.
    let key_types = keyed
        .iter()
        .map(|(_, ty, _)| quote_spanned!(ty.span()=> <#ty as #private::CacheKey>::Owned));
    let key_asserts = keyed
        .iter()
        .map(|(_, ty, _)| quote_spanned!(ty.span()=> #private::assert_key::<#ty>();));
    // Each argument borrowed as `&T`, for hashing and comparing on a hit.
    let borrowed: Vec<TokenStream> = keyed
        .iter()
        .map(|(p, _, passing)| {
            let ident = &p.ident;
            match passing {
                Passing::Value => quote!(&#ident),
                Passing::Reference => quote!(&*#ident),
            }
        })
        .collect();
    let indices = (0..keyed.len()).map(syn::Index::from);
    let matches = borrowed
        .iter()
        .zip(indices)
        .map(|(arg, i)| quote!(#private::CacheKey::matches(#arg, &__dbkit_key.#i)));
    let to_keys = borrowed
        .iter()
        .map(|arg| quote!(#private::CacheKey::to_key(#arg)));

    let ret = signature.output.ty();
    let value_ty = match &signature.output {
        Output::Result { .. } => quote_spanned!(ret.span()=> <#ret as #private::CachedResult>::Ok),
        Output::Option { .. } | Output::Plain { .. } => quote!(#ret),
    };
    let value_assert = quote_spanned!(ret.span()=> #private::assert_value::<#value_ty>(););
    let hit = match &signature.output {
        Output::Result { .. } => quote!(#private::CachedResult::from_ok(__dbkit_hit)),
        Output::Option { .. } | Output::Plain { .. } => quote!(__dbkit_hit),
    };
    let clone = quote!(::core::clone::Clone::clone);
    let store = match (&signature.output, options.skip_none.is_some()) {
        (Output::Result { .. }, skip_none) => {
            let guard = skip_none.then(|| quote!(if __dbkit_value.is_some()));
            quote! {
                if let ::core::option::Option::Some(__dbkit_value) =
                    #private::CachedResult::ok_ref(&__dbkit_output)
                {
                    #guard { __dbkit_ticket.store(#clone(__dbkit_value)); }
                }
            }
        }
        (Output::Option { .. }, true) => quote! {
            if __dbkit_output.is_some() { __dbkit_ticket.store(#clone(&__dbkit_output)); }
        },
        (Output::Option { .. } | Output::Plain { .. }, _) => quote! {
            __dbkit_ticket.store(#clone(&__dbkit_output));
        },
    };

    let tables = &options.tables;
    let ttl_ms = u64::try_from(options.ttl.as_millis()).unwrap_or(u64::MAX);
    let max_entries = options.max_entries;
    let single_flight = options.single_flight;

    // The outer function forwards plain names; the body keeps the user's
    // patterns (`mut x`) in the inner function.
    let mut outer_sig = sig.clone();
    let mut inner_sig = sig.clone();
    inner_sig.ident = format_ident!("__dbkit_query");
    for (outer, inner) in outer_sig.inputs.iter_mut().zip(inner_sig.inputs.iter_mut()) {
        if let (FnArg::Typed(outer), FnArg::Typed(inner)) = (outer, inner) {
            strip_markers(&mut outer.attrs);
            strip_markers(&mut inner.attrs);
            if let Pat::Ident(p) = &mut *outer.pat {
                p.mutability = None;
            }
        }
    }
    let args = signature.params.iter().map(|p| &p.ident);

    quote! {
        #(#attrs)*
        #vis #outer_sig {
            #[inline]
            #inner_sig #block

            const _: () = {
                #(#key_asserts)*
                #value_assert
            };

            static __DBKIT_CACHE: #private::LazyCache<(#(#key_types,)*), #value_ty> =
                #private::LazyCache::new(#private::CacheSpec {
                    function: ::core::concat!(::core::module_path!(), "::", #name),
                    tables: &[#(#tables),*],
                    ttl: ::core::time::Duration::from_millis(#ttl_ms),
                    max_entries: #max_entries,
                    single_flight: #single_flight,
                });

            let __dbkit_ticket = match __DBKIT_CACHE.get().get_or_begin(
                &(#(#borrowed,)*),
                |__dbkit_key| true #(&& #matches)*,
                || (#(#to_keys,)*),
            ) {
                ::core::result::Result::Ok(__dbkit_hit) => return #hit,
                ::core::result::Result::Err(__dbkit_ticket) => __dbkit_ticket,
            };
            let __dbkit_output = __dbkit_query(#(#args),*);
            #store
            __dbkit_output
        }
    }
}

/// Removes `#[dbkit(...)]` parameter markers, which only this macro reads.
pub(crate) fn strip_markers(attrs: &mut Vec<syn::Attribute>) {
    attrs.retain(|a| !a.path().is_ident("dbkit"));
}
