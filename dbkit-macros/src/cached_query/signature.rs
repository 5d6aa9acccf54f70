//! Stage 2: what the function's signature means for its cache: which
//! parameter is the connection, what each other argument contributes to the
//! key, and how the return value is stored. Every rule that cannot hold is an
//! error on the offending tokens.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Type};

use super::options::Options;
use crate::ctxt::Ctxt;
use crate::fn_rules::{check_fn_kind, is_connection_type};

/// How an argument is passed, which decides how it is borrowed for lookup.
#[derive(Clone, Copy)]
pub(crate) enum Passing {
    /// `x: T`: looked up as `&x`, stored as a clone.
    Value,
    /// `x: &T` or `x: &mut T`: looked up as `&*x`, stored as `T`'s owned form.
    Reference,
}

pub(crate) enum Role {
    /// The database connection, `&mut` the type: passed through, never
    /// keyed, asked whether it is inside a transaction.
    Connection(Box<Type>),
    /// Marked `#[dbkit(skip)]`: passed through, never keyed.
    Skipped,
    /// Part of the key; `keyed_ty` is the type behind the reference, if any.
    Key {
        keyed_ty: Box<Type>,
        passing: Passing,
    },
}

pub(crate) struct Param {
    pub ident: Ident,
    pub role: Role,
}

pub(crate) struct Signature {
    pub params: Vec<Param>,
    /// The return type. What of it is stored (the `Ok` value of any
    /// `Result`, an alias included; anything else whole) is left to the type
    /// checker: the expansion asks `dbkit_core::keys::Output`.
    pub output: Type,
}

/// Checks the function against the rules of a per-function cache.
pub(crate) fn analyse(
    func: &ItemFn,
    options: Option<&Options>,
    cx: &mut Ctxt,
) -> Option<Signature> {
    check_fn_kind(
        func,
        "cached_query",
        "it keeps one cache per function; write a non-generic function for each type you cache",
        cx,
    );
    let _ = options;
    let params = analyse_params(func, cx);
    let output = analyse_output(&func.sig.output, cx);
    Some(Signature {
        params: params?,
        output: output?,
    })
}

fn analyse_params(func: &ItemFn, cx: &mut Ctxt) -> Option<Vec<Param>> {
    let mut params = Vec::new();
    let mut ok = true;
    let mut connection: Option<Span> = None;
    for input in &func.sig.inputs {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                cx.error_spanned_by(
                    receiver,
                    "`#[cached_query]` cannot be used on a method yet; make it a free function that takes what it needs from `self` as arguments (they become part of the key)",
                );
                ok = false;
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        let ident = match &*typed.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            other => {
                cx.error_spanned_by(
                    other,
                    "`#[cached_query]` needs a plain parameter name here, e.g. `user: UserKey`; destructure inside the body",
                );
                ok = false;
                continue;
            }
        };
        let ty = (*typed.ty).clone();
        if contains_impl_trait(&ty) {
            cx.error_spanned_by(
                &ty,
                "`#[cached_query]` cannot take an `impl Trait` argument: it keeps one cache per function; take a concrete type",
            );
            ok = false;
            continue;
        }
        let Some(marker) = marker(&typed.attrs, cx) else {
            ok = false;
            continue;
        };
        let role = match marker {
            Marker::Connection => match &ty {
                Type::Reference(r) if r.mutability.is_some() => Role::Connection(r.elem.clone()),
                other => {
                    cx.error_spanned_by(
                        other,
                        "the connection is taken as `&mut C` (diesel needs it mutable); a pool or other handle that is not the connection is marked `#[dbkit(skip)]`",
                    );
                    ok = false;
                    continue;
                }
            },
            Marker::Skip => Role::Skipped,
            Marker::None if is_connection_type(&ty) => match &ty {
                Type::Reference(r) => Role::Connection(r.elem.clone()),
                _ => unreachable!("a connection type is a `&mut` reference"),
            },
            Marker::None | Marker::Key => match key_role(&ty, matches!(marker, Marker::Key), cx) {
                Some(role) => role,
                None => {
                    ok = false;
                    continue;
                }
            },
        };
        if matches!(role, Role::Connection(_)) {
            if let Some(first) = connection {
                let mut err = syn::Error::new_spanned(
                    &typed.pat,
                    "`#[cached_query]` found a second connection parameter; pass one connection, or mark the other `#[dbkit(skip)]`",
                );
                err.combine(syn::Error::new(
                    first,
                    "the first connection parameter is here",
                ));
                cx.push(err);
                ok = false;
            }
            connection = Some(typed.pat.span());
        }
        params.push(Param { ident, role });
    }
    ok.then_some(params)
}

enum Marker {
    None,
    Connection,
    Skip,
    /// A `&mut` argument keyed by its value, its changes skipped on a hit.
    Key,
}

/// Reads `#[dbkit(conn)]` / `#[dbkit(skip)]` / `#[dbkit(key)]` on a parameter.
fn marker(attrs: &[syn::Attribute], cx: &mut Ctxt) -> Option<Marker> {
    let mut found = Marker::None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("dbkit")) {
        match attr.parse_args::<Ident>() {
            Ok(word) if word == "conn" => found = Marker::Connection,
            Ok(word) if word == "skip" => found = Marker::Skip,
            Ok(word) if word == "key" => found = Marker::Key,
            _ => {
                cx.error_spanned_by(
                    attr,
                    "expected `#[dbkit(conn)]` (this is the connection), `#[dbkit(skip)]` (this argument does not change the result) or `#[dbkit(key)]` (key this `&mut` argument by its value)",
                );
                return None;
            }
        }
    }
    Some(found)
}

fn key_role(ty: &Type, marked_key: bool, cx: &mut Ctxt) -> Option<Role> {
    if let Type::Reference(r) = ty {
        if r.mutability.is_some() && !marked_key {
            cx.error_spanned_by(
                ty,
                "`#[cached_query]` cannot tell what this `&mut` argument is: if it is the database connection, mark it `#[dbkit(conn)]`; otherwise a cache hit skips the function's body and leaves it unchanged, so take it by shared reference or by value, or mark it `#[dbkit(skip)]` (left out of the key) or `#[dbkit(key)]` (keyed by its value) to accept that",
            );
            return None;
        }
    }
    let (keyed_ty, passing) = match ty {
        Type::Reference(r) => ((*r.elem).clone(), Passing::Reference),
        other => (other.clone(), Passing::Value),
    };
    let mut borrowed = Borrowed::default();
    borrowed.visit_type(&keyed_ty);
    if let Some(what) = borrowed.found {
        cx.error_spanned_by(
            ty,
            format!(
                "this argument cannot be part of a cache key: it holds {what}, which the cache cannot keep; take owned data (e.g. `&[String]` rather than `&[&str]`), or mark it `#[dbkit(skip)]` if it does not change the result"
            ),
        );
        return None;
    }
    Some(Role::Key {
        keyed_ty: Box::new(keyed_ty),
        passing,
    })
}

/// Finds what would keep a key type from being stored: a borrow inside it.
#[derive(Default)]
struct Borrowed {
    found: Option<&'static str>,
}

impl<'ast> Visit<'ast> for Borrowed {
    fn visit_type_reference(&mut self, _: &'ast syn::TypeReference) {
        self.found.get_or_insert("a reference");
    }
    fn visit_lifetime(&mut self, _: &'ast syn::Lifetime) {
        self.found.get_or_insert("a lifetime");
    }
    fn visit_type_trait_object(&mut self, _: &'ast syn::TypeTraitObject) {
        self.found.get_or_insert("a trait object");
    }
    fn visit_type_infer(&mut self, _: &'ast syn::TypeInfer) {
        self.found.get_or_insert("an inferred type");
    }
    fn visit_type_ptr(&mut self, _: &'ast syn::TypePtr) {
        self.found.get_or_insert("a raw pointer");
    }
    fn visit_ident(&mut self, ident: &'ast Ident) {
        if ident == "Self" {
            self.found.get_or_insert("`Self`");
        }
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

fn analyse_output(output: &ReturnType, cx: &mut Ctxt) -> Option<Type> {
    let ty = match output {
        ReturnType::Default => {
            cx.push(syn::Error::new(
                Span::call_site(),
                "a `#[cached_query]` function must return the value to cache, e.g. `-> QueryResult<User>`",
            ));
            return None;
        }
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    if is_unit(&ty) {
        cx.error_spanned_by(&ty, "`()` has nothing to cache; return the value the query reads, e.g. `-> QueryResult<User>`");
        return None;
    }
    if contains_impl_trait(&ty) {
        cx.error_spanned_by(
            &ty,
            "a cached value cannot be `impl Trait`; return a concrete type that is `Clone`",
        );
        return None;
    }
    let mut borrowed = Borrowed::default();
    borrowed.visit_type(&ty);
    if let Some(what) = borrowed.found {
        cx.error_spanned_by(&ty, format!("a cached value must be owned, but this return type holds {what}; return owned data (`String`, `Vec<T>`)"));
        return None;
    }
    // `Result<(), E>` as written: nothing to cache. (Whether a type is a
    // `Result` is otherwise the type checker's business, aliases included.)
    if let Type::Path(path) = &ty {
        if let Some(last) = path.path.segments.last() {
            if last.ident == "Result" || last.ident == "QueryResult" {
                if let PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(GenericArgument::Type(ok)) = args.args.first() {
                        if is_unit(ok) {
                            cx.error_spanned_by(ok, "`Ok(())` has nothing to cache; return the value the query reads, e.g. `-> QueryResult<User>`");
                            return None;
                        }
                    }
                }
            }
        }
    }
    Some(ty)
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}
