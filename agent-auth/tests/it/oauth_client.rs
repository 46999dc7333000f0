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

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

use crate::support::{services_required, skip_notice, spawn_serve};

fn node() -> Option<PathBuf> {
    match std::env::var_os("AGENT_AUTH_TEST_NODE") {
        Some(node) if !node.is_empty() => Some(node.into()),
        _ if services_required() => {
            panic!("AGENT_AUTH_TEST_NODE is not set but AGENT_AUTH_REQUIRE_SERVICES is")
        }
        _ => {
            skip_notice("Node (OAuth client)", "AGENT_AUTH_TEST_NODE");
            None
        }
    }
}

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oauth-client")
}

fn cli(db: &str, args: &[&str]) -> String {
    let output = Command::cargo_bin("agent-auth")
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
    let mut serve = Command::cargo_bin("agent-auth").unwrap();
    serve
        .env("AGENT_AUTH_DATABASE_URL", &db)
        .env("RUST_LOG", "trace")
        .args(["serve", "--listen", "127.0.0.1:0", "--demo"]);
    let (mut child, address, mut stdout) = spawn_serve(serve);
    // The log at TRACE is long: read it as it comes, or the server blocks on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        log
    });
    let base = format!("http://{address}");
    let mut seed = String::new();
    // The demo seed's lines: the demo user's password among them.
    for _ in 0..2 {
        std::io::BufRead::read_line(&mut stdout, &mut seed).unwrap();
    }
    let password = seed
        .split("demo user: demo / ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no demo password in {seed:?}"))
        .to_owned();

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
    for secret in &secrets {
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
