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

use crate::support::{
    assert_no_secret_kept, node, oauth_client_dir, run_client, serve_demo, stored,
};

#[test]
fn oauth4webapi_runs_the_device_flow_against_serve() {
    let Some(node) = node() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("device.db");
    let db = format!("sqlite://{}", file.display());
    let (child, base, password, reader) = serve_demo(&db);

    let run = run_client(
        &node,
        &oauth_client_dir(),
        "device.mjs",
        &[
            ("BASE", base.clone()),
            ("RESOURCE", format!("{base}/demo")),
            ("PROTECTED", format!("{base}/demo/posts")),
            ("SCOPE", "posts:read".into()),
            ("USER_NAME", "demo".into()),
            ("PASSWORD", password),
        ],
        (child, reader),
        dir.path(),
        &[
            "discovery",
            "registration",
            "device authorization",
            "slow_down",
            "user code entered",
            "token",
            "protected 200",
            "single use",
        ],
    );
    // No secret the client saw is in the log (at TRACE) or stored in clear anywhere.
    assert_eq!(run.secrets.len(), 3, "{:?}", run.secrets);
    assert!(run.log.contains("request"), "the server's log was read");
    assert_no_secret_kept(&run.secrets, &run.log, &stored(dir.path(), "device.db"));
}
