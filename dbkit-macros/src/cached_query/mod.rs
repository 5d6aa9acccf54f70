//! `#[cached_query]`: parse the options, check the signature, expand.

mod expand;
mod options;
mod signature;

use proc_macro2::TokenStream;
use syn::{FnArg, ItemFn};

use crate::ctxt::{item_with_errors, Ctxt};

/// The whole macro on token streams, callable from tests.
pub fn cached_query_inner(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[cached_query]` applies to a function with a body, e.g. `fn user(conn: &mut PgConnection, id: i32) -> QueryResult<User>`",
            );
            return item_with_errors(item, err);
        }
    };
    let mut cx = Ctxt::default();
    let options = options::parse(args, &mut cx);
    let signature = signature::analyse(&func, options.as_ref(), &mut cx);
    match (cx.check(), options, signature) {
        (Ok(()), Some(options), Some(signature)) => expand::expand(&func, &options, &signature),
        (result, _, _) => {
            let errors = result.err().unwrap_or_else(|| {
                syn::Error::new(
                    proc_macro2::Span::call_site(),
                    "`#[cached_query]` could not be expanded",
                )
            });
            for input in &mut func.sig.inputs {
                if let FnArg::Typed(typed) = input {
                    expand::strip_markers(&mut typed.attrs);
                }
            }
            item_with_errors(func, errors)
        }
    }
}
