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
    match (options, signature) {
        (Some(options), Some(signature)) if cx.is_clean() => {
            expand::expand(&func, &options, &signature)
        }
        _ => {
            let errors = cx.into_error("cached_query");
            for input in &mut func.sig.inputs {
                if let FnArg::Typed(typed) = input {
                    expand::strip_markers(&mut typed.attrs);
                }
            }
            item_with_errors(func, errors)
        }
    }
}

/// Expansion snapshots of the happy paths: what users see in `cargo expand`.
/// `UPDATE_EXPAND=1 cargo test -p dbkit-macros` rewrites them.
#[cfg(test)]
mod snapshots {
    fn check(name: &str, args: &str, item: &str) {
        let tokens = super::cached_query_inner(args.parse().unwrap(), item.parse().unwrap());
        crate::snapshot::assert_expansion(name, tokens);
    }

    #[test]
    fn result_of_option_keyed_on_a_borrowed_str() {
        check(
            "result_option",
            r#"ttl = 300, tables = "users""#,
            "fn user_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
                users::table.filter(users::email.eq(email)).first(conn).optional()
            }",
        );
    }

    #[test]
    fn option_without_none_and_markers() {
        check(
            "option_markers",
            r#"ttl = "5m", tables = "posts, app.users", cache_none = false, max_entries = 100, single_flight = false"#,
            "pub(crate) fn post(#[dbkit(conn)] db: &mut Db, mut id: i64, #[dbkit(skip)] trace: u64) -> Option<Post> {
                id += 1;
                load(db, id, trace)
            }",
        );
    }

    #[test]
    #[cfg(feature = "redis")]
    fn redis_as_l2() {
        check(
            "redis",
            r#"ttl = 300, tables = "users", redis"#,
            "fn user_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
                users::table.filter(users::email.eq(email)).first(conn).optional()
            }",
        );
    }

    #[test]
    fn plain_value_with_crate_override() {
        check(
            "plain_crate",
            r#"ttl = 60, tables = "tags", crate = "::my_app::dbkit""#,
            "fn tag_names(conn: &mut SqliteConnection, ids: &[i32]) -> Vec<String> {
                load(conn, ids)
            }",
        );
    }
}
