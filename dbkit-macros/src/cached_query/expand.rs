//! Stage 3: the code, generated from the checked [`Options`] and
//! [`Signature`] only. It reads like what a person would write by hand:
//!
//! ```text
//! fn user_by_email(conn: &mut SqliteConnection, email: &str) -> QueryResult<User> {
//!     fn __dbkit_query(conn: &mut SqliteConnection, email: &str) -> QueryResult<User> { /* body */ }
//!     static __DBKIT_CACHE: LazyCache<(String,)> = LazyCache::new(CacheSpec { .. });
//!     // The type checker says what is stored: the `Ok` value of a `Result`.
//!     let __dbkit_output_kind = &&Output::<QueryResult<User>>::new();
//!     let __dbkit_cache = __dbkit_output_kind.dbkit_cache(&__DBKIT_CACHE);
//!     let __dbkit_ticket = match __dbkit_cache.get_or_begin_with(
//!         |deps| cache_access(&mut *conn, deps), // the connection says if it is in a transaction
//!         hash, matches, make_key,
//!     ) {
//!         Ok(__dbkit_hit) => return __dbkit_output_kind.dbkit_from_hit(__dbkit_hit),
//!         Err(__dbkit_ticket) => __dbkit_ticket,
//!     };
//!     let __dbkit_span = Ticket::span(&__dbkit_ticket); // `cached_query`, cache = "miss"
//!     let __dbkit_entered = __dbkit_span.enter();
//!     let __dbkit_output = __dbkit_query(conn, email);
//!     drop(__dbkit_entered);
//!     if let Some(value) = __dbkit_output_kind.dbkit_stored(&__dbkit_output) {
//!         __dbkit_ticket.store(value.clone())
//!     }
//!     __dbkit_output
//! }
//! ```

use crate::fn_rules::respan;
use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat};

use super::options::Options;
use super::signature::{Param, Passing, Role, Signature};

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
            Role::Key { keyed_ty, passing } => Some((p, &**keyed_ty, *passing)),
            Role::Connection(_) | Role::Skipped => None,
        })
        .collect();

    // Every use of the key trait carries the argument type's span, so a type
    // that cannot be keyed is reported there, in dbkit's words.
    let key_trait = |ty: &syn::Type| {
        let private = respan(&private, ty.span());
        quote_spanned!(ty.span()=> <#ty as #private::CacheKey>)
    };
    // The key: each argument's owned form, in parameter order.
    let key_types = keyed.iter().map(|(_, ty, _)| {
        let key = key_trait(ty);
        quote!(#key::Owned)
    });
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
    let hashes = keyed.iter().zip(&borrowed).map(|((_, ty, _), arg)| {
        let key = key_trait(ty);
        quote!(#key::hash_key(#arg, __dbkit_hasher);)
    });
    let matches = keyed
        .iter()
        .zip(&borrowed)
        .enumerate()
        .map(|(i, ((_, ty, _), arg))| {
            let key = key_trait(ty);
            let i = syn::Index::from(i);
            quote!(#key::matches(#arg, &__dbkit_key.#i))
        });
    let matches: Vec<TokenStream> = matches.collect();
    let all_match = if matches.is_empty() {
        quote!(true)
    } else {
        quote!(#(#matches)&&*)
    };
    let to_keys = keyed.iter().zip(&borrowed).map(|((_, ty, _), arg)| {
        let key = key_trait(ty);
        quote!(#key::to_key(#arg))
    });

    let ret = &signature.output;
    let at_ret = respan(&private, ret.span());
    // With `redis`, the same steps go through the L1+L2 types.
    let (cache_ty, ticket_ty, cache_method, kinds) = if options.redis.is_some() {
        (
            quote!(RemoteCache),
            quote!(RemoteTicket),
            quote!(dbkit_remote_cache),
            quote!(
                ResultOutput as _,
                ValueOutput as _,
                RemoteResultOutput as _,
                RemoteValueOutput as _
            ),
        )
    } else {
        (
            quote!(QueryCache),
            quote!(Ticket),
            quote!(dbkit_cache),
            quote!(ResultOutput as _, ValueOutput as _),
        )
    };
    // Reaching the cache requires a storable value: reported at the return type.
    let cache = quote_spanned!(ret.span()=> __dbkit_output_kind.#cache_method(&__DBKIT_CACHE));
    let lookup = quote_spanned!(ret.span()=> #at_ret::#cache_ty::get_or_begin_with);
    let store_fn = quote_spanned!(ret.span()=> #at_ret::#ticket_ty::store);
    // The connection says whether it is inside a transaction; an error
    // about a type that cannot say is reported at that type.
    let access = match signature.params.iter().find_map(|p| match &p.role {
        Role::Connection(ty) => Some((&p.ident, ty)),
        _ => None,
    }) {
        Some((conn, ty)) => {
            let at_conn = respan(&private, ty.span());
            quote_spanned! {ty.span()=>
                |__dbkit_deps| #at_conn::cache_access::<#ty>(&mut *#conn, __dbkit_deps)
            }
        }
        // No connection parameter: the function gets its own.
        None => quote!(|_| #private::Access::Full),
    };
    let clone = quote!(::core::clone::Clone::clone);
    let store = match options.skip_none {
        Some(span) => {
            let at_option = respan(&private, span);
            let is_some = quote_spanned!(span=> #at_option::is_some_value(__dbkit_value));
            quote! {
                if #is_some { #store_fn(__dbkit_ticket, #clone(__dbkit_value)); }
            }
        }
        None => quote! { #store_fn(__dbkit_ticket, #clone(__dbkit_value)); },
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

    let spec = quote! {
        #private::CacheSpec {
            function: ::core::concat!(::core::module_path!(), "::", #name),
            tables: &[#(#tables),*],
            ttl: ::core::time::Duration::from_millis(#ttl_ms),
            max_entries: #max_entries,
            single_flight: #single_flight,
        }
    };
    let cache_static = match options.redis {
        None => quote! {
            static __DBKIT_CACHE: #private::LazyCache<(#(#key_types,)*)> =
                #private::LazyCache::new(#spec);
        },
        Some(_) => {
            let signature = signature_hash(sig);
            // Each argument checked on its own token, so a key type serde
            // cannot handle is reported where it is written (the value is
            // checked by the cache's own bounds, at the return type).
            let key_checks = keyed.iter().map(|(_, ty, _)| {
                let key = key_trait(ty);
                quote_spanned!(ty.span()=> __dbkit_remote_key::<#key::Owned>();)
            });
            quote! {
                static __DBKIT_CACHE: #private::LazyRemoteCache<(#(#key_types,)*)> =
                    #private::LazyRemoteCache::new(#spec, #private::RemoteSpec {
                        signature: #signature,
                        version: ::core::env!("CARGO_PKG_VERSION"),
                    });
                #[allow(dead_code)]
                fn __dbkit_remote_checks() {
                    fn __dbkit_remote_key<T: ?::core::marker::Sized + #private::RemoteKey>() {}
                    #(#key_checks)*
                }
            }
        }
    };

    quote! {
        #(#attrs)*
        #vis #outer_sig {
            #[inline]
            #inner_sig #block

            #cache_static

            #[allow(unused_imports)]
            use #private::{#kinds};
            let __dbkit_output_kind = &&#private::Output::<#ret>::new();
            let __dbkit_cache = #cache;
            let __dbkit_ticket = match #lookup(
                __dbkit_cache,
                #access,
                |__dbkit_hasher| { #(#hashes)* },
                |__dbkit_key| #all_match,
                || (#(#to_keys,)*),
            ) {
                ::core::result::Result::Ok(__dbkit_hit) => {
                    return __dbkit_output_kind.dbkit_from_hit(__dbkit_hit);
                }
                ::core::result::Result::Err(__dbkit_ticket) => __dbkit_ticket,
            };
            let __dbkit_span = #private::#ticket_ty::span(&__dbkit_ticket);
            let __dbkit_entered = __dbkit_span.enter();
            let __dbkit_output = __dbkit_query(#(#args),*);
            ::core::mem::drop(__dbkit_entered);
            if let ::core::option::Option::Some(__dbkit_value) =
                __dbkit_output_kind.dbkit_stored(&__dbkit_output)
            {
                #store
            }
            __dbkit_output
        }
    }
}

/// A hash of the signature as written (argument names and types, return
/// type): part of the Redis key, so changed code never reads old values.
/// FNV-1a, stable across compiler versions and runs.
fn signature_hash(sig: &syn::Signature) -> u64 {
    let inputs = &sig.inputs;
    let output = &sig.output;
    let text = quote!((#inputs) #output).to_string();
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Removes `#[dbkit(...)]` parameter markers, which only this macro reads.
pub(crate) fn strip_markers(attrs: &mut Vec<syn::Attribute>) {
    attrs.retain(|a| !a.path().is_ident("dbkit"));
}
