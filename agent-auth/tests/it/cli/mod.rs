//! The `agent-auth` binary, run as a user would: every command on SQLite and on PostgreSQL,
//! the errors (one line, non-zero exit, nothing changed), `--help`, and `serve` end to end.
//!
//! This file holds what the tests share (the database of a test, running the CLI, HTTP
//! helpers) and [`on_each_database!`], which makes a test per database of one body; the tests
//! are in a module per area.

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

mod approval;
mod commands;
mod delegation;
mod oauth;
mod provider;
mod schema;
mod serve;
mod users;

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

/// The login form's post as a browser sends it, after `GET /login`: `user` and `password` as
/// given (already URL-encoded), with the form's token and pre-session cookie.
fn login_request(address: &str, user: &str, password: &str) -> String {
    let form = crate::support::SignInForm::get(address);
    let body = format!("user={user}&password={password}&csrf={}", form.csrf);
    format!(
        "POST /login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        form.cookie,
        body.len()
    )
}

/// A POST of the login form; returns the status code.
fn login(address: &str, user: &str, password: &str) -> u16 {
    status_of(address, &login_request(address, user, password))
}

/// Signs in over HTTP; the session cookie (`agent_auth_session=…`).
fn session_cookie(address: &str, user: &str, password: &str) -> String {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(login_request(address, user, password).as_bytes())
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
