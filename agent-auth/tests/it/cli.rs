//! The `agent-auth` binary, run as a user would: every command on SQLite and on PostgreSQL,
//! the errors (one line, non-zero exit, nothing changed), `--help`, and `serve` end to end.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

use crate::support;

/// One test per database for each body: `name(PG)` (or `name = body(PG)`) makes the module
/// `name` with `on_sqlite` and `on_postgres`, each running `body(&Db)` (`body` defaults to
/// `name`) on a temporary SQLite file and on a fresh PostgreSQL database named after `PG`. The
/// PostgreSQL test skips with a notice when `AGENT_AUTH_TEST_POSTGRES_URL` is not set, and
/// fails then under `AGENT_AUTH_REQUIRE_SERVICES=1`. `, empty` first makes the SQLite file
/// exist, empty, as a new PostgreSQL database is.
macro_rules! on_each_database {
    ($test:ident($pg:literal) $(, $empty:ident)?) => {
        on_each_database! { $test = $test($pg) $(, $empty)? }
    };
    ($test:ident = $body:ident($pg:literal) $(, $empty:ident)?) => {
        mod $test {
            #[test]
            fn on_sqlite() {
                let db = super::Db::sqlite();
                $(let db = super::$empty(db);)?
                super::$body(&db);
            }

            #[test]
            fn on_postgres() {
                if let Some(db) = super::Db::postgres($pg) {
                    $(let db = super::$empty(db);)?
                    super::$body(&db);
                }
            }
        }
    };
}

/// A database for one test: a temporary SQLite file, or a fresh PostgreSQL database.
struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl Db {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cli.db").display());
        Self {
            url,
            _dir: Some(dir),
            drop_pg: None,
        }
    }

    /// `None` (with a notice) when PostgreSQL is not configured and not required.
    fn postgres(name: &str) -> Option<Self> {
        let Ok(base) = std::env::var("AGENT_AUTH_TEST_POSTGRES_URL") else {
            assert!(
                !support::services_required(),
                "AGENT_AUTH_TEST_POSTGRES_URL is required"
            );
            support::skip_notice("PostgreSQL", "AGENT_AUTH_TEST_POSTGRES_URL");
            return None;
        };
        let database = format!("agent_auth_cli_{name}_{}", std::process::id());
        let admin = base.clone();
        run_sql(&admin, &format!("DROP DATABASE IF EXISTS {database}"));
        run_sql(&admin, &format!("CREATE DATABASE {database}"));
        let (prefix, _) = base.rsplit_once('/').unwrap();
        Some(Self {
            url: format!("{prefix}/{database}"),
            _dir: None,
            drop_pg: Some((admin, database)),
        })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some((admin, database)) = &self.drop_pg {
            run_sql(
                admin,
                &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            );
        }
    }
}

fn run_sql(url: &str, sql: &str) {
    let url = url.to_owned();
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query(&sql).execute(&mut conn).await.unwrap();
        })
    })
    .join()
    .unwrap();
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|_| panic!("not JSON: {}", self.stdout))
    }

    /// A failure: non-zero exit, one line on stderr containing `expected`, nothing on stdout.
    fn fails_with(self, expected: &str) {
        assert_ne!(self.code, 0, "should fail: {}", self.stdout);
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "one line, got: {:?}",
            self.stderr
        );
        assert!(
            self.stderr.contains(expected),
            "{:?} does not mention {expected:?}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
    }
}

fn cli(db: &Db, args: &[&str]) -> Run {
    cli_with_stdin(db, args, "")
}

fn cli_with_stdin(db: &Db, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::cargo_bin("agent-auth")
        .unwrap()
        .env_remove("AGENT_AUTH_DATABASE_URL")
        .args(["--database-url", &db.url])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Users alice (posts:*) and bob, agent `writer` of alice.
fn seed(db: &Db) {
    cli(db, &["migrate"]).ok();
    cli_with_stdin(
        db,
        &[
            "user",
            "add",
            "alice",
            "--capabilities",
            "posts:*",
            "--password-stdin",
        ],
        "s3cret\n",
    )
    .ok();
    cli(db, &["user", "add", "bob"]).ok();
    cli(db, &["agent", "create", "writer", "--owner", "alice"]).ok();
}

fn token_ids(db: &Db, slug: &str) -> Vec<(String, Value)> {
    cli(db, &["--json", "token", "list", slug])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["revoked_at"].clone(),
            )
        })
        .collect()
}

fn every_command(db: &Db) {
    seed(db);
    let users = cli(db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users[0]["id"], "alice");
    assert_eq!(users[0]["password"], true);
    assert_eq!(users[1]["capabilities"], "*");
    cli(db, &["user", "disable", "bob"]).ok();
    cli(db, &["user", "enable", "bob"]).ok();
    cli_with_stdin(db, &["user", "passwd", "bob"], "bob's\n").ok();
    cli(
        db,
        &["user", "set-role", "bob", "--capabilities", "posts:read"],
    )
    .ok();
    let users = cli(db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users[1]["password"], true);
    assert_eq!(users[1]["capabilities"], serde_json::json!(["posts:read"]));
    cli(db, &["user", "set-role", "bob", "--unrestricted"]).ok();

    let shown = cli(db, &["--json", "agent", "show", "writer"]).ok().json();
    assert_eq!(shown["owner"], "alice");
    let listed = cli(db, &["agent", "list"]).ok().stdout;
    assert!(
        listed.starts_with("SLUG") && listed.contains("writer"),
        "{listed}"
    );

    let created = cli(
        db,
        &[
            "--json",
            "token",
            "create",
            "writer",
            "--label",
            "ci",
            "--expires-in",
            "30d",
            "--capabilities",
            "posts:read",
            "--max-operations",
            "5",
            "--task-id",
            "t-1",
            "--intent",
            "read posts",
        ],
    )
    .ok();
    assert!(created.stderr.contains("cannot be shown again"));
    let token = created.json();
    assert!(
        token["token"]
            .as_str()
            .unwrap()
            .starts_with("agent_writer_")
    );
    assert_eq!(token["info"]["max_operations"], 5);
    let human = cli(
        db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "laptop",
            "--expires-in",
            "3600",
        ],
    )
    .ok();
    assert!(
        human
            .stdout
            .lines()
            .next()
            .unwrap()
            .starts_with("agent_writer_")
    );
    let tokens = token_ids(db, "writer");
    assert_eq!(tokens.len(), 2);

    let rotated = cli(
        db,
        &[
            "--json",
            "credential",
            "rotate",
            "writer",
            &tokens[0].0,
            "--grace",
            "15m",
        ],
    )
    .ok()
    .json();
    assert_ne!(rotated["info"]["id"], tokens[0].0.as_str());
    cli(db, &["credential", "revoke", "writer", &tokens[1].0]).ok();
    cli(db, &["token", "revoke", "writer", &tokens[0].0]).ok();
    let after = token_ids(db, "writer");
    assert_eq!(after.len(), 3);
    assert!(
        after
            .iter()
            .filter(|(_, revoked)| !revoked.is_null())
            .count()
            == 2
    );
    let all = cli(db, &["token", "revoke-all", "writer"]).ok().stdout;
    assert_eq!(all, "1 token of writer revoked\n");

    cli(
        db,
        &[
            "identity",
            "create",
            "writer",
            "writer-thread-1",
            "--scopes",
            "ws:1",
        ],
    )
    .ok();
    let children = cli(db, &["--json", "child", "list", "writer"]).ok().json();
    assert_eq!(children[0]["slug"], "writer-thread-1");
    assert_eq!(children[0]["scopes"][0], "ws:1");
    cli(db, &["identity", "retire", "writer-thread-1"]).ok();
    assert_eq!(
        cli(db, &["--json", "identity", "list", "writer"])
            .ok()
            .json(),
        Value::Array(vec![])
    );

    cli(db, &["grant", "add", "writer", "bob", "operator"]).ok();
    let grants = cli(db, &["--json", "grant", "list", "writer"]).ok().json();
    assert_eq!(grants[0]["role"], "operator");
    // bob, an operator, may list but not issue.
    cli(db, &["token", "list", "writer", "--as", "bob"]).ok();
    cli(
        db,
        &["token", "create", "writer", "--label", "x", "--as", "bob"],
    )
    .fails_with("may not issue tokens");
    cli(db, &["grant", "remove", "writer", "bob"]).ok();

    cli(db, &["agent", "disable", "writer"]).ok();
    cli(db, &["agent", "enable", "writer"]).ok();
    let trail = cli(db, &["--json", "audit", "writer"]).ok().json();
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[0], "agent_created");
    for action in [
        "token_issued",
        "token_rotated",
        "token_revoked",
        "grant_changed",
        "agent_disabled",
        "agent_enabled",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    assert!(
        trail
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "denied" && e["actor"] == "bob"),
        "bob's refused attempt is in the trail"
    );
    let recent = cli(db, &["audit", "writer", "--since", "1h"]).ok().stdout;
    assert!(recent.starts_with("AT"), "{recent}");
    cli(db, &["agent", "delete", "writer"]).ok();
    cli(db, &["agent", "show", "writer"]).fails_with("unknown agent");
    cli(db, &["user", "delete", "bob"]).ok();
    let users = cli(db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
}

fn errors_change_nothing(db: &Db) {
    seed(db);
    cli(db, &["agent", "create", "other", "--owner", "bob"]).ok();
    cli(db, &["token", "create", "other", "--label", "theirs"]).ok();
    let foreign = token_ids(db, "other")[0].0.clone();
    let before = (
        cli(db, &["--json", "agent", "list"]).ok().stdout,
        cli(db, &["--json", "token", "list", "other"]).ok().stdout,
        cli(db, &["--json", "token", "list", "writer"]).ok().stdout,
    );

    cli(db, &["token", "create", "ghost", "--label", "x"]).fails_with("unknown agent \"ghost\"");
    cli(
        db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "x",
            "--expires-in",
            "15x",
        ],
    )
    .fails_with("invalid duration \"15x\"");
    cli(db, &["token", "revoke", "writer", &foreign]).fails_with("has no token");
    cli(db, &["agent", "create", "writer", "--owner", "bob"]).fails_with("already exists");
    cli(db, &["agent", "create", "Bad_Slug", "--owner", "bob"]).fails_with("invalid agent slug");
    cli(db, &["agent", "create", "orphan", "--owner", "nobody"]).fails_with("unknown user");
    cli(db, &["grant", "add", "writer", "bob", "emperor"]).fails_with("invalid role");
    cli(db, &["identity", "retire", "writer"]).fails_with("not a child identity");
    cli(db, &["agent"]).fails_with("subcommand");
    cli(db, &["agent", "frobnicate"]).fails_with("unrecognized subcommand");

    let after = (
        cli(db, &["--json", "agent", "list"]).ok().stdout,
        cli(db, &["--json", "token", "list", "other"]).ok().stdout,
        cli(db, &["--json", "token", "list", "writer"]).ok().stdout,
    );
    assert_eq!(before, after, "a failed command changed something");
}

on_each_database!(every_command("every"));

on_each_database!(errors_are_one_line_and_change_nothing = errors_change_nothing("errors"));

#[test]
fn an_unreachable_database_is_one_line_and_a_failure() {
    let missing_dir = Db {
        url: "sqlite:///nonexistent-dir/agent-auth.db".into(),
        _dir: None,
        drop_pg: None,
    };
    cli(&missing_dir, &["migrate"]).fails_with("store unavailable");
    // Any command but migrate and serve refuses to create a database by mistake.
    let dir = tempfile::tempdir().unwrap();
    let typo = Db {
        url: format!("sqlite://{}", dir.path().join("tpyo.db").display()),
        _dir: None,
        drop_pg: None,
    };
    cli(&typo, &["agent", "list"]).fails_with("no database at");
    cli(&typo, &["user", "add", "alice"]).fails_with("no database at");
    assert!(!dir.path().join("tpyo.db").exists());
    let closed_port = Db {
        url: "postgres://postgres@127.0.0.1:1/test".into(),
        _dir: None,
        drop_pg: None,
    };
    cli(&closed_port, &["agent", "list"]).fails_with("store unavailable");
}

/// Every command's `--help` succeeds and documents every argument and option.
#[test]
fn help_is_complete() {
    let commands: &[&[&str]] = &[
        &[],
        &["migrate"],
        &["user"],
        &["user", "add"],
        &["user", "list"],
        &["user", "passwd"],
        &["user", "set-role"],
        &["user", "delete"],
        &["user", "disable"],
        &["user", "enable"],
        &["agent"],
        &["agent", "create"],
        &["agent", "list"],
        &["agent", "show"],
        &["agent", "disable"],
        &["agent", "enable"],
        &["agent", "set-policy"],
        &["agent", "delete"],
        &["token"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
        &["token", "revoke-all"],
        &["token", "rotate"],
        &["token", "delegate"],
        &["token", "show"],
        &["task"],
        &["task", "complete"],
        &["child"],
        &["child", "create"],
        &["child", "list"],
        &["child", "retire"],
        // The other words for the same things stay as aliases.
        &["identity", "create"],
        &["credential", "rotate"],
        &["credential", "revoke"],
        &["grant"],
        &["grant", "add"],
        &["grant", "remove"],
        &["grant", "list"],
        &["audit"],
        &["serve"],
    ];
    for command in commands {
        let output = Command::cargo_bin("agent-auth")
            .unwrap()
            .args(*command)
            .arg("--help")
            .output()
            .unwrap();
        assert!(output.status.success(), "{command:?} --help failed");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("Usage: agent-auth"), "{command:?}: {help}");
        // Every entry of the Commands/Arguments/Options lists has a description beside it.
        let lines: Vec<&str> = help.lines().collect();
        let mut in_list = false;
        for (n, line) in lines.iter().enumerate() {
            if line.ends_with(':') && !line.starts_with(' ') {
                in_list = matches!(*line, "Commands:" | "Arguments:" | "Options:");
                continue;
            }
            let entry = line.trim_start();
            let indent = line.len() - entry.len();
            if in_list && !entry.is_empty() && indent < 8 {
                // The description is beside the entry, or on the next, deeper line.
                let beside = entry
                    .split_once("  ")
                    .is_some_and(|(_, d)| !d.trim().is_empty());
                let below = lines.get(n + 1).is_some_and(|next| {
                    let text = next.trim_start();
                    !text.is_empty() && next.len() - text.len() > indent
                });
                assert!(beside || below, "{command:?}: undocumented {entry:?}");
            }
        }
    }
}

/// Starts `serve` (with `extra` arguments) on a free loopback port; returns the child, the base
/// address and the rest of its stdout.
fn serve(db: &Db, extra: &[&str]) -> (Child, String, BufReader<std::process::ChildStdout>) {
    let mut command = Command::cargo_bin("agent-auth").unwrap();
    command
        .args([
            "--database-url",
            &db.url,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra);
    support::spawn_serve(command)
}

/// A GET over a plain TCP connection; returns the status code.
fn get(address: &str, path: &str, token: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// Polls `path` with `token` until it answers `want`: `serve` keeps verdicts in memory and
/// obeys a change made by another process within its bound (`--cache-bound`, 1 s), not at
/// once. Fails if the old answer (200) still comes past the bound (and a little, for a loaded
/// machine), or another answer comes.
fn within_the_bound(address: &str, path: &str, token: &str, want: u16) {
    changed_within_the_bound(address, path, token, 200, want);
}

/// [`within_the_bound`] from another answer than 200 (a widening: 403 becomes 200).
fn changed_within_the_bound(address: &str, path: &str, token: &str, was: u16, want: u16) {
    let changed = std::time::Instant::now();
    loop {
        match get(address, path, token) {
            status if status == want => return,
            status
                if status == was && changed.elapsed() < std::time::Duration::from_millis(1500) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => panic!(
                "{other} {:?} after the change, not {want}",
                changed.elapsed()
            ),
        }
    }
}

fn refused_within_the_bound(address: &str, path: &str, token: &str) {
    within_the_bound(address, path, token, 401);
}

/// A GET's status and body.
fn get_body(address: &str, path: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

#[test]
fn serve_answers_liveness_and_readiness_without_a_credential() {
    let db = Db::sqlite();
    seed(&db);
    let (mut server, address, _stdout) = serve(&db, &[]);
    assert_eq!(get_body(&address, "/healthz"), (200, "ok\n".to_owned()));
    let (status, body) = get_body(&address, "/readyz");
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["cache"]["channel_up"], true);
    assert!(ready.get("redis").is_none(), "no Redis configured: {ready}");
    let _ = server.kill();
    let _ = server.wait();

    let (mut server, address, _stdout) = serve(&db, &["--no-cache"]);
    let (status, body) = get_body(&address, "/readyz");
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        ready["cache"],
        Value::Null,
        "--no-cache keeps no cache: {ready}"
    );
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn serve_answers_503_readiness_when_redis_cannot_be_reached() {
    let db = Db::sqlite();
    seed(&db);
    // Nothing listens on port 1: Redis is configured but down.
    let (mut server, address, _stdout) = serve(&db, &["--redis-url", "redis://127.0.0.1:1"]);
    let (status, body) = get_body(&address, "/readyz");
    assert_eq!(status, 503, "{body}");
    let ready: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["redis"], "unreachable");
    assert_eq!(ready["database"], "ok");
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn serve_refuses_bad_cache_redis_and_rate_limit_flags_in_one_line() {
    let db = Db::sqlite();
    seed(&db);
    for (flags, named) in [
        (&["--cache-bound", "0"][..], "--cache-bound"),
        (&["--cache-bound", "soon"], "--cache-bound"),
        (&["--rate-limit-per-token", "abc"], "--rate-limit-per-token"),
        (
            &["--rate-limit-per-token", "5/0s"],
            "the window must be more than 0",
        ),
        (
            &["--rate-limit-per-agent", "x/1s"],
            "is not a number of requests",
        ),
        (
            &["--rate-limit-per-agent-for", "robot=1/1s"],
            "\"robot\" is not an agent type",
        ),
        (&["--redis-url", "nonsense"], "--redis-url"),
        (
            &["--audit-coalesce-requests", "x"],
            "--audit-coalesce-requests",
        ),
    ] {
        let args: Vec<&str> = ["serve", "--listen", "127.0.0.1:0"]
            .into_iter()
            .chain(flags.iter().copied())
            .collect();
        cli(&db, &args).fails_with(named);
    }
}

/// A rate limit of 2 per minute per token: the third request is 429 with Retry-After, and
/// is recorded in the audit trail as `rate_limited`.
#[test]
fn serve_rate_limits_a_token_and_audits_it() {
    let db = Db::sqlite();
    seed(&db);
    let (mut server, address, _stdout) = serve(&db, &["--rate-limit-per-token", "2/1m"]);
    let token = cli(&db, &["token", "create", "writer", "--label", "limited"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    assert_eq!(get(&address, "/demo/me", &token), 200);
    assert_eq!(get(&address, "/demo/me", &token), 200);
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /demo/me HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: "),
        "{response}"
    );
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        assert!(server.wait().unwrap().success());
        let trail = cli(&db, &["--json", "audit", "writer"]).ok().json();
        assert!(
            trail
                .as_array()
                .unwrap()
                .iter()
                .any(|event| event["action"] == "rate_limited"),
            "{trail}"
        );
    }
    let _ = server.kill();
}

fn serve_then_revoke(db: &Db) {
    seed(db);
    let (mut server, address, _stdout) = serve(db, &[]);
    let token = cli(db, &["token", "create", "writer", "--label", "e2e"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    assert_eq!(get(&address, "/demo/me", &token), 200);
    assert_eq!(get(&address, "/demo/posts", &token), 200);
    let id = token_ids(db, "writer")[0].0.clone();
    cli(db, &["token", "revoke", "writer", &id]).ok();
    refused_within_the_bound(&address, "/demo/me", &token);
    // A graceful stop flushes the audit trail: the refusal is in it.
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        assert!(server.wait().unwrap().success());
        let trail = cli(db, &["--json", "audit", "writer"]).ok().json();
        let last = trail.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["action"], "token_refused");
        assert_eq!(last["reason"], "revoked");
        let mut logs = String::new();
        server
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut logs)
            .unwrap();
        assert!(logs.contains("/demo/me"), "{logs}");
        assert!(!logs.contains(&token), "the server logged a token");
    }
    let _ = server.kill();
}

on_each_database!(serve_admits_a_cli_token_until_the_cli_revokes_it = serve_then_revoke("serve"));

/// `serve --demo` seeds a user and an agent once, and mints a working token on every run.
#[test]
fn serve_demo_seeds_once_and_prints_a_working_token() {
    let db = Db::sqlite();
    let start = || {
        let (child, address, mut stdout) = serve(&db, &["--demo"]);
        let mut out = String::new();
        while !out.contains("/demo/posts    # 403") {
            assert!(stdout.read_line(&mut out).unwrap() > 0, "{out}");
        }
        (child, address, out)
    };
    let token_in = |out: &str| {
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with("agent_demo-bot_"))
            .unwrap()
            .to_owned()
    };
    let (mut first, address, out) = start();
    assert!(out.contains("demo user: demo / "), "{out}");
    let token = token_in(&out);
    assert_eq!(get(&address, "/demo/posts", &token), 200);
    let _ = first.kill();
    let _ = first.wait();

    let (mut second, _, again) = start();
    assert!(!again.contains("demo user:"), "the password is shown once");
    assert_ne!(token_in(&again), token);
    let _ = second.kill();
    let _ = second.wait();
}

/// Runs `sql` on the test's database (SQLite or PostgreSQL); returns the first column of the
/// first row of the last statement, if it is a number.
fn db_sql(db: &Db, sql: &str) -> Option<i64> {
    let url = db.url.clone();
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use sqlx::{Connection, Row};
            if url.starts_with("postgres") {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                let rows = sqlx::raw_sql(&sql).fetch_all(&mut conn).await.unwrap();
                rows.first().and_then(|r| r.try_get::<i64, _>(0).ok())
            } else {
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                let rows = sqlx::raw_sql(&sql).fetch_all(&mut conn).await.unwrap();
                rows.first().and_then(|r| r.try_get::<i64, _>(0).ok())
            }
        })
    })
    .join()
    .unwrap()
}

/// How many tables the database has, whoever made them.
fn table_count(db: &Db) -> i64 {
    let sql = if db.url.starts_with("postgres") {
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'"
    } else {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
    };
    db_sql(db, sql).unwrap()
}

/// A fresh database that exists but is empty: an empty SQLite file, or the new PostgreSQL
/// database as it is.
fn empty(db: Db) -> Db {
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        std::fs::File::create(path).unwrap();
    }
    db
}

/// A database whose schema is the library's first version (agents and tokens), as an earlier
/// build left it.
fn version_1(db: &Db) {
    use sha2::{Digest, Sha256};
    let v1 = if db.url.starts_with("postgres") {
        include_str!("../../../migrations/postgres/0001_agents_and_tokens.sql")
    } else {
        include_str!("../../../migrations/sqlite/0001_agents_and_tokens.sql")
    };
    let checksum = hex::encode(Sha256::digest(v1.as_bytes()));
    db_sql(
        db,
        &format!(
            "{v1};\nCREATE TABLE agent_auth_schema_migrations (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL);\n\
             INSERT INTO agent_auth_schema_migrations VALUES (1, 'agents and tokens', \
             '{checksum}', 0)"
        ),
    );
}

/// Only `migrate` (and `serve`) create or upgrade the schema: every other command on a
/// database without it, with an older or a newer one, fails in one line and changes nothing.
fn only_migrate_creates_the_schema(db: &Db) {
    let commands: &[&[&str]] = &[
        &["agent", "list"],
        &["user", "list"],
        &["user", "add", "alice"],
        &["token", "list", "writer"],
        &["--json", "audit", "writer"],
    ];
    for command in commands {
        let run = cli(db, command);
        assert!(
            run.stderr.contains("`agent-auth migrate`"),
            "{}",
            run.stderr
        );
        run.fails_with("error: no agent-auth schema in database ");
    }
    assert_eq!(table_count(db), 0, "a command created tables");

    version_1(db);
    let tables = table_count(db);
    let run = cli(db, &["agent", "list"]);
    assert!(
        run.stderr.contains("(version 1, this build's is "),
        "{}",
        run.stderr
    );
    run.fails_with("is older than this agent-auth");
    let run = cli(db, &["agent", "list"]);
    assert!(
        run.stderr
            .trim_end()
            .ends_with("); upgrade it with `agent-auth migrate`"),
        "{}",
        run.stderr
    );
    assert_eq!(table_count(db), tables, "a command upgraded the schema");

    cli(db, &["migrate"]).ok();
    assert_eq!(cli(db, &["agent", "list"]).ok().stdout, "(none)\n");
    db_sql(
        db,
        "INSERT INTO agent_auth_schema_migrations VALUES (99, 'future', 'x', 0)",
    );
    cli(db, &["agent", "list"]).fails_with("is newer than this agent-auth (version 99");
    cli(db, &["migrate"]).fails_with("newer than this build");
}

on_each_database!(only_migrate_creates_the_schema("schema"), empty);

/// The library's tables without the CLI's user table (an application created them): the CLI
/// says what is missing instead of failing on a query.
fn an_application_database_needs_the_user_table(db: &Db) {
    let url = db.url.clone();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use tower_agent_auth::store::{MemoryUserDirectory, PgStore, SqliteStore, StoreConfig};
            let config = StoreConfig::new(
                tower_agent_auth::token::TokenFormat::new("agent").unwrap(),
                MemoryUserDirectory::new(),
            );
            if url.starts_with("postgres") {
                PgStore::connect(&url, config).await.unwrap();
            } else {
                SqliteStore::open(&url, config).await.unwrap();
            }
        })
    })
    .join()
    .unwrap();
    cli(db, &["agent", "list"]).fails_with("no agent-auth user table in database");
    cli(db, &["migrate"]).ok();
    cli(db, &["user", "add", "alice"]).ok();
}

on_each_database!(an_application_database_needs_the_user_table("appdb"));

/// The database named in an error never shows the URL's password.
#[test]
fn errors_name_the_postgres_database_without_its_password() {
    let Some(db) = Db::postgres("password") else {
        return;
    };
    let (scheme, rest) = db.url.split_once("://").unwrap();
    let (user, host) = rest
        .split_once('@')
        .expect("a user in AGENT_AUTH_TEST_POSTGRES_URL");
    let with_password = Db {
        url: format!(
            "{scheme}://{}:hunter2@{host}",
            user.split(':').next().unwrap()
        ),
        _dir: None,
        drop_pg: None,
    };
    let run = cli(&with_password, &["agent", "list"]);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    run.fails_with(&format!("no agent-auth schema in database {scheme}://"));
}

/// clap's errors stay on one line and keep what they say: the missing option, the suggestion.
#[test]
fn argument_errors_keep_their_content_on_one_line() {
    let db = Db::sqlite();
    let run = cli(&db, &["agent", "create", "x3"]);
    assert_eq!(run.code, 2);
    run.fails_with(
        "error: the following required arguments were not provided: --owner <OWNER> (see --help)",
    );
    cli(&db, &["tokn", "list"]).fails_with(
        "error: unrecognized subcommand 'tokn'; a similar subcommand exists: 'token' (see --help)",
    );
    cli(&db, &["token", "create", "w", "--lable", "x"])
        .fails_with("unexpected argument '--lable' found; a similar argument exists: '--label'");
    cli(&db, &["user", "set-role", "bob"]).fails_with("--capabilities <A,B>");
    cli(
        &db,
        &[
            "user",
            "set-role",
            "bob",
            "--unrestricted",
            "--capabilities",
            "a",
        ],
    )
    .fails_with("cannot be used with");
    cli(&db, &["user"]).fails_with(
        "error: a subcommand is required: add, list, passwd, set-role, delete, disable, enable (see --help)",
    );
    cli(&db, &[]).fails_with("subcommands: migrate, user, agent, token");
}

/// `--help` never shows the database URL from the environment (it may hold a password), and
/// says which commands create a database.
#[test]
fn help_hides_the_database_url_and_tells_the_truth() {
    for command in [&["--help"][..], &["agent", "list", "--help"]] {
        let output = Command::cargo_bin("agent-auth")
            .unwrap()
            .env(
                "AGENT_AUTH_DATABASE_URL",
                "postgres://u:s3cret@db.example/app",
            )
            .args(command)
            .output()
            .unwrap();
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(!help.contains("s3cret"), "{command:?}: {help}");
        assert!(help.contains("[env: AGENT_AUTH_DATABASE_URL]"), "{help}");
        assert!(!help.contains("created if missing"), "{help}");
        assert!(help.contains("Only `migrate` and `serve` create"), "{help}");
    }
}

/// Output into a closed pipe (`| head`) ends the command quietly, not with a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let db = Db::sqlite();
    seed(&db);
    for _ in 0..3 {
        cli(&db, &["token", "create", "writer", "--label", "many"]).ok();
    }
    let commands: &[&[&str]] = &[
        &["token", "list", "writer"],
        &["--json", "token", "list", "writer"],
        &["agent", "show", "writer"],
        &["user", "list"],
        &["audit", "writer"],
        &["token", "create", "writer", "--label", "piped"],
    ];
    for command in commands {
        let mut child = Command::cargo_bin("agent-auth")
            .unwrap()
            .env_remove("AGENT_AUTH_DATABASE_URL")
            .args(["--database-url", &db.url])
            .args(*command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command has opened the database, let alone printed.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(0), "{command:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("error"),
            "{command:?}: {stderr}"
        );
    }
    // The token minted into the closed pipe exists (and is in the trail): nothing was cut short.
    assert_eq!(token_ids(&db, "writer").len(), 4);
}

/// An empty list (`--capabilities ''`) or an empty item (`a,,b`) is refused, not taken for
/// "nothing".
fn empty_lists_are_refused(db: &Db) {
    seed(db);
    let before = (
        cli(db, &["--json", "agent", "list"]).ok().stdout,
        cli(db, &["--json", "user", "list"]).ok().stdout,
    );
    cli(
        db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "x",
            "--capabilities",
            "",
        ],
    )
    .fails_with("--capabilities is empty");
    cli(
        db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "x",
            "--capabilities",
            "posts:read,,posts:write",
        ],
    )
    .fails_with("--capabilities \"posts:read,,posts:write\" has an empty item");
    cli(
        db,
        &["agent", "create", "other", "--owner", "bob", "--deny", " "],
    )
    .fails_with("--deny is empty");
    cli(
        db,
        &[
            "agent", "create", "other", "--owner", "bob", "--scopes", "a,",
        ],
    )
    .fails_with("--scopes \"a,\" has an empty item");
    cli(
        db,
        &["child", "create", "writer", "writer-t", "--modes", ",x"],
    )
    .fails_with("--modes \",x\" has an empty item");
    cli(db, &["user", "add", "carol", "--capabilities", ""]).fails_with("--capabilities is empty");
    cli(db, &["user", "set-role", "bob", "--capabilities", ""])
        .fails_with("--capabilities is empty");
    assert!(token_ids(db, "writer").is_empty());
    let after = (
        cli(db, &["--json", "agent", "list"]).ok().stdout,
        cli(db, &["--json", "user", "list"]).ok().stdout,
    );
    assert_eq!(before, after, "a refused list changed something");
}

#[test]
fn empty_lists_are_refused_on_sqlite() {
    empty_lists_are_refused(&Db::sqlite());
}

/// An invalid token prefix is named in one line, before the database is touched.
#[test]
fn an_invalid_token_prefix_is_refused() {
    let db = Db::sqlite();
    cli(&db, &["migrate", "--token-prefix", "Bad_"])
        .fails_with("--token-prefix \"Bad_\" (or AGENT_AUTH_TOKEN_PREFIX): invalid token prefix");
    assert!(!std::path::Path::new(db.url.trim_start_matches("sqlite://")).exists());
}

/// An application and the CLI share a database by using the same token prefix: a token the CLI
/// mints with the application's prefix is admitted by a server with that prefix; one minted with
/// another prefix is not its token at all.
#[test]
fn the_cli_and_a_server_share_a_database_with_one_prefix() {
    let db = Db::sqlite();
    seed(&db);
    let mint = |prefix: &str| {
        let run = cli(
            &db,
            &[
                "--token-prefix",
                prefix,
                "token",
                "create",
                "writer",
                "--label",
                prefix,
            ],
        )
        .ok();
        run.stdout.lines().next().unwrap().to_owned()
    };
    let ours = mint("acme");
    let other = mint("agent");
    assert!(ours.starts_with("acme_writer_"), "{ours}");
    let (mut server, address, _stdout) = serve(&db, &["--token-prefix", "acme"]);
    assert_eq!(get(&address, "/demo/me", &ours), 200);
    assert_eq!(get(&address, "/demo/me", &other), 401);
    let _ = server.kill();
    let _ = server.wait();
}

/// A POST of the login form; returns the status code.
fn login(address: &str, user: &str, password: &str) -> u16 {
    let body = format!("user={user}&password={password}");
    status_of(
        address,
        &format!(
            "POST /login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Signs in over HTTP; the session cookie (`agent_auth_session=…`).
fn session_cookie(address: &str, user: &str, password: &str) -> String {
    let body = format!("user={user}&password={password}");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: agent_auth_session="))
        .map(|rest| format!("agent_auth_session={}", rest.split(';').next().unwrap()))
        .unwrap_or_else(|| panic!("not signed in: {response:?}"))
}

/// The status of a raw HTTP/1.1 `request` to `address`.
fn status_of(address: &str, request: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// `user passwd` replaces the password the server checks (how a lost password is reset).
#[test]
fn user_passwd_replaces_the_password_the_server_checks() {
    let db = Db::sqlite();
    seed(&db);
    cli_with_stdin(&db, &["user", "passwd", "alice"], "n3w-pass\n").ok();
    cli_with_stdin(&db, &["user", "passwd", "nobody"], "x\n").fails_with("unknown user \"nobody\"");
    cli_with_stdin(&db, &["user", "passwd", "alice"], "\n")
        .fails_with("password on stdin is empty");
    let (mut server, address, _stdout) = serve(&db, &[]);
    assert_eq!(login(&address, "alice", "s3cret"), 401);
    assert_eq!(login(&address, "alice", "n3w-pass"), 303);
    let _ = server.kill();
    let _ = server.wait();
}

/// Users: a changed role narrows their agents, an unknown user is an error, and a user who owns
/// agents or holds grants is not deleted.
fn users_are_managed(db: &Db) {
    seed(db);
    for command in [
        &["user", "disable", "nobody"][..],
        &["user", "enable", "nobody"],
        &["user", "delete", "nobody"],
        &["user", "set-role", "nobody", "--unrestricted"],
    ] {
        cli(db, command).fails_with("unknown user \"nobody\"");
    }
    let token = cli(db, &["token", "create", "writer", "--label", "role"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    cli(
        db,
        &["user", "set-role", "alice", "--capabilities", "posts:read"],
    )
    .ok();
    let users = cli(db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users[0]["capabilities"], serde_json::json!(["posts:read"]));
    let (mut server, address, _stdout) = serve(db, &[]);
    assert_eq!(get(&address, "/demo/posts", &token), 200);
    cli(
        db,
        &[
            "user",
            "set-role",
            "alice",
            "--capabilities",
            "profile:read",
        ],
    )
    .ok();
    within_the_bound(&address, "/demo/posts", &token, 403);
    let _ = server.kill();
    let _ = server.wait();

    cli(db, &["user", "delete", "alice"]).fails_with("user alice owns 1 agent (writer)");
    cli(db, &["grant", "add", "writer", "bob", "viewer"]).ok();
    cli(db, &["user", "delete", "bob"]).fails_with("user bob has a role on 1 agent (writer)");
    assert_eq!(
        cli(db, &["--json", "user", "list"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    cli(db, &["grant", "remove", "writer", "bob"]).ok();
    cli(db, &["user", "delete", "bob"]).ok();
    cli(db, &["user", "delete", "bob"]).fails_with("unknown user \"bob\"");
}

on_each_database!(users_are_managed("users"));

/// Deleting an agent with child agents or live tokens needs `--yes`; counts are singular for
/// one; revoking twice says so; `--json token revoke-all` counts.
fn deleting_and_revoking_say_what_they_do(db: &Db) {
    seed(db);
    cli(db, &["token", "create", "writer", "--label", "a"]).ok();
    cli(db, &["child", "create", "writer", "writer-t1"]).ok();
    // Someone who may not delete it is told that first, and the attempt is in the trail.
    cli(db, &["agent", "delete", "writer", "--as", "bob"]).fails_with("may not manage");
    cli(db, &["agent", "delete", "writer"])
        .fails_with("writer has 1 child agent and 1 live token; pass --yes to delete it with them");
    cli(db, &["agent", "show", "writer"]).ok();
    cli(db, &["child", "create", "writer", "writer-t2"]).ok();
    cli(db, &["token", "create", "writer-t2", "--label", "b"]).ok();
    cli(db, &["agent", "delete", "writer"]).fails_with("2 child agents and 2 live tokens");

    let id = token_ids(db, "writer")[0].0.clone();
    let first = cli(db, &["token", "revoke", "writer", &id]).ok().stdout;
    assert_eq!(first, format!("token {id} of writer revoked\n"));
    let again = cli(db, &["token", "revoke", "writer", &id]).ok().stdout;
    assert!(
        again.starts_with(&format!("token {id} of writer was already revoked at 20")),
        "{again}"
    );
    let json = cli(db, &["--json", "token", "revoke", "writer", &id])
        .ok()
        .json();
    assert_eq!(json["already_revoked"], true);
    let revoked = cli(db, &["--json", "token", "revoke-all", "writer-t2"])
        .ok()
        .json();
    assert_eq!(revoked["revoked"], 1);
    let none = cli(db, &["token", "revoke-all", "writer-t2"]).ok().stdout;
    assert_eq!(none, "0 tokens of writer-t2 revoked\n");

    cli(db, &["agent", "delete", "writer"]).fails_with("writer has 2 child agents; pass --yes");
    cli(db, &["identity", "retire", "writer-t1"]).ok();
    cli(db, &["identity", "retire", "writer-t2"]).ok();
    // Only revoked tokens left: nothing live goes with it.
    cli(db, &["agent", "delete", "writer"]).ok();
    cli(db, &["agent", "create", "second", "--owner", "alice"]).ok();
    cli(db, &["token", "create", "second", "--label", "c"]).ok();
    cli(db, &["agent", "delete", "second", "--yes"]).ok();
    cli(db, &["agent", "show", "second"]).fails_with("unknown agent");
}

on_each_database!(deleting_and_revoking_say_what_they_do("delete"));

/// A URL of a database this build does not support is refused, not taken for a file name.
#[test]
fn other_database_schemes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "mysql://u:p@localhost/db",
        "mariadb://localhost/db",
        "redis://x",
    ] {
        let db = Db {
            url: url.into(),
            _dir: None,
            drop_pg: None,
        };
        let run = Command::cargo_bin("agent-auth")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("AGENT_AUTH_DATABASE_URL")
            .args(["--database-url", &db.url, "migrate"])
            .output()
            .unwrap();
        let run = Run {
            code: run.status.code().unwrap_or(-1),
            stdout: String::from_utf8(run.stdout).unwrap(),
            stderr: String::from_utf8(run.stderr).unwrap(),
        };
        assert!(run.stderr.contains("postgres://"), "{}", run.stderr);
        run.fails_with("unsupported database URL scheme");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a file was created"
    );
}

/// User ids are plain: no look-alike letters of another script, no invisible or bidi
/// characters, no spaces, and no second id differing only in case.
#[test]
fn user_ids_refuse_look_alikes_and_hidden_characters() {
    let db = Db::sqlite();
    seed(&db);
    for id in [
        "\u{430}lice", // Cyrillic а
        "alice\u{200b}",
        "\u{202e}ecila",
        "alice ",
        "ALICE",
        ".alice",
    ] {
        cli(&db, &["user", "add", id]).fails_with("user");
    }
    let users = cli(&db, &["--json", "user", "list"]).ok().json();
    assert_eq!(users.as_array().unwrap().len(), 2, "{users}");
    cli(&db, &["user", "add", "carol.o'hara"]).fails_with("A-Za-z0-9");
    cli(&db, &["user", "add", "carol@example.com"]).ok();
}

/// A locked table makes `serve` answer 503 within the database timeout, not hold the request
/// until the lock goes; the server answers normally once it does.
#[test]
fn a_locked_table_answers_503_within_the_database_timeout() {
    let Some(db) = Db::postgres("locked") else {
        return;
    };
    seed(&db);
    let token = cli(&db, &["token", "create", "writer", "--label", "lock"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    // Without the cache: a verdict in memory would answer without the locked table.
    let (mut server, address, _stdout) = serve(&db, &["--database-timeout", "1s", "--no-cache"]);
    assert_eq!(get(&address, "/demo/me", &token), 200);

    let (locked_tx, locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let url = db.url.clone();
    let locker = std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("LOCK TABLE agent_auth_tokens IN ACCESS EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .unwrap();
            locked_tx.send(()).unwrap();
            // Held until the request was answered, or 10 s: without a timeout the request
            // waits for this and the test fails instead of hanging.
            let _ = released.recv_timeout(std::time::Duration::from_secs(10));
            tx.rollback().await.unwrap();
        })
    });
    locked.recv().unwrap();
    let started = std::time::Instant::now();
    let status = get(&address, "/demo/me", &token);
    let waited = started.elapsed();
    let _ = release.send(());
    locker.join().unwrap();
    assert_eq!(status, 503);
    assert!(
        waited < std::time::Duration::from_secs(4),
        "waited {waited:?}"
    );
    assert_eq!(
        get(&address, "/demo/me", &token),
        200,
        "recovers with the lock"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// `agent set-policy` replaces an agent's policy for its next request, through the access rule
/// and into the audit trail.
#[test]
fn an_agents_policy_is_changed_for_its_next_request() {
    let db = Db::sqlite();
    seed(&db);
    let token = cli(&db, &["token", "create", "writer", "--label", "p"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    let (mut server, address, _stdout) = serve(&db, &[]);
    assert_eq!(get(&address, "/demo/posts", &token), 200);
    cli(
        &db,
        &[
            "agent",
            "set-policy",
            "writer",
            "--capabilities",
            "posts:read",
            "--as",
            "bob",
        ],
    )
    .fails_with("may not manage the agent");
    let changed = cli(
        &db,
        &[
            "--json",
            "agent",
            "set-policy",
            "writer",
            "--capabilities",
            "posts:write",
        ],
    )
    .ok()
    .json();
    assert_eq!(
        changed["policy"]["allow"],
        serde_json::json!(["posts:write"])
    );
    // Reading is no longer allowed.
    within_the_bound(&address, "/demo/posts", &token, 403);
    cli(
        &db,
        &[
            "token",
            "create",
            "writer",
            "--label",
            "r",
            "--capabilities",
            "posts:read",
        ],
    )
    .fails_with("outside the agent's policy");
    cli(&db, &["agent", "set-policy", "writer"]).fails_with("--capabilities");
    cli(&db, &["agent", "set-policy", "writer", "--unrestricted"]).ok();
    changed_within_the_bound(&address, "/demo/posts", &token, 403, 200);
    let trail = cli(&db, &["--json", "audit", "writer"]).ok().json();
    let changes: Vec<&Value> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "agent_policy_changed")
        .collect();
    assert_eq!(
        changes.len(),
        3,
        "two changes and one denied attempt: {trail}"
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// A NUL byte in a name or a path is bad input (401, 404 or 422), never "the store is
/// unavailable" — PostgreSQL cannot hold one, and its refusal is not an outage.
#[test]
fn a_nul_byte_is_bad_input_not_an_outage() {
    let Some(db) = Db::postgres("nul") else {
        return;
    };
    seed(&db);
    let (mut server, address, _stdout) = serve(&db, &[]);
    assert_eq!(login(&address, "alice%00", "s3cret"), 401);
    let cookie = session_cookie(&address, "alice", "s3cret");
    for (method, path) in [
        ("GET", "/api/agents/%00"),
        ("DELETE", "/api/agents/writer/tokens/%00"),
        ("DELETE", "/api/agents/writer/grants/%00"),
    ] {
        let status = status_of(
            &address,
            &format!(
                "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
            ),
        );
        assert!((400..500).contains(&status), "{method} {path}: {status}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// `audit --last N` shows the newest N events, oldest first, and says that there may be more.
#[test]
fn the_audit_trail_is_read_a_page_at_a_time() {
    let db = Db::sqlite();
    seed(&db);
    for label in ["a", "b", "c"] {
        cli(&db, &["token", "create", "writer", "--label", label]).ok();
    }
    let all = cli(&db, &["--json", "audit", "writer"]).ok().json();
    let all = all.as_array().unwrap().clone();
    let run = cli(&db, &["--json", "audit", "writer", "--last", "2"]).ok();
    assert_eq!(run.json().as_array().unwrap()[..], all[all.len() - 2..]);
    assert!(run.stderr.contains("the newest 2 events"), "{}", run.stderr);
}

/// Two `user add` of ids differing only in case, at once: one of them is refused (the check
/// before the insert could not see the other; the database's index does).
#[test]
fn concurrent_case_only_duplicates_are_refused() {
    let db = Db::sqlite();
    seed(&db);
    for n in 0..5 {
        let (upper, lower) = (format!("Carol{n}"), format!("carol{n}"));
        let url = db.url.clone();
        let add = move |id: String| {
            let url = url.clone();
            std::thread::spawn(move || {
                Command::cargo_bin("agent-auth")
                    .unwrap()
                    .args(["--database-url", &url, "user", "add", &id])
                    .output()
                    .unwrap()
                    .status
                    .success()
            })
        };
        let (a, b) = (add(upper), add(lower));
        let added = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(
            added.iter().filter(|ok| **ok).count(),
            1,
            "round {n}: {added:?}"
        );
    }
}

/// A password reset signs out whoever signed in with the old password: the session's stamp no
/// longer matches the user's.
#[test]
fn a_password_reset_ends_the_sessions_of_the_old_password() {
    let db = Db::sqlite();
    seed(&db);
    let (mut server, address, _stdout) = serve(&db, &[]);
    let cookie = session_cookie(&address, "alice", "s3cret");
    let me = || {
        status_of(
            &address,
            &format!(
                "GET /api/me HTTP/1.1\r\nHost: {address}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            ),
        )
    };
    assert_eq!(me(), 200);
    cli(
        &db,
        &["user", "set-role", "alice", "--capabilities", "posts:*"],
    )
    .ok();
    assert_eq!(me(), 200, "a role change keeps the session");
    cli_with_stdin(&db, &["user", "passwd", "alice"], "n3w-pass\n").ok();
    assert_eq!(me(), 401, "the old password's session is over");
    assert_eq!(login(&address, "alice", "n3w-pass"), 303);
    let _ = server.kill();
    let _ = server.wait();
}

/// A POST of a JSON `body` with a bearer token: the status, the head (lower-cased header
/// lines) and the body.
fn post_json(address: &str, path: &str, token: &str, body: &str) -> (u16, String, Value) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_lowercase(), body)
}

/// The value of header `name` (lower case) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
}

/// A supervised agent's payment through the real server waits for a person: refused with an
/// approval id, listed by the CLI with its details, approved there by an admin (not the owner),
/// admitted once, then asked for anew; the trail has every step in order.
fn a_supervised_agents_payment_waits_for_an_approval_given_on_the_cli(db: &Db) {
    cli(db, &["migrate"]).ok();
    for user in ["olga", "adam", "vera"] {
        cli(db, &["user", "add", user]).ok();
    }
    cli(
        db,
        &[
            "agent",
            "create",
            "payer",
            "--owner",
            "olga",
            "--type",
            "supervised",
        ],
    )
    .ok();
    cli(db, &["grant", "add", "payer", "adam", "admin"]).ok();
    cli(db, &["grant", "add", "payer", "vera", "operator"]).ok();
    let token = cli(db, &["token", "create", "payer", "--label", "e2e"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    let (mut server, address, _stdout) = serve(db, &[]);
    let payment = r#"{"amount": 50, "currency": "EUR", "to": "ACME"}"#;

    let (status, head, body) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "approval_required");
    assert_eq!(body["binding_message"], "Pay 50 EUR to ACME");
    let id = body["approval_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("apr_"), "{id}");
    assert_eq!(header(&head, "approval-id"), Some(id.as_str()));
    assert_eq!(
        header(&head, "www-authenticate"),
        Some(format!("bearer error=\"approval_required\", approval_id=\"{id}\"").as_str())
    );
    let (status, _, again) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(
        (status, again["approval_id"].as_str()),
        (403, Some(id.as_str())),
        "no duplicate"
    );

    let listed = cli(db, &["--json", "approval", "list", "--status", "pending"])
        .ok()
        .json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["agent"], "payer");
    assert_eq!(listed[0]["capability"], "payments:send");
    assert_eq!(listed[0]["details"]["amount"], 50);
    assert_eq!(listed[0]["details"]["to"], "ACME");
    let table = cli(db, &["approval", "list", "--agent", "payer"])
        .ok()
        .stdout;
    assert!(
        table.contains(&id) && table.contains("Pay 50 EUR to ACME"),
        "{table}"
    );

    cli(db, &["approval", "approve", &id, "--as", "vera"]).fails_with("may not decide approvals");
    let approved = cli(db, &["approval", "approve", &id, "--as", "adam"])
        .ok()
        .stdout;
    assert!(
        approved.contains(&format!("approval {id} approved: 1 use")),
        "{approved}"
    );

    let (status, _, paid) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(status, 201, "{paid}");
    assert_eq!(paid["paid"]["to"], "ACME");
    let (status, _, next) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(status, 403, "{next}");
    assert_eq!(next["error"], "approval_required");
    assert_ne!(
        next["approval_id"].as_str(),
        Some(id.as_str()),
        "spent: a new approval"
    );
    let second = next["approval_id"].as_str().unwrap().to_owned();
    let shown = cli(db, &["--json", "approval", "show", &second])
        .ok()
        .json();
    assert_eq!(
        (
            shown["status"].as_str(),
            shown["details"]["currency"].as_str()
        ),
        (Some("pending"), Some("EUR"))
    );
    // The task and orchestrator of the asking token are shown (none for this token).
    let fields = shown.as_object().unwrap();
    assert!(
        fields.contains_key("task_id") && fields.contains_key("orchestrator"),
        "{shown}"
    );
    let table = cli(db, &["approval", "show", &second]).ok().stdout;
    assert!(
        table.contains("\ntask_id:") && table.contains("\norchestrator:"),
        "{table}"
    );
    let denied = cli(db, &["approval", "deny", &second, "--as", "adam"])
        .ok()
        .stdout;
    assert!(
        denied.contains(&format!("approval {second} denied")),
        "{denied}"
    );
    let (status, _, refused) = post_json(&address, "/demo/payments", &token, payment);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("approval_denied"))
    );
    cli(db, &["approval", "approve", &second, "--as", "adam"]).fails_with("is denied, not pending");
    cli(db, &["approval", "deny", "apr_0000"]).fails_with("unknown approval");
    cli(db, &["approval", "list", "--status", "waiting"]).fails_with("invalid status");
    // A stranger learns nothing from an id: unknown, as for one that names none.
    cli(db, &["user", "add", "stan"]).ok();
    let hidden = cli(db, &["approval", "show", &id, "--as", "stan"]);
    assert!(!hidden.stderr.contains("payer"), "{}", hidden.stderr);
    hidden.fails_with("unknown approval");
    cli(db, &["approval", "revoke", &second, "--as", "adam"]).fails_with("not approved");
    cli(db, &["approval", "list", "--last", "1001"]).fails_with("at most 1000");
    // The example given lies within an approval's bounds (not 30d, 2w).
    let bad_window = cli(db, &["approval", "approve", &second, "--for", "xyz"]);
    assert!(!bad_window.stderr.contains("2w"), "{}", bad_window.stderr);
    bad_window.fails_with("12h or 1d (at most 1d)");
    let purged = cli(db, &["approval", "purge", "--older-than", "30d"]).ok();
    assert!(
        purged.stdout.contains("0 approvals purged"),
        "{}",
        purged.stdout
    );

    // A graceful stop flushes the server's audit events.
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        assert!(server.wait().unwrap().success());
        let trail = cli(db, &["--json", "audit", "payer"]).ok().json();
        let steps: Vec<(String, String)> = trail
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["action"].as_str().unwrap().starts_with("approval_") && e["outcome"] == "success"
            })
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["actor"].as_str().unwrap_or("-").to_owned(),
                )
            })
            .collect();
        let step = |action: &str, actor: &str| (action.to_owned(), actor.to_owned());
        assert_eq!(
            steps,
            [
                step("approval_requested", "olga"),
                step("approval_granted", "adam"),
                step("approval_used", "olga"),
                step("approval_requested", "olga"),
                step("approval_denied", "adam"),
            ]
        );
        assert!(
            trail
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == "approval_granted"
                    && e["outcome"] == "denied"
                    && e["actor"] == "vera"),
            "the refused attempt is recorded"
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}

on_each_database!(a_supervised_agents_payment_waits_for_an_approval_given_on_the_cli("approval"));

/// A GET with a bearer token: the status and the JSON body.
fn get_json(address: &str, path: &str, token: &str) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `agent-auth` with `AGENT_AUTH_TOKEN` set (the parent token of `token delegate`).
fn cli_with_token(db: &Db, args: &[&str], token: &str) -> Run {
    let output = Command::cargo_bin("agent-auth")
        .unwrap()
        .env_remove("AGENT_AUTH_DATABASE_URL")
        .env("AGENT_AUTH_TOKEN", token)
        .args(["--database-url", &db.url])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// An orchestrator's task token for a worker, the worker's delegation over
/// `POST /api/delegations` to a sub-agent, the sub-agent's requests through the real server
/// (its principal shows the chain and the task), a wider delegation refused by name, the task
/// completed on the CLI (both tokens refused), a subtree revoked with `--tree`, and the trail.
fn an_orchestrated_task_is_delegated_completed_and_audited(db: &Db) {
    cli(db, &["migrate"]).ok();
    cli(db, &["user", "add", "alice", "--capabilities", "posts:*"]).ok();
    cli(
        db,
        &[
            "user",
            "add",
            "carol",
            "--capabilities",
            "posts:read,posts:write",
        ],
    )
    .ok();
    let conductor = cli(
        db,
        &[
            "--json",
            "agent",
            "create",
            "conductor",
            "--owner",
            "alice",
            "--orchestrator",
        ],
    )
    .ok()
    .json();
    assert_eq!(conductor["is_orchestrator"], true, "{conductor}");
    cli(db, &["agent", "create", "worker", "--owner", "alice"]).ok();
    cli(db, &["agent", "create", "helper", "--owner", "alice"]).ok();
    let agent_id = |slug: &str| {
        cli(db, &["--json", "agent", "show", slug]).ok().json()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (conductor_id, worker_id) = (agent_id("conductor"), agent_id("worker"));
    // carol answers for the worker: task tokens are minted on behalf of its owner or a grantee.
    cli(db, &["grant", "add", "worker", "carol", "viewer"]).ok();

    // The orchestrator mints the worker's task token on behalf of carol.
    cli(
        db,
        &[
            "token",
            "create",
            "worker",
            "--label",
            "t",
            "--delegated-by",
            "carol",
        ],
    )
    .fails_with("--orchestrator");
    let task = cli(
        db,
        &[
            "--json",
            "token",
            "create",
            "worker",
            "--label",
            "launch",
            "--orchestrator",
            "conductor",
            "--delegated-by",
            "carol",
            "--task-id",
            "launch-1",
            "--environment",
            "staging",
            "--capabilities",
            "posts:read,posts:write",
            "--max-operations",
            "20",
        ],
    )
    .ok()
    .json();
    let worker_token = task["token"].as_str().unwrap().to_owned();
    let worker_token_id = task["info"]["id"].as_str().unwrap().to_owned();
    assert_eq!(task["info"]["orchestrator"], conductor_id.as_str());
    assert_eq!(task["info"]["delegated_by"], "carol");
    assert_eq!(task["info"]["environment"], "staging");
    cli(
        db,
        &[
            "token",
            "create",
            "worker",
            "--label",
            "wide",
            "--orchestrator",
            "conductor",
            "--delegated-by",
            "carol",
            "--capabilities",
            "posts:delete",
        ],
    )
    .fails_with("capabilities outside the orchestrator's policy or the delegating user's role: posts:delete");
    let listed = cli(db, &["token", "list", "worker"]).ok().stdout;
    assert!(
        listed.contains("conductor") && listed.contains("carol") && listed.contains("staging"),
        "{listed}"
    );

    let (mut server, address, _stdout) = serve(db, &[]);
    // The worker delegates, narrower, to the helper, with its own bearer token.
    let (status, head, child) = post_json(
        &address,
        "/api/delegations",
        &worker_token,
        r#"{"agent": "helper", "label": "sub", "capabilities": ["posts:read"], "max_operations": 3}"#,
    );
    assert_eq!(status, 201, "{child}");
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    assert_eq!(child["delegation_depth"], 1);
    assert_eq!(child["task_id"], "launch-1");
    let helper_token = child["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&address, "/demo/posts", &helper_token), 200);
    let (status, me) = get_json(&address, "/demo/me", &helper_token);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["agent"], "helper");
    assert_eq!(me["auth_source"], "delegated");
    assert_eq!(me["delegation_chain"], serde_json::json!(["worker"]));
    assert_eq!(me["task"]["task_id"], "launch-1");
    assert_eq!(me["task"]["environment"], "staging");
    assert_eq!(me["task"]["delegated_by"], "carol");
    assert_eq!(me["may_write_posts"], false, "narrowed");

    // Wider than the parent: refused, naming what exceeds; over HTTP and on the CLI.
    let (status, _, wider) = post_json(
        &address,
        "/api/delegations",
        &worker_token,
        r#"{"agent": "helper", "label": "wide", "capabilities": ["posts:delete"]}"#,
    );
    assert_eq!(status, 403, "{wider}");
    assert_eq!(wider["error"], "exceeds_parent");
    assert_eq!(
        wider["message"],
        "capabilities outside the parent token's ceiling: posts:delete"
    );
    let (status, _, unknown) = post_json(
        &address,
        "/api/delegations",
        &worker_token,
        r#"{"agent": "helper", "label": "x", "capabilites": ["posts:read"]}"#,
    );
    assert_eq!(status, 422, "unknown fields are refused: {unknown}");
    cli_with_token(
        db,
        &[
            "token",
            "delegate",
            "helper",
            "--label",
            "wide",
            "--capabilities",
            "posts:delete",
        ],
        &worker_token,
    )
    .fails_with("capabilities outside the parent token's ceiling: posts:delete");
    cli(db, &["token", "delegate", "helper", "--label", "x"]).fails_with("no parent token");
    let by_env = cli_with_token(
        db,
        &[
            "token",
            "delegate",
            "helper",
            "--label",
            "cli",
            "--expires-in",
            "15m",
        ],
        &worker_token,
    )
    .ok();
    assert!(by_env.stdout.contains("depth: 1"), "{}", by_env.stdout);
    assert!(by_env.stderr.contains("shown once"), "{}", by_env.stderr);
    let by_stdin = cli_with_stdin(
        db,
        &[
            "--json",
            "token",
            "delegate",
            "helper",
            "--label",
            "stdin",
            "--token-stdin",
        ],
        &format!("{worker_token}\n"),
    )
    .ok()
    .json();
    assert_eq!(
        by_stdin["info"]["delegation_parent"],
        worker_token_id.as_str()
    );
    let helper_tokens = cli(db, &["--json", "token", "list", "helper"]).ok().json();
    let sub = &helper_tokens.as_array().unwrap()[0];
    assert_eq!(
        (
            sub["delegation_depth"].as_u64(),
            sub["delegation_parent"].as_str(),
            sub["task_id"].as_str(),
            sub["environment"].as_str(),
            sub["delegated_by"].as_str()
        ),
        (
            Some(1),
            Some(worker_token_id.as_str()),
            Some("launch-1"),
            Some("staging"),
            Some("carol")
        )
    );
    let shown = cli(
        db,
        &["token", "show", "helper", sub["id"].as_str().unwrap()],
    )
    .ok()
    .stdout;
    assert!(
        shown.contains("depth: 1") && shown.contains("task: launch-1"),
        "{shown}"
    );

    // Completing the task ends the worker's token and everything delegated from it.
    let completed = cli(db, &["task", "complete", "launch-1"]).ok().stdout;
    assert!(
        completed.contains("task launch-1 completed: 4 tokens ended"),
        "{completed}"
    );
    refused_within_the_bound(&address, "/demo/posts", &worker_token);
    refused_within_the_bound(&address, "/demo/posts", &helper_token);
    // `token list` shows them ended, not live: the status column says why.
    let listed = cli(db, &["--json", "token", "list", "worker"]).ok().json();
    let statuses: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| s == "completed"),
        "{listed}"
    );
    let table = cli(db, &["token", "list", "worker"]).ok().stdout;
    assert!(
        table.contains("STATUS") && table.contains("completed") && !table.contains("live"),
        "{table}"
    );

    // Another chain, two levels deep; revoking its root with --tree refuses all of it.
    let root = cli(db, &["token", "create", "worker", "--label", "other"]).ok();
    let root_token = root.stdout.lines().next().unwrap().to_owned();
    let root_id = cli(db, &["--json", "token", "list", "worker"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["label"] == "other")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, first) = post_json(
        &address,
        "/api/delegations",
        &root_token,
        r#"{"agent": "helper", "label": "level-1", "expires_in": "10m"}"#,
    );
    assert_eq!(status, 201, "{first}");
    let first = first["token"].as_str().unwrap().to_owned();
    let (status, _, second) = post_json(
        &address,
        "/api/delegations",
        &first,
        r#"{"agent": "helper", "label": "level-2", "expires_in": 60}"#,
    );
    assert_eq!(
        (status, second["delegation_depth"].as_u64()),
        (201, Some(2)),
        "{second}"
    );
    let second = second["token"].as_str().unwrap().to_owned();
    assert_eq!(get(&address, "/demo/posts", &second), 200);
    let revoked = cli(db, &["token", "revoke", "worker", &root_id, "--tree"])
        .ok()
        .stdout;
    assert!(
        revoked.contains(&format!(
            "token {root_id} of worker revoked with 2 delegated tokens"
        )),
        "{revoked}"
    );
    for token in [&root_token, &first, &second] {
        refused_within_the_bound(&address, "/demo/posts", token);
    }

    // The trail: the delegations issued, the requests with their chain, the completion.
    #[cfg(unix)]
    {
        let _ = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status();
        assert!(server.wait().unwrap().success());
        let trail = cli(db, &["--json", "audit", "helper"]).ok().json();
        let trail = trail.as_array().unwrap();
        let chain = serde_json::json!([worker_id]);
        assert!(
            trail.iter().any(|e| e["action"] == "request"
                && e["outcome"] == "success"
                && e["delegation_chain"] == chain
                && e["task_id"] == "launch-1"),
            "a request with its chain: {trail:?}"
        );
        assert!(
            trail.iter().any(|e| e["action"] == "token_issued"
                && e["outcome"] == "success"
                && e["delegation_chain"] == chain
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(&worker_token_id))),
            "the delegation with its parent token: {trail:?}"
        );
        assert!(
            !trail
                .iter()
                .any(|e| e["action"] == "token_issued" && e["outcome"] == "denied"),
            "a refusal is on the parent's side, not the target's: {trail:?}"
        );
        let worker_trail = cli(db, &["--json", "audit", "worker"]).ok().json();
        let worker_trail = worker_trail.as_array().unwrap();
        assert!(
            worker_trail.iter().any(|e| e["action"] == "token_issued"
                && e["outcome"] == "denied"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("posts:delete") && d.contains("(target helper)"))),
            "the refused delegation, under the parent token's agent: {worker_trail:?}"
        );
        assert!(
            worker_trail.iter().any(|e| e["action"] == "task_completed"
                && e["actor"] == "alice"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("4 tokens ended"))),
            "{worker_trail:?}"
        );
        assert!(
            worker_trail.iter().any(|e| e["action"] == "token_revoked"
                && e["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains("with 2 delegated tokens"))),
            "{worker_trail:?}"
        );
        let table = cli(db, &["audit", "helper"]).ok().stdout;
        assert!(table.contains("GET /demo/posts 200"), "{table}");
    }
    let _ = server.kill();
    let _ = server.wait();
}

on_each_database!(an_orchestrated_task_is_delegated_completed_and_audited(
    "delegation"
));

/// The database as the previous release left it: the library's schema 10 and the user table's
/// version 2, with a user `bob`.
fn previous_release(db: &Db) {
    use sha2::{Digest, Sha256};
    let dir = if db.url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    // The library's migrations, and this package's own (the user table).
    let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = package.join("../migrations");
    let record = |table: &str, version: usize, text: &str| {
        format!(
            "INSERT INTO {table} VALUES ({version}, 'm', '{}', 0);\n",
            hex::encode(Sha256::digest(text.as_bytes()))
        )
    };
    let create = |table: &str| {
        format!(
            "CREATE TABLE {table} (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             checksum TEXT NOT NULL, applied_at BIGINT NOT NULL);\n"
        )
    };
    let mut sql = create("agent_auth_schema_migrations") + &create("agent_auth_server_migrations");
    let mut library: Vec<_> = std::fs::read_dir(root.join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    library.sort();
    for (n, file) in library.iter().take(10).enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        sql += &format!("{text};\n");
        sql += &record("agent_auth_schema_migrations", n + 1, &text);
    }
    for (n, file) in ["0001_users.sql", "0002_user_ids_unique_ignoring_case.sql"]
        .iter()
        .enumerate()
    {
        let text = std::fs::read_to_string(package.join("migrations").join(file)).unwrap();
        sql += &format!("{text};\n");
        sql += &record("agent_auth_server_migrations", n + 1, &text);
    }
    sql += "INSERT INTO agent_auth_users (id, capabilities, active, created_at) \
            VALUES ('bob', NULL, 1, 0)";
    db_sql(db, &sql);
}

/// Users deactivated, given another role or deleted through the CLI are logged in the change
/// feed (by the user table's triggers), as are agents disabled; a database of the previous
/// release is refused until migrated, and then logs them too.
fn user_changes_reach_the_change_feed(db: &Db) {
    previous_release(db);
    cli(db, &["user", "list"]).fails_with("(version 10, this build's is 11)");
    cli(db, &["migrate"]).ok();
    let logged = |kind: &str, id: &str| {
        db_sql(
            db,
            &format!(
                "SELECT COUNT(*) FROM agent_auth_changes WHERE kind = '{kind}' AND id = '{id}'"
            ),
        )
        .unwrap()
    };
    cli(db, &["user", "disable", "bob"]).ok();
    assert_eq!(logged("user", "bob"), 1);
    cli(
        db,
        &["user", "set-role", "bob", "--capabilities", "posts:read"],
    )
    .ok();
    assert_eq!(logged("user", "bob"), 2);
    cli(db, &["user", "add", "carol"]).ok();
    assert_eq!(logged("user", "carol"), 0, "adding narrows nothing");
    cli(db, &["user", "delete", "bob"]).ok();
    assert_eq!(logged("user", "bob"), 3);
    cli(db, &["agent", "create", "writer", "--owner", "carol"]).ok();
    cli(db, &["agent", "disable", "writer"]).ok();
    assert_eq!(
        db_sql(
            db,
            "SELECT COUNT(*) FROM agent_auth_changes WHERE kind = 'agent'"
        )
        .unwrap(),
        1
    );
    assert_eq!(
        db_sql(db, "SELECT MAX(epoch) FROM agent_auth_change_epoch").unwrap(),
        4,
        "one epoch per change"
    );
}

on_each_database!(user_changes_reach_the_change_feed("feed"), empty);
