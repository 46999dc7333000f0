//! `agent-auth serve` attacked over loopback, as in issue #11: sign-ins that would stall the
//! runtime, guessing passwords, half-open connections, cross-site posts, lifetimes past what a
//! clock holds, and the browser pages. Each test starts the real binary on a temporary SQLite
//! database set up with the CLI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;

const BIN: &str = env!("CARGO_BIN_EXE_agent-auth");
const PASSWORD: &str = "s3cret";

/// A temporary SQLite database with users alice (`posts:*`, password [`PASSWORD`]) and bob, and
/// an agent `writer` of alice.
struct Db {
    url: String,
    _dir: tempfile::TempDir,
}

impl Db {
    fn seeded() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Self {
            url: format!("sqlite://{}", dir.path().join("serve.db").display()),
            _dir: dir,
        };
        db.cli(&["migrate"]);
        db.cli_with_stdin(
            &[
                "user",
                "add",
                "alice",
                "--capabilities",
                "posts:*",
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        );
        db.cli(&["user", "add", "bob"]);
        db.cli(&["agent", "create", "writer", "--owner", "alice"]);
        db
    }

    fn cli(&self, args: &[&str]) -> String {
        self.cli_with_stdin(args, "")
    }

    /// Runs the CLI; panics unless it succeeds; returns its stdout.
    fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        let mut child = Command::new(BIN)
            .env_remove("AGENT_AUTH_DATABASE_URL")
            .args(["--database-url", &self.url])
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
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// A fresh token of `writer`.
    fn token(&self) -> String {
        let out = self.cli(&["token", "create", "writer", "--label", "test"]);
        out.lines().next().unwrap().trim().to_owned()
    }

    fn agent_status(&self, slug: &str) -> String {
        let agent: Value =
            serde_json::from_str(&self.cli(&["--json", "agent", "show", slug])).unwrap();
        agent["status"].as_str().unwrap().to_owned()
    }
}

/// A running `serve`; killed on drop. Its stderr (the log) is collected as it comes, so a
/// chatty server never blocks on a full pipe.
struct Server {
    child: Child,
    address: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(db: &Db, extra: &[&str]) -> Self {
        let mut command = Command::new(BIN);
        command
            .env_remove("AGENT_AUTH_DATABASE_URL")
            .env("RUST_LOG", "info")
            .args([
                "--database-url",
                &db.url,
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra);
        let (mut child, address, mut stdout) = support::spawn_serve(command);
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while stderr.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
        });
        Self {
            child,
            address,
            log,
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, and waits for a clean exit (the audit queue is flushed by then).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        assert!(self.child.wait().unwrap().success());
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        send(&self.address, None, method, path, headers, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {self:?}"))
    }

    /// The session cookie it sets, as a `Cookie` header value.
    fn cookie(&self) -> String {
        let set = self.header("set-cookie").expect("a cookie");
        set.split(';').next().unwrap().to_owned()
    }
}

/// A TCP connection to `address` from the loopback address `source`.
fn connect_from(source: &str, address: &str) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
        socket.connect(address.parse().unwrap()).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
}

/// One request on a fresh connection (`Connection: close`); the whole answer.
fn send(
    address: &str,
    source: Option<&str>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut stream = match source {
        Some(source) => connect_from(source, address),
        None => TcpStream::connect(address).unwrap(),
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {path}: the connection was dropped: {e}"));
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no answer: {raw:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {raw:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&rest[..size]);
        raw = &rest[size + 2..];
    }
    body
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// Signs in as a browser does: `GET /login`, then the form with its token and cookie.
fn sign_in(server: &Server, source: Option<&str>, user: &str, password: &str) -> Answer {
    let form = support::SignInForm::get(&server.address);
    sign_in_with(server, source, &form, &[], user, password)
}

/// A post of the sign-in `form` with `cookies` beside its own.
fn sign_in_with(
    server: &Server,
    source: Option<&str>,
    form: &support::SignInForm,
    cookies: &[&str],
    user: &str,
    password: &str,
) -> Answer {
    let cookie = [cookies, &[form.cookie.as_str()]].concat().join("; ");
    send(
        &server.address,
        source,
        "POST",
        "/login",
        &[FORM, ("Cookie", &cookie)],
        &form.body(&[("user", user), ("password", password)]),
    )
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Token requests on one keep-alive connection: `n` latencies.
fn token_latencies(address: &str, token: &str, n: usize) -> Vec<Duration> {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request = format!(
        "GET /demo/me HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        stream.write_all(request.as_bytes()).unwrap();
        // Status line, headers, then a body of Content-Length bytes.
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        samples.push(started.elapsed());
    }
    samples
}

/// Four loops of wrong passwords (each as fast as the server answers) do not slow down
/// token-authenticated requests: Argon2 runs on the blocking pool, half the cores at most.
#[test]
fn wrong_password_loops_do_not_slow_token_requests() {
    let db = Db::seeded();
    let token = db.token();
    // Limits high enough that every attempt reaches Argon2.
    let server = Server::start(&db, &["--login-attempts", "1000000"]);
    token_latencies(&server.address, &token, 50);
    let quiet = median(token_latencies(&server.address, &token, 400));

    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicUsize::new(0));
    // One sign-in form for every guess, as a script keeps its cookie.
    let form = Arc::new(support::SignInForm::get(&server.address));
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (stop, refused, address) = (stop.clone(), refused.clone(), server.address.clone());
            let form = form.clone();
            std::thread::spawn(move || {
                let body = form.body(&[("user", "alice"), ("password", "wrong")]);
                while !stop.load(Ordering::Relaxed) {
                    let answer = send(
                        &address,
                        None,
                        "POST",
                        "/login",
                        &[FORM, ("Cookie", &form.cookie)],
                        &body,
                    );
                    assert!(matches!(answer.status, 401 | 503), "{answer:?}");
                    if answer.status == 401 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // Let the loops fill the hashing pool first.
    while refused.load(Ordering::Relaxed) < 4 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = refused.load(Ordering::Relaxed);
    let loaded = median(token_latencies(&server.address, &token, 1500));
    let verified = refused.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.join().unwrap();
    }
    eprintln!(
        "p50 quiet {quiet:?}, with login loops {loaded:?}; {verified} wrong passwords meanwhile"
    );
    assert!(
        verified >= 8,
        "the login loops were not running: {verified}"
    );
    // Twice the quiet median, and half a millisecond for a shared 2-core machine's noise.
    let bound = quiet * 2 + Duration::from_micros(500);
    assert!(
        loaded <= bound,
        "p50 {loaded:?} with login loops, {quiet:?} without (bound {bound:?})"
    );
}

/// Over the limit a sign-in is a 429 page with `Retry-After`, logged and audited once; the real
/// user still signs in from another address at once, and from the same one after the wait.
#[test]
fn guessing_is_throttled_without_locking_the_user_out() {
    let db = Db::seeded();
    let server = Server::start(&db, &["--login-window", "4s", "--login-attempts", "2"]);
    let here = Some("127.0.0.1");
    for _ in 0..2 {
        assert_eq!(sign_in(&server, here, "alice", "guess").status, 401);
    }
    let throttled = sign_in(&server, here, "alice", "guess");
    assert_eq!(throttled.status, 429, "{throttled:?}");
    let wait: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    assert!(
        throttled.body.contains(r#"href="/login""#),
        "{}",
        throttled.body
    );
    // Even the right password waits: the limit is checked before the password.
    assert_eq!(sign_in(&server, here, "alice", PASSWORD).status, 429);

    let elsewhere = sign_in(&server, Some("127.0.0.2"), "alice", PASSWORD);
    assert_eq!(elsewhere.status, 303, "{elsewhere:?}");
    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(200));
    let later = sign_in(&server, here, "alice", PASSWORD);
    assert_eq!(later.status, 303, "{later:?}");
    assert_eq!(later.header("location"), Some("/"));

    let log = server.log();
    assert!(log.contains("sign-in throttled"), "{log}");
    assert!(!log.contains(PASSWORD), "the log shows a password");
    server.stop();
    let events = throttled_events(&db);
    assert_eq!(events.len(), 1, "once per limit and window: {events:?}");
    let (outcome, actor, detail) = &events[0];
    assert_eq!(outcome, "denied");
    assert_eq!(actor.as_deref(), Some("alice"));
    assert!(
        detail.as_deref().unwrap().contains("127.0.0.1"),
        "{detail:?}"
    );
}

/// A browser that signed in before keeps signing in while someone at its own address (a NAT,
/// an office) guesses its user's password: its device cookie has a limit of its own.
#[test]
fn a_signed_in_browser_is_not_locked_out_by_guesses_from_its_own_address() {
    let db = Db::seeded();
    let server = Server::start(&db, &["--login-window", "60s", "--login-attempts", "2"]);
    let here = Some("127.0.0.3");
    let first = sign_in(&server, here, "alice", PASSWORD);
    assert_eq!(first.status, 303, "{first:?}");
    let device = first
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.as_str())
        .find(|value| value.starts_with("agent_auth_device="))
        .expect("a device cookie");
    assert!(
        device.contains("HttpOnly") && device.contains("Path=/login"),
        "{device}"
    );
    let device = device.split(';').next().unwrap();
    for _ in 0..5 {
        sign_in(&server, here, "alice", "guess");
    }
    assert_eq!(sign_in(&server, here, "alice", PASSWORD).status, 429);
    let form = support::SignInForm::get(&server.address);
    let with_device = sign_in_with(&server, here, &form, &[device], "alice", PASSWORD);
    assert_eq!(with_device.status, 303, "{with_device:?}");
}

/// Behind a trusted proxy the limits count the client its `X-Forwarded-For` names; from any
/// other peer the header is ignored.
#[test]
fn a_trusted_proxy_names_the_client_the_limits_count() {
    let db = Db::seeded();
    let attempt = |server: &Server, client: &str| {
        let form = support::SignInForm::get(&server.address);
        let body = form.body(&[("user", "alice"), ("password", "guess")]);
        send(
            &server.address,
            Some("127.0.0.1"),
            "POST",
            "/login",
            &[FORM, ("Cookie", &form.cookie), ("X-Forwarded-For", client)],
            &body,
        )
        .status
    };
    let behind = Server::start(
        &db,
        &["--trusted-proxy", "127.0.0.1", "--login-attempts", "1"],
    );
    assert_eq!(attempt(&behind, "203.0.113.1"), 401);
    assert_eq!(attempt(&behind, "203.0.113.1"), 429);
    assert_eq!(
        attempt(&behind, "203.0.113.2"),
        401,
        "another client behind the proxy"
    );
    drop(behind);
    let direct = Server::start(&db, &["--login-attempts", "1"]);
    assert_eq!(attempt(&direct, "203.0.113.3"), 401);
    assert_eq!(
        attempt(&direct, "203.0.113.4"),
        429,
        "the header is not believed"
    );
}

/// The `sign_in_throttled` events of the trail: (outcome, actor, detail).
fn throttled_events(db: &Db) -> Vec<(String, Option<String>, Option<String>)> {
    let url = db.url.clone();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_as(
                "SELECT outcome, actor, detail FROM agent_auth_audit_events \
                 WHERE action = 'sign_in_throttled' ORDER BY seq",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap()
        })
    })
    .join()
    .unwrap()
}

/// Sends a partial request head and waits; returns how long until the server closed it.
fn half_open(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    stream
}

/// How long until `stream` is closed by the other side (EOF or reset), at most `limit`.
fn closed_within(mut stream: TcpStream, started: Instant, limit: Duration) -> Option<Duration> {
    let mut buffer = [0u8; 1024];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(started.elapsed()),
        }
    }
}

/// Half-open connections are closed after `--header-timeout`, and more of them than
/// `--max-connections` only delay a normal request until they are.
#[test]
fn half_open_connections_are_closed_and_do_not_lock_the_server() {
    let db = Db::seeded();
    let token = db.token();
    let server = Server::start(&db, &["--header-timeout", "1s", "--max-connections", "4"]);
    let started = Instant::now();
    let stalled: Vec<TcpStream> = (0..8).map(|_| half_open(&server.address)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let normal = send(
        &server.address,
        None,
        "GET",
        "/demo/me",
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    );
    assert_eq!(normal.status, 200, "{normal:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "it was not queued behind them: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // Two rounds of four, one header timeout each.
    for stream in stalled {
        let closed = closed_within(stream, started, Duration::from_secs(4));
        assert!(closed.is_some(), "a half-open connection stayed open 4 s");
    }
    // One alone is closed within the timeout and a little.
    let started = Instant::now();
    let one = half_open(&server.address);
    let closed = closed_within(one, started, Duration::from_secs(3)).expect("closed");
    assert!(
        closed >= Duration::from_millis(900),
        "closed before its timeout: {closed:?}"
    );
}

/// A request whose body stops coming is closed after `--idle-timeout`, not held forever.
#[test]
fn a_stalled_body_is_closed_after_the_idle_timeout() {
    let db = Db::seeded();
    let server = Server::start(&db, &["--idle-timeout", "1s"]);
    // With the form's cookie: a post without one is refused before its body is read.
    let form = support::SignInForm::get(&server.address);
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let started = Instant::now();
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: {}\r\nContent-Length: 100\r\n\r\nuser=al",
        server.address, form.cookie
    )
    .unwrap();
    let closed = closed_within(stream, started, Duration::from_secs(4)).expect("still open");
    assert!(
        closed >= Duration::from_millis(900),
        "closed before its timeout: {closed:?}"
    );
}

/// A body trickled a byte at a time (each byte resets the idle timeout) is cut off by
/// `--body-timeout`: 408, and the connection closed.
#[test]
fn a_trickled_body_is_cut_off_by_the_body_timeout() {
    let db = Db::seeded();
    let server = Server::start(&db, &["--idle-timeout", "5s", "--body-timeout", "2s"]);
    // With the form's cookie: a post without one is refused before its body is read.
    let form = support::SignInForm::get(&server.address);
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let started = Instant::now();
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nCookie: {}\r\nContent-Length: 100000\r\n\r\n",
        server.address, form.cookie
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..40 {
            if writer.write_all(b"u").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    let mut answer = Vec::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let _ = stream.read_to_end(&mut answer);
    let closed = started.elapsed();
    trickle.join().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(
        closed >= Duration::from_millis(1_900) && closed < Duration::from_secs(5),
        "closed after {closed:?}"
    );
}

/// At the file-descriptor limit the server logs, pauses between accepts, and serves again once
/// descriptors are free, instead of dying or spinning.
#[test]
fn at_the_descriptor_limit_the_server_backs_off_and_recovers() {
    let db = Db::seeded();
    let token = db.token();
    let prlimit = Command::new("prlimit").arg("--version").output();
    if !prlimit.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no prlimit");
        return;
    }
    // serve under a 64-descriptor limit, through prlimit.
    let mut child = Command::new("prlimit")
        .args(["--nofile=64:64", "--", BIN, "--database-url", &db.url])
        .args(["serve", "--listen", "127.0.0.1:0", "--header-timeout", "1s"])
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
        .unwrap()
        .to_owned();
    let stalled: Vec<TcpStream> = (0..100).map(|_| half_open(&address)).collect();
    std::thread::sleep(Duration::from_millis(1500));
    let alive = child.try_wait().unwrap().is_none();
    let answer = send(
        &address,
        None,
        "GET",
        "/demo/me",
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    );
    let _ = child.kill();
    let _ = child.wait();
    drop(stalled);
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(alive, "the server died at the limit: {log}");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(log.contains("cannot accept connections"), "{log}");
    let warnings = log.matches("cannot accept connections").count();
    assert!(
        warnings < 10,
        "one warning per streak, not per try: {warnings}"
    );
}

/// A cross-site post with the session cookie is refused (403 JSON) and changes nothing; the
/// same post from the server's own origin goes through. Cross-site sign-in and sign-out are
/// refused as pages; an agent's bearer request is not subject to the check.
#[test]
fn cross_site_posts_with_the_cookie_are_refused() {
    let db = Db::seeded();
    let token = db.token();
    let server = Server::start(&db, &[]);
    let cookie = sign_in(&server, None, "alice", PASSWORD).cookie();
    let own = format!("http://{}", server.address);
    let evil = "http://evil.localhost";

    let forged = server.request(
        "POST",
        "/api/agents/writer/disable",
        &[
            ("Cookie", &cookie),
            ("Origin", evil),
            ("Sec-Fetch-Site", "same-site"),
        ],
        "",
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(forged.json()["error"], "forbidden");
    assert_eq!(db.agent_status("writer"), "active");
    let sibling = server.request(
        "POST",
        "/api/agents/writer/disable",
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-site")],
        "",
    );
    assert_eq!(sibling.status, 403, "Sec-Fetch-Site alone: {sibling:?}");
    assert_eq!(db.agent_status("writer"), "active");

    // With their forms' tokens: refused for their origin alone.
    let forged_logout = server.request(
        "POST",
        "/logout",
        &[("Cookie", &cookie), ("Origin", evil), FORM],
        &format!("csrf={}", support::session_form_token(&cookie)),
    );
    assert_eq!(forged_logout.status, 403);
    assert!(
        forged_logout.body.contains("<h1>Refused</h1>"),
        "a page: {}",
        forged_logout.body
    );
    let form = support::SignInForm::get(&server.address);
    let forged_login = server.request(
        "POST",
        "/login",
        &[("Origin", evil), ("Cookie", &form.cookie), FORM],
        &form.body(&[("user", "alice"), ("password", PASSWORD)]),
    );
    assert_eq!(forged_login.status, 403);
    assert!(forged_login.header("set-cookie").is_none());

    // A bearer token from a browser app elsewhere: no cookie, no CSRF.
    let bearer = server.request(
        "POST",
        "/demo/posts",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Origin", evil),
        ],
        "",
    );
    assert_eq!(bearer.status, 201, "{bearer:?}");

    let genuine = server.request(
        "POST",
        "/api/agents/writer/disable",
        &[
            ("Cookie", &cookie),
            ("Origin", &own),
            ("Sec-Fetch-Site", "same-origin"),
        ],
        "",
    );
    assert_eq!(genuine.status, 200, "{genuine:?}");
    assert_eq!(db.agent_status("writer"), "disabled");
}

/// Lifetimes too long for any clock are 422 JSON, not a panic and a dropped connection.
#[test]
fn lifetimes_past_any_clock_are_422() {
    let db = Db::seeded();
    let server = Server::start(&db, &[]);
    let cookie = sign_in(&server, None, "alice", PASSWORD).cookie();
    for (n, seconds) in [
        "9223372036854775807",
        "-9223372036854775808",
        "1000000000000",
    ]
    .iter()
    .enumerate()
    {
        let agent = server.request(
            "POST",
            "/api/agents",
            &[("Cookie", &cookie), JSON],
            &format!(r#"{{"slug": "long-{n}", "expires_in_seconds": {seconds}}}"#),
        );
        assert_eq!(agent.status, 422, "agent, {seconds}: {agent:?}");
        assert_eq!(agent.json()["error"], "invalid");
        let token = server.request(
            "POST",
            "/api/agents/writer/tokens",
            &[("Cookie", &cookie), JSON],
            &format!(r#"{{"label": "long", "expires_in_seconds": {seconds}}}"#),
        );
        assert_eq!(token.status, 422, "token, {seconds}: {token:?}");
    }
}

/// The browser side: `/` redirects to the sign-in form or shows who you are, your agents and a
/// sign-out button; errors are pages with a way back; `GET /logout` is a page; a form's
/// sign-out answers 303 to `/login`. (That what users typed is escaped is tested with the
/// library's routers in `tests/server.rs`: the reference server's user ids cannot hold markup.)
#[test]
fn the_browser_routes_are_pages() {
    let db = Db::seeded();
    db.cli_with_stdin(
        &["user", "add", "eve", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    let server = Server::start(&db, &[]);

    let anonymous = server.request("GET", "/", &[], "");
    assert_eq!(
        (anonymous.status, anonymous.header("location")),
        (303, Some("/login?return=%2F"))
    );

    let wrong = sign_in(&server, None, "alice", "nope");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(wrong.body.contains(r#"href="/login""#), "{}", wrong.body);

    let signed_in = sign_in(&server, None, "alice", PASSWORD);
    assert_eq!(
        (signed_in.status, signed_in.header("location")),
        (303, Some("/"))
    );
    let cookie = signed_in.cookie();
    let home = server.request("GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(home.status, 200, "{home:?}");
    assert!(
        home.body.contains("alice") && home.body.contains("writer"),
        "{}",
        home.body
    );
    assert!(
        home.body.contains(r#"method="post" action="/logout">"#),
        "{}",
        home.body
    );

    let eve = sign_in(&server, None, "eve", PASSWORD).cookie();
    let home = server.request("GET", "/", &[("Cookie", &eve)], "");
    assert!(home.body.contains("eve"), "{}", home.body);
    assert!(
        !home.body.contains("writer"),
        "eve sees alice's agent: {}",
        home.body
    );

    let page = server.request("GET", "/logout", &[], "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"action="/logout""#));

    let token = format!("csrf={}", support::session_form_token(&cookie));
    let out = server.request("POST", "/logout", &[("Cookie", &cookie), FORM], &token);
    assert_eq!((out.status, out.header("location")), (303, Some("/login")));
    let after = server.request("GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(
        (after.status, after.header("location")),
        (303, Some("/login?return=%2F"))
    );
}

/// A refused token's log line says why, and never shows the token.
#[test]
fn a_refused_token_is_logged_with_its_reason() {
    let db = Db::seeded();
    let token = db.token();
    let server = Server::start(&db, &[]);
    let bearer = format!("Bearer {token}");
    assert_eq!(
        server
            .request("GET", "/demo/me", &[("Authorization", &bearer)], "")
            .status,
        200
    );
    let tokens: Value =
        serde_json::from_str(&db.cli(&["--json", "token", "list", "writer"])).unwrap();
    db.cli(&[
        "token",
        "revoke",
        "writer",
        tokens[0]["id"].as_str().unwrap(),
    ]);
    // The revocation reaches the server's verdict cache within its bound (1 s).
    let revoked = Instant::now();
    loop {
        let status = server
            .request("GET", "/demo/me", &[("Authorization", &bearer)], "")
            .status;
        if status == 401 {
            break;
        }
        assert!(
            status == 200 && revoked.elapsed() < Duration::from_millis(1500),
            "{status} {:?} after the revocation",
            revoked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let log = server.log();
        if let Some(line) = log.lines().find(|l| l.contains("status=401")) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no 401 line: {log}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        line.contains("reason") && line.contains("revoked"),
        "{line}"
    );
    assert!(!server.log().contains(&token), "the server logged a token");
}

/// `serve` on a port in use says which address it could not listen on, and why.
#[test]
fn a_busy_port_is_named() {
    let db = Db::seeded();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = Command::new(BIN)
        .args(["--database-url", &db.url, "serve", "--listen", &address])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!("cannot listen on {address}: address in use")),
        "{stderr}"
    );
}
