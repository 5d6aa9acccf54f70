//! Expansion snapshots of the happy paths: what users see in `cargo expand`.
//! `UPDATE_EXPAND=1 cargo test -p dbkit-macros` rewrites them.

use std::path::PathBuf;

use proc_macro2::TokenStream;

/// Compares `tokens`, pretty-printed, with `tests/expand/{name}.expanded.rs`.
pub(crate) fn assert_expansion(name: &str, tokens: TokenStream) {
    let file: syn::File = syn::parse2(tokens).expect("the expansion parses as Rust");
    let expanded = prettyplease::unparse(&file);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expand")
        .join(format!("{name}.expanded.rs"));
    if std::env::var_os("UPDATE_EXPAND").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &expanded).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {}; run with UPDATE_EXPAND=1", path.display()));
    assert_eq!(
        stored, expanded,
        "expansion of {name} changed; run with UPDATE_EXPAND=1 and review"
    );
}
