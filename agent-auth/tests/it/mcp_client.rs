//! The official TypeScript MCP client SDK (`@modelcontextprotocol/client`, run by Node) given
//! only the `/mcp` URL of `serve --demo` (`tests/mcp-client/client.mjs`): a `401` → the
//! resource's metadata → registration → authorization (sign-in and consent as form posts);
//! `tools/list` showing only what the first grant permits; a permitted call; a tool outside the
//! grant → `403 insufficient_scope` → the SDK re-authorizes with the wider scope → the retry
//! succeeds; the critical tool → approval required → approved with the CLI → the retry
//! succeeds. Then no secret the client saw is in the server's log or stored in clear.
//!
//! Needs Node (`AGENT_AUTH_TEST_NODE`) and `npm ci` run in `tests/mcp-client`; skips with a
//! notice without them, fails under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{assert_no_secret_kept, cli, node, serve_demo};

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp-client")
}

#[test]
fn the_mcp_sdk_connects_steps_up_and_waits_for_approval() {
    the_sdk_runs_the_flow("legacy", "2025-11-25");
}

/// The same with the 2026-07-28 transport: `server/discover`, then every request names its
/// method and tool in `Mcp-Method` and `Mcp-Name`.
#[test]
fn the_mcp_sdk_runs_the_flow_with_the_2026_07_28_headers() {
    the_sdk_runs_the_flow("auto", "2026-07-28");
}

/// The flow, with the SDK's version negotiation `mode` (`legacy`: `initialize` and a session,
/// the body alone naming the tool).
fn the_sdk_runs_the_flow(mode: &str, version: &str) {
    let Some(node) = node() else { return };
    assert!(
        client_dir()
            .join("node_modules/@modelcontextprotocol/client")
            .exists(),
        "run `npm ci` in {}",
        client_dir().display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcp.db");
    let db = format!("sqlite://{}", file.display());
    let (mut serve, base, password, log) = serve_demo(&db);

    let secrets_out = dir.path().join("secrets.json");
    let mut client = Command::new(node)
        .current_dir(client_dir())
        .arg("client.mjs")
        .env("BASE", &base)
        .env("MCP_URL", format!("{base}/mcp"))
        .env("USER_NAME", "demo")
        .env("PASSWORD", &password)
        .env("SECRETS_OUT", &secrets_out)
        .env("MCP_VERSION_NEGOTIATION", mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = client.stderr.take().unwrap();
    let notes = std::thread::spawn(move || {
        let mut notes = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut notes).unwrap();
        notes
    });
    let mut printed = String::new();
    let mut approved = None;
    for line in BufReader::new(client.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(id) = line.strip_prefix("approval ") {
            // The person approves the very call the agent made, from a terminal.
            cli(&db, &["approval", "approve", id]);
            approved = Some(id.to_owned());
            let stdin = client.stdin.as_mut().unwrap();
            writeln!(stdin, "approved").unwrap();
            stdin.flush().unwrap();
        }
    }
    let status = client.wait().unwrap();
    serve.kill().unwrap();
    serve.wait().unwrap();
    let log = log.join().unwrap();
    let notes = notes.join().unwrap();
    assert!(
        status.success(),
        "the MCP client failed:\n{printed}\n{notes}\n--- server log (tail) ---\n{}",
        log.lines()
            .filter(|line| !line.contains("TRACE") && !line.trim_start().starts_with("at "))
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    for step in [
        "ok authorized\n",
        // The first grant is the 401's scope: connect and list posts; the list shows no more.
        "ok tools list_posts\n",
        "ok call list_posts\n",
        "ok step-up publishPost\n",
        "ok approved send_payment\n",
    ] {
        assert!(printed.contains(step), "{step}: {printed}\n{notes}");
    }
    assert!(approved.is_some(), "no approval was asked for: {printed}");
    assert!(
        printed.contains(&format!("ok protocol {version}\n")),
        "{version}: {printed}"
    );

    let secrets: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&secrets_out).unwrap()).unwrap();
    assert!(secrets.len() >= 6, "{secrets:?}");
    let stored = std::fs::read(&file).unwrap();
    assert_no_secret_kept(&secrets, &log, &stored);
}
