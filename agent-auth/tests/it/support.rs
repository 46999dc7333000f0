//! What the tests share: whether services must be there, the notice when they skip, and a
//! started `serve`.

/// Whether tests needing a service must run (CI) or may skip.
pub fn services_required() -> bool {
    std::env::var_os("AGENT_AUTH_REQUIRE_SERVICES").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Says once per test binary and variable that the tests needing a service were skipped.
/// Written to the stderr handle itself: libtest hides `eprintln!` output of passing tests.
pub fn skip_notice(service: &str, variable: &str) {
    use std::io::Write;
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if said.iter().any(|v| v == variable) {
        return;
    }
    said.push(variable.to_owned());
    let _ = writeln!(
        std::io::stderr(),
        "notice: {service} tests skipped; set {variable} to run them \
         (AGENT_AUTH_REQUIRE_SERVICES=1 makes this a failure)"
    );
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
