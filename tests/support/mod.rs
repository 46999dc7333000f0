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

/// Starts `agent-auth … serve --listen 127.0.0.1:0` as `command` says (stdout and stderr piped)
/// and reads the line it prints first: the child, the address it listens on, and the rest of
/// its stdout.
pub fn spawn_serve(
    mut command: std::process::Command,
) -> (
    std::process::Child,
    String,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let address = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (child, address, stdout)
}
