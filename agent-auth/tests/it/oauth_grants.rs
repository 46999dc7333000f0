//! The grants for agents with a real OAuth client against `serve`: `oauth4webapi` (npm, run by
//! Node, `tests/oauth-client/grants.mjs`) obtains the planner agent's own token by client
//! credentials (200 on the protected demo route), exchanges it (RFC 8693) for a narrower child
//! of the writer sub-agent (200 on `GET /demo/posts`, 403 on `POST`, introspection showing the
//! nested `act`), and has the orchestrator mint a task token of 3 operations at
//! `/oauth/agent-token` (exactly 3 admitted, then 401; introspection showing
//! `operations_remaining`). The agents and secrets are set up with the CLI. Then no secret it
//! saw — tokens, client secrets — may be found in the server's log at TRACE or anywhere in its
//! database file.
//!
//! Needs Node (`AGENT_AUTH_TEST_NODE`) and `npm ci` run in `tests/oauth-client`; skips with a
//! notice without them, fails under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::{assert_no_secret_kept, cli, node, serve_demo};

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oauth-client")
}

/// `agent-auth --json args…`, read as JSON.
fn cli_json(db: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&cli(db, &all)).unwrap()
}

/// The client secret `client register` printed.
fn secret_of(registered: &Value) -> String {
    registered["client_secret"].as_str().unwrap().to_owned()
}

#[test]
fn oauth4webapi_runs_the_agent_grants_against_serve() {
    let Some(node) = node() else { return };
    assert!(
        client_dir().join("node_modules/oauth4webapi").exists(),
        "run `npm ci` in {}",
        client_dir().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grants.db");
    let db = format!("sqlite://{}", file.display());
    let (mut child, base, _password, reader) = serve_demo(&db);

    // The demo user's agents: a planner and its writer sub-agent, an orchestrator and the
    // worker it mints task tokens for.
    for args in [
        &["agent", "create", "planner", "--owner", "demo"][..],
        &["agent", "create", "writer", "--owner", "demo"],
        &[
            "agent",
            "create",
            "conductor",
            "--owner",
            "demo",
            "--orchestrator",
        ],
        &["agent", "create", "worker", "--owner", "demo"],
    ] {
        cli(&db, args);
    }
    let planner = cli_json(&db, &["client", "register", "--agent", "planner"]);
    assert_eq!(planner["client_id"], "planner");
    assert_eq!(planner["kind"], "agent");
    assert_eq!(planner["auth"], "client_secret_basic");
    let conductor = cli_json(&db, &["client", "register", "--agent", "conductor"]);
    let introspector = cli_json(
        &db,
        &[
            "client",
            "register",
            "--name",
            "resource server",
            "--introspect",
        ],
    );
    let actor = cli_json(&db, &["token", "create", "writer", "--label", "sub-agent"]);
    let actor = actor["token"].as_str().unwrap().to_owned();

    let secrets_out = dir.path().join("secrets.json");
    let run = Command::new(node)
        .current_dir(client_dir())
        .arg("grants.mjs")
        .env("BASE", &base)
        .env("RESOURCE", format!("{base}/demo"))
        .env("PROTECTED", format!("{base}/demo/posts"))
        .env("USER_NAME", "demo")
        .env("PLANNER_SECRET", secret_of(&planner))
        .env("CONDUCTOR_SECRET", secret_of(&conductor))
        .env("ACTOR_TOKEN", &actor)
        .env("INTROSPECT_ID", introspector["client_id"].as_str().unwrap())
        .env("INTROSPECT_SECRET", secret_of(&introspector))
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
        "client credentials 200",
        "token exchange narrower 200, wider 403",
        "introspection shows act",
        "wider exchange invalid_scope",
        "agent-token",
        "agent-token 3 admitted then 401",
    ] {
        assert!(
            printed.contains(&format!("ok {step}\n")),
            "{step}: {printed}"
        );
    }

    // No token or client secret the client saw is in the log (at TRACE) or stored in clear
    // anywhere in the database (the audit trail included).
    let secrets: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&secrets_out).unwrap()).unwrap();
    assert_eq!(secrets.len(), 7, "{secrets:?}");
    assert!(
        log.contains("DEBUG"),
        "the server logged verbosely (RUST_LOG=trace)"
    );
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("grants.db") {
            stored.extend(std::fs::read(path).unwrap());
        }
    }
    assert_no_secret_kept(&secrets, &log, &stored);
}
