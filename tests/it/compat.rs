//! An application written against 0.1's public paths still compiles, with deprecation warnings
//! only (see `tests/it/compat/app_0_1.rs`), and runs.
#![cfg(all(feature = "axum", feature = "sqlite", feature = "postgres"))]

#[test]
fn an_application_of_0_1_compiles_with_deprecation_warnings_only() {
    trybuild::TestCases::new().pass("tests/it/compat/app_0_1.rs");
}
