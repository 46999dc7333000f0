//! A real OAuth client's device flow (RFC 8628) against `serve`: `oauth4webapi` (npm, run by
//! Node) discovers the device endpoint, registers a client for the device grant alone, asks
//! for a device code, polls once too soon (`slow_down`), plays the person — the complete
//! verification URI, sign-in, the user code typed into the page, consent — polls again on time
//! for the tokens, reads the protected demo API, and finds the device code spent
//! (`tests/oauth-client/device.mjs`). Then no secret it saw — the device code, the access and
//! refresh tokens — may be found in the server's log at TRACE or anywhere in its database file.
//!
//! Needs Node (`AGENT_AUTH_TEST_NODE`) and `npm ci` run in `tests/oauth-client`; skips with a
//! notice without them, fails under `AGENT_AUTH_REQUIRE_SERVICES=1`. Takes about 15 s: the
//! poll after `slow_down` waits the 10 s interval.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{assert_no_secret_kept, node, serve_demo};

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oauth-client")
}

#[test]
fn oauth4webapi_runs_the_device_flow_against_serve() {
    let Some(node) = node() else { return };
    assert!(
        client_dir().join("node_modules/oauth4webapi").exists(),
        "run `npm ci` in {}",
        client_dir().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("device.db");
    let db = format!("sqlite://{}", file.display());
    let (mut child, base, password, reader) = serve_demo(&db);

    let secrets_out = dir.path().join("secrets.json");
    let run = Command::new(node)
        .current_dir(client_dir())
        .arg("device.mjs")
        .env("BASE", &base)
        .env("RESOURCE", format!("{base}/demo"))
        .env("PROTECTED", format!("{base}/demo/posts"))
        .env("SCOPE", "posts:read")
        .env("USER_NAME", "demo")
        .env("PASSWORD", &password)
        .env("SECRETS_OUT", &secrets_out)
        .output()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let log = reader.join().unwrap();
    let printed = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the device client failed:\n{printed}\n{}\n--- server log (tail) ---\n{}",
        String::from_utf8_lossy(&run.stderr),
        log.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    for step in [
        "discovery",
        "registration",
        "device authorization",
        "slow_down",
        "user code entered",
        "token",
        "protected 200",
        "single use",
    ] {
        assert!(
            printed.contains(&format!("ok {step}\n")),
            "{step}: {printed}"
        );
    }

    // No secret the client saw is in the log (at TRACE) or stored in clear anywhere.
    let secrets: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&secrets_out).unwrap()).unwrap();
    assert_eq!(secrets.len(), 3, "{secrets:?}");
    assert!(log.contains("request"), "the server's log was read");
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("device.db") {
            stored.extend(std::fs::read(path).unwrap());
        }
    }
    assert_no_secret_kept(&secrets, &log, &stored);
}
