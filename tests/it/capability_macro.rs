//! `capability!` refuses at compile time every name `RequireCapabilityLayer::try_new` refuses at
//! run time: a pattern or an invalid name would otherwise compile and answer 403 to every token.
#![cfg(feature = "axum")]

#[test]
fn capability_macro_checks_the_name_at_compile_time() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/it/ui/capability_name_ok.rs");
    cases.compile_fail("tests/it/ui/capability_pattern.rs");
    cases.compile_fail("tests/it/ui/capability_upper_case.rs");
}
