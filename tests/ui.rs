//! Compile-time misuse (Contract 3): each file under `tests/ui/` is one
//! mistake, with the message dbkit must give in its `.stderr`.

#[test]
fn misuse_is_a_compile_error_on_the_offending_token() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
