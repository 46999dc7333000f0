//! A real OAuth client against `serve`: `oauth4webapi` (npm, run by Node) goes through
//! discovery, registration, code + PKCE with `resource` (checking `iss`), the protected demo
//! API, refresh and the reuse of a spent refresh token, introspection, revocation and a denied
//! consent (`tests/oauth-client/client.mjs`). Then no secret it saw — access and refresh
//! tokens, codes, verifiers, the introspecting client's secret — may be found in the server's
//! log at TRACE or anywhere in its database file.
//!
//! Needs Node (`AGENT_AUTH_TEST_NODE`, the `node` binary) and `npm ci` run in
//! `tests/oauth-client`; skips with a notice without them, fails under
//! `AGENT_AUTH_REQUIRE_SERVICES=1`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{assert_no_secret_kept, cli, node, serve_demo};

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oauth-client")
}

#[test]
fn oauth4webapi_runs_the_whole_flow_against_serve() {
    let Some(node) = node() else { return };
    assert!(
        client_dir().join("node_modules/oauth4webapi").exists(),
        "run `npm ci` in {}",
        client_dir().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oauth.db");
    let db = format!("sqlite://{}", file.display());
    let (mut child, base, password, reader) = serve_demo(&db);

    let registered: serde_json::Value = serde_json::from_str(&cli(
        &db,
        &[
            "--json",
            "client",
            "register",
            "--name",
            "resource server",
            "--introspect",
        ],
    ))
    .unwrap();
    let introspect_id = registered["client_id"].as_str().unwrap().to_owned();
    let introspect_secret = registered["client_secret"].as_str().unwrap().to_owned();

    let secrets_out = dir.path().join("secrets.json");
    let run = Command::new(node)
        .current_dir(client_dir())
        .arg("client.mjs")
        .env("BASE", &base)
        .env("RESOURCE", format!("{base}/demo"))
        .env("PROTECTED", format!("{base}/demo/posts"))
        .env("SCOPE", "posts:read posts:write")
        .env("USER_NAME", "demo")
        .env("PASSWORD", &password)
        .env("INTROSPECT_ID", &introspect_id)
        .env("INTROSPECT_SECRET", &introspect_secret)
        .env("SECRETS_OUT", &secrets_out)
        .output()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let log = reader.join().unwrap();
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the OAuth client failed:\n{printed}\n{}\n--- server log (tail) ---\n{}",
        String::from_utf8_lossy(&run.stderr),
        log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    for step in [
        "discovery",
        "registration",
        "code+pkce",
        "protected 200",
        "refresh",
        "reuse revokes the family",
        "introspection",
        "revocation",
        "deny",
    ] {
        assert!(
            printed.contains(&format!("ok {step}\n")),
            "{step}: {printed}"
        );
    }

    // No secret the client saw is in the log (at TRACE) or stored in clear anywhere.
    let secrets: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&secrets_out).unwrap()).unwrap();
    assert!(secrets.len() >= 10, "{secrets:?}");
    assert!(log.contains("TRACE") || log.contains("DEBUG") || log.contains("INFO"));
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("oauth.db") {
            stored.extend(std::fs::read(path).unwrap());
        }
    }
    assert_no_secret_kept(&secrets, &log, &stored);
}
