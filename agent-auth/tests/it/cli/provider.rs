//! `provider-token list|delete` on each database (metadata only, never a sealed value; deletion
//! audited), and `serve`'s callback flags refused in one line when they cannot work.

use tower_agent_auth::oauth::callback::{ProviderToken, Sealed};
use tower_agent_auth::store::{Backend, MemoryUserDirectory, PgStore, SqliteStore, StoreConfig};
use tower_agent_auth::token::TokenFormat;

use super::*;

/// Keeps a provider token for `agent` as the server's receiver would, sealed bytes included.
fn keep(db: &Db, agent: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = StoreConfig::new(
            TokenFormat::new("agent").unwrap(),
            MemoryUserDirectory::new(),
        )
        .run_migrations(false);
        let now = time::OffsetDateTime::now_utc();
        let mut token = ProviderToken::new(
            "ptk_cli_1",
            "github",
            agent.into(),
            "alice".into(),
            now,
            "bearer",
            Sealed::from_bytes(b"OPAQUE-SEALED-ACCESS".to_vec()),
        );
        token.scopes = vec!["repo".into()];
        token.refresh = Some(Sealed::from_bytes(b"OPAQUE-SEALED-REFRESH".to_vec()));
        if db.url.starts_with("sqlite") {
            let store = SqliteStore::open(&db.url, config).await.unwrap();
            store.backend().put_provider_token(&token).await.unwrap();
        } else {
            let store = PgStore::connect(&db.url, config).await.unwrap();
            store.backend().put_provider_token(&token).await.unwrap();
        }
    });
}

on_each_database!(provider_tokens("cli_provider_tokens"));

fn provider_tokens(db: &Db) {
    seed(db);
    let listed = cli(db, &["provider-token", "list"]).ok();
    assert_eq!(listed.stdout.trim(), "(none)");
    let agent = cli(db, &["--json", "agent", "show", "writer"]).ok().json();
    keep(db, agent["id"].as_str().unwrap());

    let listed = cli(
        db,
        &["--json", "provider-token", "list", "--agent", "writer"],
    )
    .ok()
    .json();
    assert_eq!(listed[0]["id"], "ptk_cli_1");
    assert_eq!(listed[0]["agent"], "writer");
    assert_eq!(listed[0]["provider"], "github");
    assert_eq!(listed[0]["connected_by"], "alice");
    assert_eq!(listed[0]["scopes"], serde_json::json!(["repo"]));
    assert_eq!(listed[0]["refreshable"], true);
    let table = cli(db, &["provider-token", "list"]).ok();
    for output in [listed.to_string(), table.stdout.clone()] {
        assert!(
            !output.contains("OPAQUE"),
            "a sealed value is shown: {output}"
        );
    }
    assert!(table.stdout.contains("ptk_cli_1") && table.stdout.contains("writer"));
    cli(db, &["provider-token", "list", "--agent", "nobody"]).fails_with("unknown agent");

    cli(
        db,
        &["provider-token", "delete", "ptk_cli_1", "--as", "bob"],
    )
    .ok();
    cli(db, &["provider-token", "delete", "ptk_cli_1"]).fails_with("no provider token ptk_cli_1");
    let trail = cli(db, &["--json", "audit", "writer"]).ok().json();
    let deleted = trail
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "provider_disconnected")
        .expect("the deletion is audited");
    assert_eq!(deleted["actor"], "bob");
}

#[test]
fn serve_refuses_callback_flags_that_cannot_work_in_one_line() {
    let db = Db::sqlite();
    seed(&db);
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let good = file(
        "good.json",
        r#"[{"name":"fake","authorize_url":"https://p.example/a","token_url":"https://p.example/t",
            "client_id":"c","client_secret":"s","redirect_uri":"https://app.example/connect/fake/cb"}]"#,
    );
    let plain_http = file(
        "http.json",
        r#"[{"name":"fake","authorize_url":"http://p.example/a","token_url":"https://p.example/t",
            "client_id":"c","redirect_uri":"https://app.example/cb"}]"#,
    );
    let unset = file(
        "unset.json",
        r#"[{"name":"fake","authorize_url":"https://p.example/a","token_url":"https://p.example/t",
            "client_id":"c","client_secret_env":"AGENT_AUTH_TEST_UNSET_SECRET",
            "redirect_uri":"https://app.example/cb"}]"#,
    );
    let key = "ab".repeat(32);
    for (flags, named) in [
        (
            vec!["--callback-providers", good.as_str()],
            "needs --callback-key",
        ),
        (
            vec!["--callback-key", key.as_str()],
            "--callback-key needs --callback-providers",
        ),
        (
            vec![
                "--callback-providers",
                good.as_str(),
                "--callback-key",
                "abc",
            ],
            "64 hex digits",
        ),
        (
            vec![
                "--callback-providers",
                plain_http.as_str(),
                "--callback-key",
                key.as_str(),
            ],
            "authorize_url: https",
        ),
        (
            vec![
                "--callback-providers",
                unset.as_str(),
                "--callback-key",
                key.as_str(),
            ],
            "AGENT_AUTH_TEST_UNSET_SECRET is not set",
        ),
        (
            vec![
                "--callback-providers",
                "/nonexistent.json",
                "--callback-key",
                key.as_str(),
            ],
            "--callback-providers /nonexistent.json",
        ),
    ] {
        let args: Vec<&str> = ["serve", "--listen", "127.0.0.1:0"]
            .into_iter()
            .chain(flags)
            .collect();
        cli(&db, &args).fails_with(named);
    }
}
