//! The `agent-auth` binary, run as a user would: every command on SQLite and on PostgreSQL,
//! the errors (one line, non-zero exit, nothing changed), `--help`, and `serve` end to end.
#![cfg(feature = "cli")]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

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
    assert!(all.contains("1 tokens"), "{all}");

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

#[test]
fn every_command_on_sqlite() {
    every_command(&Db::sqlite());
}

#[test]
fn every_command_on_postgres() {
    if let Some(db) = Db::postgres("every") {
        every_command(&db);
    }
}

#[test]
fn errors_are_one_line_and_change_nothing_on_sqlite() {
    errors_change_nothing(&Db::sqlite());
}

#[test]
fn errors_are_one_line_and_change_nothing_on_postgres() {
    if let Some(db) = Db::postgres("errors") {
        errors_change_nothing(&db);
    }
}

#[test]
fn an_unreachable_database_is_one_line_and_a_failure() {
    let missing_dir = Db {
        url: "sqlite:///nonexistent-dir/agent-auth.db".into(),
        _dir: None,
        drop_pg: None,
    };
    cli(&missing_dir, &["migrate"]).fails_with("store unavailable");
    // Any command but migrate, serve and `user add` refuses to create a database by mistake.
    let dir = tempfile::tempdir().unwrap();
    let typo = Db {
        url: format!("sqlite://{}", dir.path().join("tpyo.db").display()),
        _dir: None,
        drop_pg: None,
    };
    cli(&typo, &["agent", "list"]).fails_with("no database at");
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
        &["user", "disable"],
        &["user", "enable"],
        &["agent"],
        &["agent", "create"],
        &["agent", "list"],
        &["agent", "show"],
        &["agent", "disable"],
        &["agent", "enable"],
        &["agent", "delete"],
        &["token"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
        &["token", "revoke-all"],
        &["token", "rotate"],
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
    let mut child = Command::cargo_bin("agent-auth")
        .unwrap()
        .args([
            "--database-url",
            &db.url,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let address = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    (child, address, stdout)
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

fn serve_then_revoke(db: &Db) {
    seed(db);
    let (mut server, address, _stdout) = serve(db, &[]);
    let token = cli(db, &["token", "create", "writer", "--label", "e2e"]).ok();
    let token = token.stdout.lines().next().unwrap().to_owned();
    assert_eq!(get(&address, "/demo/me", &token), 200);
    assert_eq!(get(&address, "/demo/posts", &token), 200);
    let id = token_ids(db, "writer")[0].0.clone();
    cli(db, &["token", "revoke", "writer", &id]).ok();
    assert_eq!(get(&address, "/demo/me", &token), 401);
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

#[test]
fn serve_admits_a_cli_token_until_the_cli_revokes_it_on_sqlite() {
    serve_then_revoke(&Db::sqlite());
}

#[test]
fn serve_admits_a_cli_token_until_the_cli_revokes_it_on_postgres() {
    if let Some(db) = Db::postgres("serve") {
        serve_then_revoke(&db);
    }
}

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
