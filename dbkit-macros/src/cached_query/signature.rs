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
    /// The database connection: passed through, never keyed.
    Connection,
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

pub(crate) enum Output {
    /// A `Result` (or an alias named `...Result`): only `Ok` values are
    /// stored; `ok_is_option` when the `Ok` type is an `Option`.
    Result { ty: Type, ok_is_option: bool },
    /// An `Option`: stored as it is, `None` included unless opted out.
    Option { ty: Type },
    /// Any other value: stored as it is.
    Plain { ty: Type },
}

impl Output {
    pub(crate) fn ty(&self) -> &Type {
        match self {
            Output::Result { ty, .. } | Output::Option { ty } | Output::Plain { ty } => ty,
        }
    }
}

pub(crate) struct Signature {
    pub params: Vec<Param>,
    pub output: Output,
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
    let params = analyse_params(func, cx);
    let output = analyse_output(&func.sig.output, cx);
    if let (
        Some(
            Output::Result {
                ok_is_option: false,
                ..
            }
            | Output::Plain { .. },
        ),
        Some(opts),
    ) = (&output, options)
    {
        if let Some(span) = opts.skip_none {
            cx.push(syn::Error::new(
                span,
                "`cache_none = false` applies to functions returning `Option<T>` or `Result<Option<T>, E>`; remove it",
            ));
        }
    }
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
            Marker::Connection => Role::Connection,
            Marker::Skip => Role::Skipped,
            Marker::None if is_connection_type(&ty) => Role::Connection,
            Marker::None => match key_role(&ty, cx) {
                Some(role) => role,
                None => {
                    ok = false;
                    continue;
                }
            },
        };
        if matches!(role, Role::Connection) {
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
}

/// Reads `#[dbkit(conn)]` / `#[dbkit(skip)]` on a parameter.
fn marker(attrs: &[syn::Attribute], cx: &mut Ctxt) -> Option<Marker> {
    let mut found = Marker::None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("dbkit")) {
        match attr.parse_args::<Ident>() {
            Ok(word) if word == "conn" => found = Marker::Connection,
            Ok(word) if word == "skip" => found = Marker::Skip,
            _ => {
                cx.error_spanned_by(
                    attr,
                    "expected `#[dbkit(conn)]` (this is the connection) or `#[dbkit(skip)]` (this argument does not change the result)",
                );
                return None;
            }
        }
    }
    Some(found)
}

fn key_role(ty: &Type, cx: &mut Ctxt) -> Option<Role> {
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

fn analyse_output(output: &ReturnType, cx: &mut Ctxt) -> Option<Output> {
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
    let Type::Path(path) = &ty else {
        return Some(Output::Plain { ty });
    };
    let Some(last) = path.path.segments.last() else {
        return Some(Output::Plain { ty });
    };
    let name = last.ident.to_string();
    if name == "Option" {
        return Some(Output::Option { ty });
    }
    if !name.ends_with("Result") {
        return Some(Output::Plain { ty });
    }
    let ok_ty = match &last.arguments {
        PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    if let Some(ok) = ok_ty {
        if is_unit(ok) {
            cx.error_spanned_by(ok, "`Ok(())` has nothing to cache; return the value the query reads, e.g. `-> QueryResult<User>`");
            return None;
        }
    }
    let ok_is_option = ok_ty.is_some_and(|t| {
        matches!(t, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Option"))
    });
    Some(Output::Result { ty, ok_is_option })
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}
