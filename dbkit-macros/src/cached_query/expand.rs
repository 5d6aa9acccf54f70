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
//!     let __dbkit_span = Ticket::span(&__dbkit_ticket); // `cached_query`, cache = "miss"
//!     let __dbkit_entered = __dbkit_span.enter();
//!     let __dbkit_output = __dbkit_query(conn, email);
//!     drop(__dbkit_entered);
//!     if let Ok(value) = &__dbkit_output { __dbkit_ticket.store(value.clone()) }
//!     __dbkit_output
//! }
//! ```

use crate::fn_rules::respan;
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
            Role::Key { keyed_ty, passing } => Some((p, &**keyed_ty, *passing)),
            Role::Connection | Role::Skipped => None,
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

    let ret = signature.output.ty();
    let at_ret = respan(&private, ret.span());
    let value_ty = match &signature.output {
        Output::Result { .. } => quote_spanned!(ret.span()=> <#ret as #at_ret::CachedResult>::Ok),
        Output::Option { .. } | Output::Plain { .. } => quote!(#ret),
    };
    // With `redis`, the same steps go through the L1+L2 types.
    let (lazy, cache_ty, ticket_ty) = if options.redis.is_some() {
        (
            quote!(LazyRemoteCache),
            quote!(RemoteCache),
            quote!(RemoteTicket),
        )
    } else {
        (quote!(LazyCache), quote!(QueryCache), quote!(Ticket))
    };
    // Reaching the cache requires a storable value: reported at the return type.
    let cache = quote_spanned!(ret.span()=> #at_ret::#lazy::get(&__DBKIT_CACHE));
    let lookup = quote_spanned!(ret.span()=> #at_ret::#cache_ty::get_or_begin_with);
    let store_fn = quote_spanned!(ret.span()=> #at_ret::#ticket_ty::store);
    let hit = match &signature.output {
        Output::Result { .. } => {
            quote_spanned!(ret.span()=> <#ret as #at_ret::CachedResult>::from_ok(__dbkit_hit))
        }
        Output::Option { .. } | Output::Plain { .. } => quote!(__dbkit_hit),
    };
    let clone = quote!(::core::clone::Clone::clone);
    let ok_ref = quote_spanned!(ret.span()=> <#ret as #at_ret::CachedResult>::ok_ref);
    let store = match (&signature.output, options.skip_none.is_some()) {
        (Output::Result { .. }, skip_none) => {
            let guard = skip_none.then(|| quote!(if __dbkit_value.is_some()));
            quote! {
                if let ::core::option::Option::Some(__dbkit_value) =
                    #ok_ref(&__dbkit_output)
                {
                    #guard { #store_fn(__dbkit_ticket, #clone(__dbkit_value)); }
                }
            }
        }
        (Output::Option { .. }, true) => quote! {
            if __dbkit_output.is_some() { #store_fn(__dbkit_ticket, #clone(&__dbkit_output)); }
        },
        (Output::Option { .. } | Output::Plain { .. }, _) => quote! {
            #store_fn(__dbkit_ticket, #clone(&__dbkit_output));
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
            static __DBKIT_CACHE: #private::LazyCache<(#(#key_types,)*), #value_ty> =
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
                static __DBKIT_CACHE: #private::LazyRemoteCache<(#(#key_types,)*), #value_ty> =
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

            let __dbkit_cache = #cache;
            let __dbkit_ticket = match #lookup(
                __dbkit_cache,
                |__dbkit_hasher| { #(#hashes)* },
                |__dbkit_key| #all_match,
                || (#(#to_keys,)*),
            ) {
                ::core::result::Result::Ok(__dbkit_hit) => return #hit,
                ::core::result::Result::Err(__dbkit_ticket) => __dbkit_ticket,
            };
            let __dbkit_span = #private::#ticket_ty::span(&__dbkit_ticket);
            let __dbkit_entered = __dbkit_span.enter();
            let __dbkit_output = __dbkit_query(#(#args),*);
            ::core::mem::drop(__dbkit_entered);
            #store
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
