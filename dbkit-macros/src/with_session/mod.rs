//! `#[with_session]`: parse the options, check the signature, expand.

mod expand;
mod options;
mod signature;

use proc_macro2::TokenStream;
use syn::ItemFn;

use crate::ctxt::{item_with_errors, Ctxt};

/// The whole macro on token streams, callable from tests.
pub fn with_session_inner(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let err = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[with_session]` applies to a function with a body, e.g. `fn rename(conn: &mut PgConnection, id: i32) -> Result<(), AppError>`",
            );
            return item_with_errors(item, err);
        }
    };
    let mut cx = Ctxt::default();
    let options = options::parse(args, &mut cx);
    let signature = signature::analyse(&func, &mut cx);
    match (options, signature) {
        (Some(options), Some(signature)) if cx.is_clean() => {
            expand::expand(&func, &options, &signature)
        }
        _ => {
            let errors = cx.into_error("with_session");
            item_with_errors(func, errors)
        }
    }
}

#[cfg(test)]
mod snapshots {
    fn check(name: &str, args: &str, item: &str) {
        let tokens = super::with_session_inner(args.parse().unwrap(), item.parse().unwrap());
        crate::snapshot::assert_expansion(name, tokens);
    }

    #[test]
    fn default_pool() {
        check(
            "with_session_default_pool",
            "",
            "/// Renames a user.\npub fn rename(conn: &mut PgConnection, id: i32, name: &str) -> Result<usize, AppError> {\n    diesel::update(users::table.find(id)).set(users::name.eq(name)).execute(conn).map_err(Into::into)\n}",
        );
    }

    #[test]
    fn named_pool_in_transaction() {
        check(
            "with_session_named_pool_transaction",
            "pool = crate::db::POOL, transaction, label = \"billing::charge\"",
            "fn charge(conn: &mut PgConnection, (account, cents): (i64, i64)) -> AppResult<()> {\n    debit(conn, account, cents)?;\n    Ok(())\n}",
        );
    }
}
