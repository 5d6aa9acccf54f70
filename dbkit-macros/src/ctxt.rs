//! Collects every error of one macro invocation, so a user with three
//! mistakes sees three messages (serde_derive's `Ctxt`).

use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

#[derive(Default)]
pub(crate) struct Ctxt {
    errors: Option<syn::Error>,
}

impl Ctxt {
    /// Records an error spanning `tokens`.
    pub(crate) fn error_spanned_by(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(all) => all.combine(error),
            None => self.errors = Some(error),
        }
    }

    /// The errors recorded, for an expansion that cannot go on; every path
    /// that gives up records one, so the fallback only guards that rule.
    pub(crate) fn into_error(self, attr: &str) -> syn::Error {
        self.errors.unwrap_or_else(|| {
            syn::Error::new(
                proc_macro2::Span::call_site(),
                format!("`#[{attr}]` could not be expanded"),
            )
        })
    }

    /// Whether no error was recorded.
    pub(crate) fn is_clean(&self) -> bool {
        self.errors.is_none()
    }
}

/// The user's item unchanged plus the errors, so the rest of their crate does
/// not drown in secondary "cannot find function" errors.
pub(crate) fn item_with_errors(item: impl ToTokens, errors: syn::Error) -> TokenStream {
    let mut out = item.into_token_stream();
    out.extend(errors.into_compile_error());
    out
}
