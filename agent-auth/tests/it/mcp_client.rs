//! The official TypeScript MCP client SDK (`@modelcontextprotocol/client`, run by Node) given
//! only the `/mcp` URL of `serve --demo` (`tests/mcp-client/client.mjs`): a `401` → the
//! resource's metadata → registration → authorization (sign-in and consent as form posts);
//! `tools/list` showing only what the first grant permits; a permitted call; a tool outside the
//! grant → `403 insufficient_scope` → the SDK re-authorizes with the wider scope → the retry
//! succeeds; the critical tool → approval required → approved with the CLI → the retry
//! succeeds. Then no secret the client saw is in the server's log or stored in clear.
//!
//! The same flow runs with the client known by its Client ID Metadata Document instead of
//! registering: the document is served by a local TLS server whose CA `serve` is told to trust
//! through the hidden test switch.
//!
//! Needs Node (`AGENT_AUTH_TEST_NODE`) and `npm ci` run in `tests/mcp-client`; skips with a
//! notice without them, fails under `AGENT_AUTH_REQUIRE_SERVICES=1`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::document_server::DocumentServer;
use crate::support::{assert_no_secret_kept, cli, node, serve_demo_with};

fn client_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp-client")
}

#[test]
fn the_mcp_sdk_connects_steps_up_and_waits_for_approval() {
    the_sdk_runs_the_flow("legacy", "2025-11-25", None);
}

/// The same with the 2026-07-28 transport: `server/discover`, then every request names its
/// method and tool in `Mcp-Method` and `Mcp-Name`.
#[test]
fn the_mcp_sdk_runs_the_flow_with_the_2026_07_28_headers() {
    the_sdk_runs_the_flow("auto", "2026-07-28", None);
}

/// The SDK given a `clientMetadataUrl`: the server's metadata says it supports metadata
/// documents, so the SDK uses the URL as its `client_id` and registers nothing; `serve` fetches
/// the document over TLS (trusting the test CA), the consent page shows the document's host,
/// and the whole flow, step-up and approval included, runs as that client.
#[test]
fn the_mcp_sdk_authorizes_with_a_client_id_metadata_document() {
    let documents = DocumentServer::start("MCP SDK by its metadata document", REDIRECT_URI);
    let ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca.path(), &documents.ca_pem).unwrap();
    let Some((db, dir)) = the_sdk_runs_the_flow(
        "legacy",
        "2025-11-25",
        Some((&documents.url, ca.path().to_str().unwrap())),
    ) else {
        return;
    };
    // Fetched, and kept by its Cache-Control: not at every request.
    let fetches = documents.fetches();
    assert!((1..=3).contains(&fetches), "fetched {fetches} times");
    // The only client is the document's: nothing registered.
    let listed: serde_json::Value =
        serde_json::from_str(&cli(&db, &["--json", "client", "list"])).unwrap();
    let clients = listed.as_array().unwrap();
    let kinds: Vec<(&str, &str)> = clients
        .iter()
        .map(|c| {
            (
                c["client_id"].as_str().unwrap(),
                c["kind"].as_str().unwrap(),
            )
        })
        .filter(|(_, kind)| *kind != "agent")
        .collect();
    assert_eq!(kinds, [(documents.url.as_str(), "metadata_document")]);
    // An operator revokes it by its URL, like any client.
    cli(&db, &["client", "revoke", &documents.url]);
    let shown: serde_json::Value =
        serde_json::from_str(&cli(&db, &["--json", "client", "show", &documents.url])).unwrap();
    assert_eq!(shown["status"], "revoked", "{shown}");
    drop(dir);
}

/// The redirect URI of `client.mjs`.
const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";

/// The flow, with the SDK's version negotiation `mode` (`legacy`: `initialize` and a session,
/// the body alone naming the tool), and with the client known by its metadata document when
/// `document` is `(its URL, the file of the CA that signed its server's certificate)`. The
/// database URL and the directory that holds it, unless the test was skipped.
fn the_sdk_runs_the_flow(
    mode: &str,
    version: &str,
    document: Option<(&str, &str)>,
) -> Option<(String, tempfile::TempDir)> {
    let node = node()?;
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
    let trust: Vec<(&str, &str)> = document
        .map(|(_, ca)| ("AGENT_AUTH_TEST_METADATA_DOCUMENT_CA", ca))
        .into_iter()
        .collect();
    let (mut serve, base, password, log) = serve_demo_with(&db, &trust);

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
        .env("CLIENT_METADATA_URL", document.map_or("", |(url, _)| url))
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
    assert_eq!(
        printed.contains("ok client metadata-document\n"),
        document.is_some(),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("ok protocol {version}\n")),
        "{version}: {printed}"
    );

    let secrets: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&secrets_out).unwrap()).unwrap();
    assert!(secrets.len() >= 6, "{secrets:?}");
    let stored = std::fs::read(&file).unwrap();
    assert_no_secret_kept(&secrets, &log, &stored);
    Some((db, dir))
}
