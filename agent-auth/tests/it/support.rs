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

/// The `node` binary for the tests that drive a real client (`AGENT_AUTH_TEST_NODE`): `None`
/// with a notice when unset, a failure when services are required.
pub fn node() -> Option<std::path::PathBuf> {
    match std::env::var_os("AGENT_AUTH_TEST_NODE") {
        Some(node) if !node.is_empty() => Some(node.into()),
        _ if services_required() => {
            panic!("AGENT_AUTH_TEST_NODE is not set but AGENT_AUTH_REQUIRE_SERVICES is")
        }
        _ => {
            skip_notice("Node (real OAuth and MCP clients)", "AGENT_AUTH_TEST_NODE");
            None
        }
    }
}

/// Runs `agent-auth args…` on the database `db` and returns what it printed; panics with its
/// error line if it failed.
pub fn cli(db: &str, args: &[&str]) -> String {
    use assert_cmd::cargo::CommandCargoExt;
    let output = std::process::Command::cargo_bin("agent-auth")
        .unwrap()
        .env("AGENT_AUTH_DATABASE_URL", db)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "agent-auth {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `serve --demo` on the database `db`, logging at TRACE: the child, its base URL, the demo
/// user's password, and the thread that collects its log (joined after the child is killed;
/// the log is read as it comes, or the server blocks on a full pipe).
pub fn serve_demo(
    db: &str,
) -> (
    std::process::Child,
    String,
    String,
    std::thread::JoinHandle<String>,
) {
    serve_demo_with(db, &[])
}

/// [`serve_demo`] with more environment variables.
pub fn serve_demo_with(
    db: &str,
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    String,
    String,
    std::thread::JoinHandle<String>,
) {
    use assert_cmd::cargo::CommandCargoExt;
    use std::io::{BufRead, Read};
    let mut serve = std::process::Command::cargo_bin("agent-auth").unwrap();
    serve.envs(env.iter().copied());
    serve
        .env("AGENT_AUTH_DATABASE_URL", db)
        .env("RUST_LOG", "trace")
        .args(["serve", "--listen", "127.0.0.1:0", "--demo"]);
    let (mut child, address, mut stdout) = spawn_serve(serve);
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        log
    });
    let mut seed = String::new();
    // The demo seed's lines: the demo user's password among them.
    for _ in 0..2 {
        stdout.read_line(&mut seed).unwrap();
    }
    let password = seed
        .split("demo user: demo / ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no demo password in {seed:?}"))
        .to_owned();
    // What it prints after is read too: a closed pipe would fail its next line.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (child, format!("http://{address}"), password, log)
}

/// Asserts that none of `secrets` (what a client saw: tokens, codes, verifiers) is in the
/// server's `log` or, in clear, in the database file `stored`.
pub fn assert_no_secret_kept(secrets: &[String], log: &str, stored: &[u8]) {
    for secret in secrets {
        assert!(secret.len() >= 20, "{secret}");
        assert!(!log.contains(secret.as_str()), "a secret in the server log");
        assert!(
            !stored
                .windows(secret.len())
                .any(|window| window == secret.as_bytes()),
            "a secret stored in clear"
        );
    }
}

/// `tests/oauth-client`, where the oauth4webapi scripts live, once `npm ci` has run there.
pub fn oauth_client_dir() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oauth-client");
    assert!(
        dir.join("node_modules/oauth4webapi").exists(),
        "run `npm ci` in {}",
        dir.display()
    );
    dir
}

/// What a Node client script left: the server's log, and the secrets the script saw.
pub struct ClientRun {
    pub log: String,
    pub secrets: Vec<String>,
}

/// Runs `node script` in `dir` with `envs` (and `SECRETS_OUT` in `work`) against the running
/// `serve`, then stops the server; asserts that the script succeeded and printed `ok <step>`
/// for each of `steps`, showing the server's log tail when it did not.
pub fn run_client(
    node: &std::path::Path,
    dir: &std::path::Path,
    script: &str,
    envs: &[(&str, String)],
    (mut serve, log): (std::process::Child, std::thread::JoinHandle<String>),
    work: &std::path::Path,
    steps: &[&str],
) -> ClientRun {
    let secrets_out = work.join("secrets.json");
    let run = std::process::Command::new(node)
        .current_dir(dir)
        .arg(script)
        .envs(envs.iter().map(|(name, value)| (name, value)))
        .env("SECRETS_OUT", &secrets_out)
        .output()
        .unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    let log = log.join().unwrap();
    let printed = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{script} failed:\n{printed}\n{}\n--- server log (tail) ---\n{}",
        String::from_utf8_lossy(&run.stderr),
        log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    for step in steps {
        assert!(
            printed.contains(&format!("ok {step}\n")),
            "{step}: {printed}"
        );
    }
    let secrets = serde_json::from_str(&std::fs::read_to_string(&secrets_out).unwrap()).unwrap();
    ClientRun { log, secrets }
}

/// The bytes of every file in `dir` whose name starts with `stem`: a SQLite database and its
/// journal, where a secret kept in clear would be.
pub fn stored(dir: &std::path::Path, stem: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with(stem))
        {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

/// The sign-in form as `GET /login` serves it: the pre-session cookie (`agent_auth_form=…`)
/// its token is bound to, and the token of its hidden `csrf` field. Every client that signs in
/// without a browser posts both with the credentials
/// ([`FormToken`](tower_agent_auth::server::FormToken)).
pub struct SignInForm {
    /// `agent_auth_form=…`, for the `Cookie` header.
    pub cookie: String,
    /// The hidden field's value.
    pub csrf: String,
}

impl SignInForm {
    /// `GET /login` from the server at `address` (`host:port`, or `http://host:port`).
    pub fn get(address: &str) -> Self {
        use std::io::{Read, Write};
        let address = address.strip_prefix("http://").unwrap_or(address);
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "GET /login HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut page = String::new();
        stream.read_to_string(&mut page).unwrap();
        let cookie = page
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("set-cookie")
                    .then(|| value.trim().split(';').next())
                    .flatten()
            })
            .find(|pair| pair.starts_with("agent_auth_form="))
            .unwrap_or_else(|| panic!("GET /login set no pre-session cookie: {page}"))
            .to_owned();
        let csrf = csrf_field(&page).unwrap_or_else(|| panic!("no token in the form: {page}"));
        Self { cookie, csrf }
    }

    /// The form's body: `fields` (user, password, return) and the token.
    pub fn body(&self, fields: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .append_pair("csrf", &self.csrf)
            .finish()
    }
}

/// The value of the first hidden `csrf` field of the page `html`.
pub fn csrf_field(html: &str) -> Option<String> {
    let value = html
        .split_once(r#"name="csrf" value=""#)?
        .1
        .split_once('"')?
        .0;
    Some(value.replace("&amp;", "&").replace("&quot;", "\""))
}

/// The token of the forms of the session `cookie` (`agent_auth_session=…`), as its pages carry
/// it: what a post of a signed-in form (`POST /logout`) sends in its `csrf` field.
pub fn session_form_token(cookie: &str) -> String {
    let secret = cookie.split_once('=').map_or(cookie, |(_, value)| value);
    tower_agent_auth::server::FormToken::for_secret(secret)
        .as_str()
        .to_owned()
}
