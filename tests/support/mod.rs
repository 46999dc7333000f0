//! What the tests needing a service (PostgreSQL, Redis) share: whether they must run, and the notice
//! when they skip; and the SQL stores' one migration suite ([`migrations`]).
#![allow(dead_code)]

pub mod migrations;

/// Whether tests needing a service must run (CI) or may skip.
pub fn services_required() -> bool {
    std::env::var_os("AGENT_AUTH_REQUIRE_SERVICES").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Says once per test binary that service-backed tests were skipped. Written to the stderr
/// handle itself: libtest hides `eprintln!` output of passing tests.
pub fn skip_notice(service: &str, variable: &str) {
    use std::io::Write;
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "notice: {service} tests skipped; set {variable} to run them \
             (AGENT_AUTH_REQUIRE_SERVICES=1 makes this a failure)"
        );
    });
}
