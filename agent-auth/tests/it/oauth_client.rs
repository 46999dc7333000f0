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

use crate::support::{
    assert_no_secret_kept, cli, node, oauth_client_dir, run_client, serve_demo, stored,
};

#[test]
fn oauth4webapi_runs_the_whole_flow_against_serve() {
    let Some(node) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oauth.db");
    let db = format!("sqlite://{}", file.display());
    let (child, base, password, reader) = serve_demo(&db);

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

    let run = run_client(
        &node,
        &oauth_client_dir(),
        "client.mjs",
        &[
            ("BASE", base.clone()),
            ("RESOURCE", format!("{base}/demo")),
            ("PROTECTED", format!("{base}/demo/posts")),
            ("SCOPE", "posts:read posts:write".into()),
            ("USER_NAME", "demo".into()),
            ("PASSWORD", password),
            ("INTROSPECT_ID", introspect_id),
            ("INTROSPECT_SECRET", introspect_secret),
        ],
        (child, reader),
        dir.path(),
        &[
            "discovery",
            "registration",
            "code+pkce",
            "protected 200",
            "refresh",
            "reuse revokes the family",
            "introspection",
            "revocation",
            "deny",
        ],
    );
    // No secret the client saw is in the log (at TRACE) or stored in clear anywhere.
    assert!(run.secrets.len() >= 10, "{:?}", run.secrets);
    assert!(run.log.contains("TRACE") || run.log.contains("DEBUG") || run.log.contains("INFO"));
    assert_no_secret_kept(&run.secrets, &run.log, &stored(dir.path(), "oauth.db"));
}
