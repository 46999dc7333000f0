//! Browser sessions on the database, through the real binary: a session outlives a restart
//! (SQLite), works on every node on one PostgreSQL, ends on every node at sign-out and at a
//! password change, and the database never holds the cookie.
//!
//! The PostgreSQL case needs `AGENT_AUTH_TEST_POSTGRES_URL` (a database of its own per test);
//! it skips with a notice without it, and fails then under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::cluster::{self, Answer, Node, request};
use crate::support;

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

/// The origin a browser on `address` sends: what the same-origin rule lets post.
fn origin(address: &str) -> String {
    format!("http://{address}")
}

/// `host:port` of a base URL.
fn address_of(base: &str) -> &str {
    base.strip_prefix("http://").unwrap()
}

/// Signs `user` in on `address` as a browser would: the session cookie (`name=value`).
async fn sign_in(address: &str, user: &str, password: &str) -> String {
    let form = support::SignInForm::get(address);
    let answer = request(
        address,
        "POST",
        "/login",
        &[FORM, ("Origin", &origin(address)), ("Cookie", &form.cookie)],
        &form.body(&[("user", user), ("password", password)]),
    )
    .await;
    assert_eq!(answer.status, 303, "sign-in: {}", answer.body);
    session_cookie(&answer)
}

/// A server started by [`support::serve_demo`], killed when dropped (a failing test leaves
/// no server behind).
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn session_cookie(answer: &Answer) -> String {
    answer
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .map(|(_, value)| value.split(';').next().unwrap())
        .find(|pair| pair.starts_with("agent_auth_session="))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", answer.headers))
        .to_owned()
}

/// The cookie's value: what the database must never hold.
fn secret(cookie: &str) -> &str {
    cookie.split_once('=').unwrap().1
}

/// Whether `cookie` opens the landing page and the management API on `address`: `true` for
/// 200 and 200, `false` for the sign-in redirect and 401; anything else fails.
async fn signed_in(address: &str, cookie: &str) -> bool {
    let home = request(address, "GET", "/", &[("Cookie", cookie)], "").await;
    let api = request(address, "GET", "/api/agents", &[("Cookie", cookie)], "").await;
    match (home.status, api.status) {
        (200, 200) => {
            assert!(
                api.json().is_array() || api.json().is_object(),
                "{}",
                api.body
            );
            true
        }
        (303, 401) => {
            assert!(
                home.header("location").unwrap().starts_with("/login"),
                "{:?}",
                home.headers
            );
            false
        }
        other => panic!("{other:?}: {} / {}", home.body, api.body),
    }
}

async fn sign_out(address: &str, cookie: &str) {
    let answer = request(
        address,
        "POST",
        "/logout",
        &[FORM, ("Origin", &origin(address)), ("Cookie", cookie)],
        &format!("csrf={}", support::session_form_token(cookie)),
    )
    .await;
    assert_eq!(answer.status, 303, "sign-out: {}", answer.body);
}

/// The record id the stores file a session under: the first 16 bytes of SHA-256(cookie),
/// as tower-sessions writes an id (URL-safe base64, no padding).
fn record_id(cookie: &str) -> String {
    let digest = Sha256::digest(secret(cookie).as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Sign in on SQLite, kill the server, start it again on the same file: the cookie still
/// opens the pages and the API. The file holds the session's digest, never the cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_on_sqlite_outlives_a_restart() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let (first, base, password, log) = support::serve_demo(&db);
    let first = Demo(first);
    let cookie = sign_in(address_of(&base), "demo", &password).await;
    assert!(signed_in(address_of(&base), &cookie).await);
    drop(first);
    let log = log.join().unwrap();

    let again = Node::start(&db, &[]);
    assert!(
        signed_in(&again.address, &cookie).await,
        "signed out by a restart"
    );
    // A cookie never given opens nothing.
    let forged = format!("agent_auth_session={}", "ab".repeat(32));
    assert!(!signed_in(&again.address, &forged).await);
    drop(again);

    let stored = support::stored(dir.path(), "sessions.db");
    support::assert_no_secret_kept(&[secret(&cookie).to_owned()], &log, &stored);
    let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM agent_auth_sessions")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(ids, [record_id(&cookie)], "one session, filed by digest");
}

/// Every table of the database's current schema, as text: where a cookie kept in clear (or
/// as bytes) would show.
async fn every_row(url: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        tables.iter().any(|t| t == "agent_auth_sessions"),
        "{tables:?}"
    );
    let mut text = String::new();
    for table in tables {
        let rows: Option<String> = sqlx::query_scalar(&format!(
            "SELECT string_agg(t::text, '') FROM \"{table}\" t"
        ))
        .fetch_one(&mut conn)
        .await
        .unwrap();
        text.push_str(&rows.unwrap_or_default());
    }
    text
}

fn assert_not_in(cookie: &str, rows: &str) {
    let value = secret(cookie);
    assert!(!rows.contains(value), "the cookie stored in clear");
    // bytea shows as hex: the cookie's bytes, had they been stored.
    assert!(
        !rows.contains(&hex::encode(value.as_bytes())),
        "the cookie stored as bytes"
    );
    assert!(rows.contains(&record_id(cookie)), "the session is stored");
}

/// Two nodes on one PostgreSQL: a session begun on A works on B; both restarted, it still
/// works; signing out on A ends it on B; a password changed with the CLI ends the sessions
/// begun with the old one on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_shared_by_nodes_on_postgres() {
    let Some(base) = cluster::postgres_url() else {
        return;
    };
    let database = cluster::Database::create(&base, "sessions").await;
    let url = database.url.clone();
    let (first, first_base, password, _log) = support::serve_demo(&url);
    let first = Demo(first);
    let b = Node::start(&url, &[]);
    let cookie = sign_in(address_of(&first_base), "demo", &password).await;
    assert!(
        signed_in(&b.address, &cookie).await,
        "begun on A, used on B"
    );
    assert_not_in(&cookie, &every_row(&url).await);

    // Both nodes restarted.
    drop(first);
    drop(b);
    let a = Node::start(&url, &[]);
    let b = Node::start(&url, &[]);
    assert!(signed_in(&a.address, &cookie).await, "{}", a.log());
    assert!(signed_in(&b.address, &cookie).await, "{}", b.log());

    // Signing out on A ends the session on B.
    sign_out(&a.address, &cookie).await;
    assert!(!signed_in(&b.address, &cookie).await);

    // A password changed (here with the CLI, on the same database) ends on both nodes the
    // sessions begun with the old one; the new password signs in.
    let before = sign_in(&b.address, "demo", &password).await;
    assert!(signed_in(&a.address, &before).await);
    cluster::cli(&url, &["user", "passwd", "demo"], "a new s3cret\n");
    assert!(
        !signed_in(&a.address, &before).await,
        "A kept the old session"
    );
    assert!(
        !signed_in(&b.address, &before).await,
        "B kept the old session"
    );
    let after = sign_in(&a.address, "demo", "a new s3cret").await;
    assert!(signed_in(&b.address, &after).await);
}
