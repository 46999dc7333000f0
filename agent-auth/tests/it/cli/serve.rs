//! `serve` end to end: health and readiness, bad flags, rate limits, a CLI token admitted until
//! the CLI revokes it, the demo, a shared database, a locked table, a policy changed.

use super::*;

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
