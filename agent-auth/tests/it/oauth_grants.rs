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

use serde_json::Value;

use crate::support::{
    assert_no_secret_kept, cli, node, oauth_client_dir, run_client, serve_demo, stored,
};

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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grants.db");
    let db = format!("sqlite://{}", file.display());
    let (child, base, _password, reader) = serve_demo(&db);

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

    let run = run_client(
        &node,
        &oauth_client_dir(),
        "grants.mjs",
        &[
            ("BASE", base.clone()),
            ("RESOURCE", format!("{base}/demo")),
            ("PROTECTED", format!("{base}/demo/posts")),
            ("USER_NAME", "demo".into()),
            ("PLANNER_SECRET", secret_of(&planner)),
            ("CONDUCTOR_SECRET", secret_of(&conductor)),
            ("ACTOR_TOKEN", actor),
            (
                "INTROSPECT_ID",
                introspector["client_id"].as_str().unwrap().to_owned(),
            ),
            ("INTROSPECT_SECRET", secret_of(&introspector)),
        ],
        (child, reader),
        dir.path(),
        &[
            "discovery",
            "client credentials 200",
            "token exchange narrower 200, wider 403",
            "introspection shows act",
            "wider exchange invalid_scope",
            "agent-token",
            "agent-token 3 admitted then 401",
        ],
    );
    // No token or client secret the client saw is in the log (at TRACE) or stored in clear
    // anywhere in the database (the audit trail included).
    assert_eq!(run.secrets.len(), 7, "{:?}", run.secrets);
    assert!(
        run.log.contains("DEBUG"),
        "the server logged verbosely (RUST_LOG=trace)"
    );
    assert_no_secret_kept(&run.secrets, &run.log, &stored(dir.path(), "grants.db"));
}
