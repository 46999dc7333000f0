//! Many nodes: two `agent-auth serve` processes on one PostgreSQL (and Redis), on loopback.
//!
//! What DESIGN §8 promises a deployment, checked against the real binary:
//! - a token revoked through one node is refused by the other within the bound (1 s), also
//!   when the broadcast is lost (the listening connection killed);
//! - PostgreSQL unreachable from a node: 503 once its verdicts are older than the bound, never
//!   an admission past it, and recovery when it comes back; Redis stopped under load: every
//!   answer right or 503, and recovery;
//! - a use limit of 100 admits exactly 100 of 1,000 concurrent requests spread over both
//!   nodes; a rate limit of N per window admits exactly N over both nodes (Redis).
//!
//! Needs `AGENT_AUTH_TEST_POSTGRES_URL` (and `AGENT_AUTH_TEST_REDIS_URL` for the Redis cases);
//! skips with a notice without them, fails without them under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support;

pub(crate) const PASSWORD: &str = "cluster-s3cret";
/// What the nodes share to tag the verdicts they keep in Redis.
const REDIS_SECRET: &str = "a cluster test secret, 32 bytes or more";

pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var("AGENT_AUTH_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                !support::services_required(),
                "AGENT_AUTH_TEST_POSTGRES_URL is required"
            );
            support::skip_notice("PostgreSQL", "AGENT_AUTH_TEST_POSTGRES_URL");
            None
        }
    }
}

fn redis_url() -> Option<String> {
    match std::env::var("AGENT_AUTH_TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                !support::services_required(),
                "AGENT_AUTH_TEST_REDIS_URL is required"
            );
            support::skip_notice("Redis", "AGENT_AUTH_TEST_REDIS_URL");
            None
        }
    }
}

/// A PostgreSQL database of its own, dropped at the end.
pub(crate) struct Database {
    admin: String,
    name: String,
    pub(crate) url: String,
}

impl Database {
    pub(crate) async fn create(base: &str, test: &str) -> Self {
        use sqlx::Connection;
        let name = format!("agent_auth_cluster_{test}_{}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        Self {
            admin: base.to_owned(),
            url: format!("{prefix}/{name}"),
            name,
        }
    }

    /// The same database through `address` (a proxy) instead of PostgreSQL's own port.
    fn url_via(&self, address: &str) -> String {
        let rest = self.url.split_once("://").unwrap().1;
        let (user, rest) = rest.split_once('@').unwrap();
        let (_, path) = rest.split_once('/').unwrap();
        format!("postgres://{user}@{address}/{path}")
    }

    /// The one number `sql` answers.
    async fn count(&self, sql: &str) -> i64 {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            })
        })
        .join()
        .unwrap();
    }
}

pub(crate) fn cli(database: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::cargo_bin("agent-auth")
        .unwrap()
        .env_remove("AGENT_AUTH_DATABASE_URL")
        .args(["--database-url", database])
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
        "agent-auth {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The schema, user alice (posts:*) with a password, and her agent `writer`.
pub(crate) fn seed(database: &str) {
    cli(database, &["migrate"], "");
    cli(
        database,
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
    cli(
        database,
        &["agent", "create", "writer", "--owner", "alice"],
        "",
    );
}

/// One `agent-auth serve` process; killed when dropped. Its output is drained (a full pipe
/// would stall it) and kept for a failing test to show.
pub(crate) struct Node {
    child: Child,
    pub(crate) address: String,
    output: Arc<Mutex<Vec<String>>>,
}

impl Node {
    pub(crate) fn start(database: &str, extra: &[&str]) -> Self {
        let mut command = Command::cargo_bin("agent-auth").unwrap();
        command
            .env_remove("AGENT_AUTH_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .args([
                "--database-url",
                database,
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra);
        let (mut child, address, stdout) = support::spawn_serve(command);
        let output = Arc::new(Mutex::new(Vec::new()));
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        for lines in [
            Box::new(stdout) as Box<dyn BufRead + Send>,
            Box::new(stderr) as Box<dyn BufRead + Send>,
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in lines.lines().map_while(Result::ok) {
                    let mut output = output.lock().unwrap();
                    if output.len() > 200 {
                        output.remove(0);
                    }
                    output.push(line);
                }
            });
        }
        Self {
            child,
            address,
            output,
        }
    }

    pub(crate) fn log(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, headers (lower-case names) and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request on a connection of its own; `None` when the connection failed.
async fn try_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<Answer> {
    let mut stream = TcpStream::connect(address).await.ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

pub(crate) async fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    try_request(address, method, path, headers, body)
        .await
        .unwrap_or_else(|| panic!("{method} {path} on {address}: no answer"))
}

pub(crate) async fn me(node: &Node, token: &str) -> u16 {
    request(
        &node.address,
        "GET",
        "/demo/me",
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    )
    .await
    .status
}

/// How many requests `node` answered from its verdict cache so far (`/readyz`).
async fn cache_hits(node: &Node) -> u64 {
    let ready = request(&node.address, "GET", "/readyz", &[], "")
        .await
        .json();
    ready["cache"]["hits"]
        .as_u64()
        .unwrap_or_else(|| panic!("{ready}"))
}

/// Signs alice in on `node`: the session cookie.
pub(crate) async fn sign_in(node: &Node) -> String {
    let form = support::SignInForm::get(&node.address);
    let body = form.body(&[("user", "alice"), ("password", PASSWORD)]);
    let answer = request(
        &node.address,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &form.cookie),
        ],
        &body,
    )
    .await;
    let cookie = answer
        .header("set-cookie")
        .unwrap_or_else(|| panic!("not signed in: {}", answer.status));
    cookie.split(';').next().unwrap().to_owned()
}

/// A token of `writer` issued through `node`'s API: (id, raw token).
async fn issue(node: &Node, cookie: &str, body: &str) -> (String, String) {
    let answer = request(
        &node.address,
        "POST",
        "/api/agents/writer/tokens",
        &[("Cookie", cookie), ("Content-Type", "application/json")],
        body,
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let issued = answer.json();
    (
        issued["info"]["id"].as_str().unwrap().to_owned(),
        issued["token"].as_str().unwrap().to_owned(),
    )
}

async fn revoke(node: &Node, cookie: &str, id: &str) {
    let answer = request(
        &node.address,
        "DELETE",
        &format!("/api/agents/writer/tokens/{id}"),
        &[("Cookie", cookie)],
        "",
    )
    .await;
    assert!(
        (200..300).contains(&answer.status),
        "revoke: {} {}",
        answer.status,
        answer.body
    );
}

/// A TCP proxy that can cut every connection and refuse new ones: a service unreachable from
/// one node without stopping it for the others.
struct Proxy {
    address: String,
    open: Arc<AtomicBool>,
    cuts: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn to(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, watch) = tokio::sync::watch::channel(0u64);
        let gate = open.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut cut = watch.clone();
                // Only cuts from now on end this connection.
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            address,
            open,
            cuts,
        }
    }

    /// Drops every connection through the proxy and refuses new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Lets connections through again.
    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// How long after `since` node `node` first refuses `token`, polling as fast as it answers.
async fn refused_after(node: &Node, token: &str, since: Instant, give_up: Duration) -> Duration {
    loop {
        let status = me(node, token).await;
        let elapsed = since.elapsed();
        match status {
            401 => return elapsed,
            200 if elapsed < give_up => {}
            other => panic!(
                "still {other} {elapsed:?} after the revocation\n{}",
                node.log()
            ),
        }
    }
}

/// Revoke through node A → node B refuses within the bound; p50/p99 over 200 revocations.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revocation_through_one_node_reaches_the_other_within_the_bound() {
    let Some(base) = postgres_url() else { return };
    let database = Database::create(&base, "revocation").await;
    seed(&database.url);
    let a = Node::start(&database.url, &[]);
    let b = Node::start(&database.url, &[]);
    let cookie = sign_in(&a).await;
    let mut propagation = Vec::new();
    for _ in 0..200 {
        let (id, token) = issue(&a, &cookie, r#"{"label":"cluster"}"#).await;
        // Twice: the second is answered from B's cache.
        assert_eq!(me(&b, &token).await, 200);
        let hits = cache_hits(&b).await;
        assert_eq!(me(&b, &token).await, 200);
        assert!(cache_hits(&b).await > hits, "not answered from B's cache");
        revoke(&a, &cookie, &id).await;
        let revoked = Instant::now();
        propagation.push(refused_after(&b, &token, revoked, Duration::from_secs(1)).await);
    }
    propagation.sort();
    let (p50, p99, max) = (
        percentile(&propagation, 0.5),
        percentile(&propagation, 0.99),
        *propagation.last().unwrap(),
    );
    eprintln!("revocation reached the other node: p50 {p50:?}, p99 {p99:?}, max {max:?} (200)");
    assert!(p99 <= Duration::from_secs(1), "p99 {p99:?}");
}

/// The listening connection killed (its notices lost): still refused within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_broadcast_still_refuses_within_the_bound() {
    let Some(base) = postgres_url() else { return };
    let database = Database::create(&base, "lost").await;
    seed(&database.url);
    let a = Node::start(&database.url, &[]);
    let b = Node::start(&database.url, &[]);
    let cookie = sign_in(&a).await;
    for round in 0..5 {
        // Both nodes listening again (after the last round's kill), B answering from memory.
        let waiting = Instant::now();
        loop {
            let listening = database
                .count(&format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
                     AND application_name = 'agent-auth change feed'",
                    database.name
                ))
                .await;
            let ready = request(&b.address, "GET", "/readyz", &[], "").await.json();
            if listening >= 2
                && ready["cache"]["fresh"] == true
                && ready["cache"]["channel_up"] == true
            {
                break;
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(10),
                "not listening again: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (id, token) = issue(&a, &cookie, r#"{"label":"lost"}"#).await;
        assert_eq!(me(&b, &token).await, 200);
        let hits = cache_hits(&b).await;
        assert_eq!(me(&b, &token).await, 200);
        assert!(cache_hits(&b).await > hits, "not answered from B's cache");
        // Every listening connection of the database (both nodes'): notices sent now are lost.
        let killed = database
            .count(&format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = '{}' AND application_name = 'agent-auth change feed'",
                database.name
            ))
            .await;
        assert!(
            killed >= 1,
            "no listening connection to kill (round {round})"
        );
        revoke(&a, &cookie, &id).await;
        let revoked = Instant::now();
        let after = refused_after(&b, &token, revoked, Duration::from_millis(1100)).await;
        eprintln!("round {round}: refused {after:?} after the revocation, broadcast lost");
    }
}

/// PostgreSQL unreachable from node B: nothing is admitted past the bound (503 instead), and B
/// recovers when the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_database_answers_503_past_the_bound_and_recovers() {
    let Some(base) = postgres_url() else { return };
    let database = Database::create(&base, "unreachable").await;
    seed(&database.url);
    let target = {
        let rest = database.url.split_once('@').unwrap().1;
        rest.split_once('/').unwrap().0.to_owned()
    };
    let proxy = Proxy::to(target).await;
    let a = Node::start(&database.url, &[]);
    let b = Node::start(&database.url_via(&proxy.address), &[]);
    let cookie = sign_in(&a).await;
    let (_, kept) = issue(&a, &cookie, r#"{"label":"kept"}"#).await;
    let (id, revoked) = issue(&a, &cookie, r#"{"label":"revoked"}"#).await;
    assert_eq!(me(&b, &kept).await, 200);
    assert_eq!(me(&b, &revoked).await, 200);

    proxy.cut();
    let cut = Instant::now();
    revoke(&a, &cookie, &id).await;
    // Until the bound, B may answer from its verdicts; past it, only 503 (or a refusal).
    let mut unavailable = 0;
    while cut.elapsed() < Duration::from_secs(3) {
        for token in [&kept, &revoked] {
            let status = me(&b, token).await;
            let at = cut.elapsed();
            match status {
                200 if at < Duration::from_secs(1) => {}
                503 => unavailable += 1,
                401 if token == &revoked => {}
                other => panic!("{other} {at:?} after the database went away\n{}", b.log()),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        unavailable > 0,
        "never 503 while the database was unreachable"
    );

    proxy.restore();
    let back = Instant::now();
    loop {
        let (kept_status, revoked_status) = (me(&b, &kept).await, me(&b, &revoked).await);
        if kept_status == 200 && revoked_status == 401 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "not recovered: {kept_status} {revoked_status}\n{}",
            b.log()
        );
        assert!(
            revoked_status != 200,
            "a revoked token admitted after recovery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "recovered {:?} after the database came back",
        back.elapsed()
    );
}

/// A 100-use token used from both nodes at once, 1,000 requests: exactly 100 admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_use_limit_is_exact_across_nodes() {
    let Some(base) = postgres_url() else { return };
    let database = Database::create(&base, "uses").await;
    seed(&database.url);
    let a = Node::start(&database.url, &[]);
    let b = Node::start(&database.url, &[]);
    let cookie = sign_in(&a).await;
    let (_, token) = issue(&a, &cookie, r#"{"label":"uses","max_operations":100}"#).await;
    let nodes = [a.address.clone(), b.address.clone()];
    let mut requests = Vec::new();
    for n in 0..1000 {
        let address = nodes[n % 2].clone();
        let token = token.clone();
        requests.push(tokio::spawn(async move {
            let auth = format!("Bearer {token}");
            try_request(&address, "GET", "/demo/me", &[("Authorization", &auth)], "")
                .await
                .map(|answer| answer.status)
        }));
    }
    let mut admitted = 0;
    for request in requests {
        match request.await.unwrap() {
            Some(200) => admitted += 1,
            Some(401) => {}
            other => panic!("unexpected answer {other:?}\n{}\n{}", a.log(), b.log()),
        }
    }
    assert_eq!(admitted, 100);
}

/// A rate limit of 20 per 2 s window over two nodes sharing Redis admits exactly 20 of 200
/// requests sent within one window; the others get 429 with Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rate_limit_is_exact_across_nodes_with_redis() {
    let Some(base) = postgres_url() else { return };
    let Some(redis) = redis_url() else { return };
    let database = Database::create(&base, "rate").await;
    seed(&database.url);
    let prefix = format!("aa-cluster-rate-{}:", std::process::id());
    let args = [
        "--redis-url",
        redis.as_str(),
        "--redis-prefix",
        prefix.as_str(),
        "--redis-secret",
        REDIS_SECRET,
        "--rate-limit-per-token",
        "20/2s",
    ];
    let a = Node::start(&database.url, &args);
    let b = Node::start(&database.url, &args);
    let cookie = sign_in(&a).await;
    let (_, token) = issue(&a, &cookie, r#"{"label":"rate"}"#).await;
    // Start just after a window begins, so 200 requests fit in one.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into = Duration::from_millis((now.as_millis() % 2000) as u64);
    tokio::time::sleep(Duration::from_millis(2050) - into).await;
    let started = Instant::now();
    let nodes = [a.address.clone(), b.address.clone()];
    let mut requests = Vec::new();
    for n in 0..200 {
        let address = nodes[n % 2].clone();
        let token = token.clone();
        requests.push(tokio::spawn(async move {
            let auth = format!("Bearer {token}");
            request(&address, "GET", "/demo/me", &[("Authorization", &auth)], "").await
        }));
    }
    let mut admitted = 0;
    for request in requests {
        let answer = request.await.unwrap();
        match answer.status {
            200 => admitted += 1,
            429 => assert!(answer.header("retry-after").is_some()),
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert!(
        started.elapsed() < Duration::from_millis(1900),
        "the requests took {:?}: more than one window",
        started.elapsed()
    );
    assert_eq!(admitted, 20);
}

/// Redis stopped (unreachable) under load: every answer is right or 503 — a revoked token is
/// never admitted — and the node recovers when Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopped_under_load_answers_right_or_503_and_recovers() {
    let Some(base) = postgres_url() else { return };
    let Some(redis) = redis_url() else { return };
    let database = Database::create(&base, "redis").await;
    seed(&database.url);
    let target = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let proxy = Proxy::to(target).await;
    let via = format!("redis://{}", proxy.address);
    let prefix = format!("aa-cluster-redis-{}:", std::process::id());
    let args = [
        "--redis-url",
        via.as_str(),
        "--redis-prefix",
        prefix.as_str(),
        "--redis-secret",
        REDIS_SECRET,
        "--rate-limit-per-token",
        "100000/1s",
    ];
    let a = Node::start(&database.url, &args);
    let b = Node::start(&database.url, &args);
    let cookie = sign_in(&a).await;
    let (_, kept) = issue(&a, &cookie, r#"{"label":"kept"}"#).await;
    let (id, revoked) = issue(&a, &cookie, r#"{"label":"revoked"}"#).await;
    assert_eq!(me(&b, &kept).await, 200);
    assert_eq!(me(&b, &revoked).await, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let revoked_at = Arc::new(Mutex::new(None::<Instant>));
    let mut load = Vec::new();
    for n in 0..8 {
        let (address, kept, revoked) = (
            [&a, &b][n % 2].address.clone(),
            kept.clone(),
            revoked.clone(),
        );
        let (stop, revoked_at) = (stop.clone(), revoked_at.clone());
        load.push(tokio::spawn(async move {
            let mut seen = [0u32; 3];
            while !stop.load(Ordering::SeqCst) {
                for (token, is_revoked) in [(&kept, false), (&revoked, true)] {
                    let auth = format!("Bearer {token}");
                    let Some(answer) =
                        try_request(&address, "GET", "/demo/me", &[("Authorization", &auth)], "")
                            .await
                    else {
                        continue;
                    };
                    let late = revoked_at
                        .lock()
                        .unwrap()
                        .is_some_and(|at| at.elapsed() > Duration::from_secs(1));
                    match answer.status {
                        200 if is_revoked && late => {
                            panic!("a revoked token admitted past the bound")
                        }
                        200 => seen[0] += 1,
                        401 if is_revoked => seen[1] += 1,
                        503 => seen[2] += 1,
                        other => panic!("unexpected {other}: {}", answer.body),
                    }
                }
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    revoke(&a, &cookie, &id).await;
    *revoked_at.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.restore();
    let back = Instant::now();
    loop {
        if me(&b, &kept).await == 200 && me(&a, &kept).await == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "not recovered after Redis came back\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut totals = [0u32; 3];
    for task in load {
        let seen = task.await.unwrap();
        for (total, n) in totals.iter_mut().zip(seen) {
            *total += n;
        }
    }
    assert_eq!(me(&b, &revoked).await, 401);
    eprintln!(
        "under load with Redis stopped for 2.3 s: {} admitted, {} refused, {} answered 503",
        totals[0], totals[1], totals[2]
    );
}
