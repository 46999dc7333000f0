//! The callback receiver, end to end against a fake provider: a full connection stores the
//! token sealed and lists it without it; a forged, a replayed and another session's `state` are
//! each refused (400) and audited; only an agent's owner or admin may connect it; no secret
//! reaches a URL, a log line at TRACE or the audit trail; and on SQLite and PostgreSQL no
//! token is in the database in clear.
#![cfg(all(feature = "callback", feature = "testing"))]

use http::{StatusCode, header};
use tower_agent_auth::audit::{AuditAction, AuditEvent, Outcome};
use tower_agent_auth::store::{Backend, MemoryStore};
use tower_agent_auth::token::TokenFormat;

use crate::callback_support::{ACCESS, App, CALLBACK, CLIENT_SECRET, Logs, REFRESH, users};

async fn memory_app() -> App<tower_agent_auth::store::MemoryBackend> {
    let users = users();
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    App::new(store, users).await
}

/// The refusals of callbacks in the trail: their details.
fn refusals(events: &[AuditEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.action == AuditAction::CallbackRefused)
        .inspect(|e| assert_eq!(e.outcome, Outcome::Denied))
        .map(|e| e.detail.clone().unwrap_or_default())
        .collect()
}

/// No secret in any of `texts`.
fn clean<B: Backend>(app: &App<B>, what: &str, texts: &[String]) {
    let mut secrets = vec![
        ACCESS.to_owned(),
        REFRESH.to_owned(),
        CLIENT_SECRET.to_owned(),
    ];
    secrets.extend(app.fake.lock().unwrap().verifiers.iter().cloned());
    for text in texts {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} holds a secret: {text}"
            );
        }
    }
}

#[tokio::test]
async fn a_full_connection_keeps_the_token_sealed_and_lists_it_without_it() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let app = memory_app().await;
    let alice = app.sign_in("alice").await;
    let start = app.start(Some(&alice), "writer").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let location = url::Url::parse(start.location()).unwrap();
    let asked: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["scope"], "repo read:user");
    assert_eq!(
        asked["redirect_uri"],
        format!("http://127.0.0.1:8080{CALLBACK}")
    );
    assert!(!asked.contains_key("code_verifier") && !asked.contains_key("client_secret"));
    assert_eq!(start.headers[header::CACHE_CONTROL], "no-store");

    let back = app.at_provider(&start).await;
    let answer = app.callback(&back, Some(&alice)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(
        answer.body.contains("connected to <strong>fake</strong>"),
        "{}",
        answer.body
    );
    assert_eq!(answer.headers[header::REFERRER_POLICY], "no-referrer");
    {
        let seen = app.fake.lock().unwrap();
        assert_eq!(
            seen.exchanges, 1,
            "PKCE checked by the provider: {:?}",
            seen.refusals
        );
        assert_eq!(seen.verifiers.len(), 1);
    }

    // Listed: metadata, never the token.
    let (status, listed) = app.json("/api/agents/writer/provider-tokens", &alice).await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    let token = &listed[0];
    assert_eq!(token["provider"], "fake");
    assert_eq!(token["agent"], "writer");
    assert_eq!(token["connected_by"], "alice");
    assert_eq!(token["scopes"], serde_json::json!(["repo", "read:user"]));
    assert_eq!(token["refreshable"], true);
    assert!(token["expires_at"].is_string() && token["connected_at"].is_string());
    let (_, every) = app.json("/api/provider-tokens", &alice).await;
    assert_eq!(every.as_array().unwrap().len(), 1);
    let (_, providers) = app.json("/api/providers", &alice).await;
    assert_eq!(providers[0]["name"], "fake");
    let listings = vec![
        serde_json::Value::Array(listed.clone()).to_string(),
        every.to_string(),
        providers.to_string(),
    ];
    clean(&app, "a listing", &listings);

    // Kept sealed: the record holds no token; the application opens it with the key.
    let id = token["id"].as_str().unwrap();
    let stored = app
        .store
        .backend()
        .provider_token(id)
        .await
        .unwrap()
        .unwrap();
    clean(&app, "the record", &[format!("{stored:?}")]);
    for sealed in [
        stored.access.as_bytes(),
        stored.refresh.as_ref().unwrap().as_bytes(),
    ] {
        for secret in [ACCESS, REFRESH] {
            assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }
    let credentials = app.receiver.credentials(id).await.unwrap().unwrap();
    assert_eq!(credentials.access_token(), ACCESS);
    assert_eq!(credentials.refresh_token(), Some(REFRESH));
    clean(&app, "Credentials' Debug", &[format!("{credentials:?}")]);

    // The trail: started and connected, no secret.
    let events = app.events().await;
    let actions: Vec<AuditAction> = events.iter().map(|e| e.action).collect();
    assert!(actions.contains(&AuditAction::ProviderAuthorizationStarted));
    assert!(actions.contains(&AuditAction::ProviderConnected));
    clean(
        &app,
        "the audit trail",
        &events.iter().map(|e| format!("{e:?}")).collect::<Vec<_>>(),
    );
    // No secret in a URL: only the code travelled in one, in its one redirect.
    let urls = app.urls.lock().unwrap().clone();
    let provider_urls = app.fake.lock().unwrap().urls.clone();
    clean(&app, "a URL", &urls);
    clean(&app, "a URL the provider saw", &provider_urls);
    tracing::trace!("the capture sees TRACE");
    assert!(logs.text().contains("the capture sees TRACE"));
    clean(&app, "a log line at TRACE", &[logs.text()]);
    // The state is not kept either: only its hash.
    assert!(!format!("{stored:?}").contains(&asked["state"]));

    // Disconnecting: an admin deletes it; it is gone from the listing.
    let carol = app.sign_in("carol").await;
    let deleted = app
        .call(
            http::Request::delete(format!("/api/agents/writer/provider-tokens/{id}"))
                .header(header::COOKIE, &carol)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let (_, listed) = app.json("/api/agents/writer/provider-tokens", &alice).await;
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test]
async fn a_forged_state_is_refused_and_audited() {
    let app = memory_app().await;
    let alice = app.sign_in("alice").await;
    // Never issued, though well formed; and none at all.
    let forged =
        format!("{CALLBACK}?code=code-1&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let answer = app.callback(&forged, Some(&alice)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer
            .body
            .contains("does not answer a connection started from this server")
    );
    let answer = app
        .callback(&format!("{CALLBACK}?code=code-1"), Some(&alice))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // A state of this server for another provider's callback would be refused too; here,
    // what Data Machine's receiver stored — a token posted by anyone — is not even asked for.
    let answer = app
        .callback(&format!("{CALLBACK}?access_token={ACCESS}&state=x"), None)
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let refused = refusals(&app.events().await);
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused[0].contains("a state this server did not issue"),
        "{refused:?}"
    );
    assert!(refused[1].contains("no state"), "{refused:?}");
    assert_eq!(
        app.fake.lock().unwrap().urls.len(),
        0,
        "the provider was never called"
    );
    assert!(
        app.store
            .backend()
            .provider_tokens(None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_replayed_state_is_refused_and_audited() {
    let app = memory_app().await;
    let alice = app.sign_in("alice").await;
    let (answer, back) = app.connect(&alice).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let kept = app.store.backend().provider_tokens(None).await.unwrap();
    let again = app.callback(&back, Some(&alice)).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("answered already"), "{}", again.body);
    let refused = refusals(&app.events().await);
    assert_eq!(refused.len(), 1);
    assert!(refused[0].contains("a state used before"), "{refused:?}");
    assert_eq!(
        app.fake.lock().unwrap().exchanges,
        1,
        "the code was not sent again"
    );
    assert_eq!(
        app.store.backend().provider_tokens(None).await.unwrap(),
        kept
    );
}

#[tokio::test]
async fn another_sessions_state_is_refused_and_audited() {
    let app = memory_app().await;
    let alice = app.sign_in("alice").await;
    let start = app.start(Some(&alice), "writer").await;
    let back = app.at_provider(&start).await;
    // Carol (an admin of the agent too) is tricked into following alice's callback; so is
    // alice herself in another session, and a browser signed in as no one.
    let carol = app.sign_in("carol").await;
    let answer = app.callback(&back, Some(&carol)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("another session"), "{}", answer.body);
    // The state is spent by the attempt: alice's own session cannot use it now.
    let answer = app.callback(&back, Some(&alice)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    let start = app.start(Some(&alice), "writer").await;
    let back = app.at_provider(&start).await;
    let alice_elsewhere = app.sign_in("alice").await;
    assert_ne!(alice_elsewhere, alice);
    let answer = app.callback(&back, Some(&alice_elsewhere)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let start = app.start(Some(&alice), "writer").await;
    let back = app.at_provider(&start).await;
    assert_eq!(
        app.callback(&back, None).await.status,
        StatusCode::BAD_REQUEST
    );

    let events = app.events().await;
    let refused = refusals(&events);
    assert_eq!(refused.len(), 4, "{refused:?}");
    for (i, expected) in [
        "a state issued to another session",
        "a state used before",
        "a state issued to another session",
        "a state issued to another session",
    ]
    .iter()
    .enumerate()
    {
        assert!(refused[i].contains(expected), "{i}: {refused:?}");
    }
    let carols = events
        .iter()
        .find(|e| e.action == AuditAction::CallbackRefused)
        .unwrap();
    assert_eq!(carols.actor.as_ref().map(|u| u.as_str()), Some("carol"));
    assert_eq!(carols.agent.as_ref(), Some(&app.agent.id));
    assert_eq!(
        app.fake.lock().unwrap().exchanges,
        0,
        "no code was exchanged"
    );
    assert!(
        app.store
            .backend()
            .provider_tokens(None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn only_an_agents_owner_or_admin_starts_a_connection() {
    let app = memory_app().await;
    let bob = app.sign_in("bob").await;
    let answer = app.start(Some(&bob), "writer").await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let carol = app.sign_in("carol").await;
    assert_eq!(
        app.start(Some(&carol), "writer").await.status,
        StatusCode::SEE_OTHER
    );
    // Without a session there is no form token to send: refused as a forged form.
    assert_eq!(
        app.start(None, "writer").await.status,
        StatusCode::FORBIDDEN
    );
    let alice = app.sign_in("alice").await;
    assert_eq!(
        app.start(Some(&alice), "nobody").await.status,
        StatusCode::NOT_FOUND
    );
    // An agent token is not a person.
    let token = app.agent_token().await;
    let answer = app
        .call(
            http::Request::post("/connect/fake")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from("agent=writer"))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // A post from another site, with alice's cookie, is refused before anything is kept.
    let answer = app
        .call(
            http::Request::post("/connect/fake")
                .header(header::COOKIE, &alice)
                .header("sec-fetch-site", "cross-site")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from("agent=writer"))
                .unwrap(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // From this site, but without the form's token or with another session's: refused too.
    let bobs = bob.split_once('=').unwrap().1;
    let bobs = tower_agent_auth::server::FormToken::for_secret(bobs);
    for body in [
        "agent=writer".to_owned(),
        format!("agent=writer&csrf={}", bobs.as_str()),
    ] {
        let answer = app
            .call(
                http::Request::post("/connect/fake")
                    .header(header::COOKIE, &alice)
                    .header("sec-fetch-site", "same-origin")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(axum::body::Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    }
    // Bob may not list the agent's tokens either.
    let (status, _) = app.json("/api/agents/writer/provider-tokens", &bob).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let events = app.events().await;
    let denied: Vec<&AuditEvent> = events
        .iter()
        .filter(|e| {
            e.action == AuditAction::ProviderAuthorizationStarted && e.outcome == Outcome::Denied
        })
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].actor.as_ref().map(|u| u.as_str()), Some("bob"));
}

#[tokio::test]
async fn a_provider_that_refuses_leaves_nothing_kept() {
    let app = memory_app().await;
    let alice = app.sign_in("alice").await;
    // The person said no at the provider.
    let start = app.start(Some(&alice), "writer").await;
    let state = url::Url::parse(start.location())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let answer = app
        .callback(
            &format!("{CALLBACK}?error=access_denied&state={state}"),
            Some(&alice),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // The token endpoint will not exchange the code.
    app.fake.lock().unwrap().refuse_all = true;
    let (answer, _) = app.connect(&alice).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    let refused = refusals(&app.events().await);
    assert!(
        refused[0].contains("the provider answered access_denied"),
        "{refused:?}"
    );
    assert!(
        refused[1].contains("refused the code: invalid_grant"),
        "{refused:?}"
    );
    assert!(
        app.store
            .backend()
            .provider_tokens(None)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A connection on `store`: the application, after it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
async fn connect_on<B: Backend>(
    store: tower_agent_auth::store::Store<B>,
    users: tower_agent_auth::store::MemoryUserDirectory,
) -> App<B> {
    let app = App::new(store, users).await;
    let alice = app.sign_in("alice").await;
    let (answer, _) = app.connect(&alice).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    app
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn no_token_is_in_the_sqlite_file_in_clear() {
    let users = users();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent-auth.db");
    let clock = tower_agent_auth::testing::clock();
    let config = tower_agent_auth::testing::config(&users, &clock);
    let store = tower_agent_auth::store::SqliteStore::open(&path.display().to_string(), config)
        .await
        .unwrap();
    let app = connect_on(store.clone(), users).await;
    let verifier = app.fake.lock().unwrap().verifiers[0].clone();
    // Everything written: the file and its write-ahead log, checkpointed.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        dump.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let contains = |needle: &str| dump.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        contains("ptk_") && contains("read:user"),
        "the dump holds the record"
    );
    for secret in [ACCESS, REFRESH, CLIENT_SECRET, verifier.as_str()] {
        assert!(!contains(secret), "{secret} is in the SQLite file in clear");
    }
    let listed = app.store.backend().provider_tokens(None).await.unwrap();
    let credentials = app
        .receiver
        .credentials(&listed[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(credentials.access_token(), ACCESS);
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn no_token_is_in_the_postgresql_tables_in_clear() {
    let users = users();
    let clock = tower_agent_auth::testing::clock();
    let Some((store, cleanup)) = crate::store_postgres::open(users.clone(), clock).await else {
        return;
    };
    let app = connect_on(store.clone(), users).await;
    let verifier = app.fake.lock().unwrap().verifiers[0].clone();
    // Every row as text (bytea as hex), and every bytea column's raw bytes.
    let mut dump: Vec<u8> = Vec::new();
    for (table, bytes) in [
        (
            "agent_auth_provider_tokens",
            "access || COALESCE(refresh, ''::bytea)",
        ),
        ("agent_auth_callback_states", "verifier || session || hash"),
    ] {
        let rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as(&format!("SELECT t::text, {bytes} FROM {table} t"))
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(rows.len(), 1, "{table}");
        for (text, raw) in rows {
            dump.extend(text.into_bytes());
            dump.extend(raw);
        }
    }
    let contains = |needle: &str| dump.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(
        contains("read:user") && contains("ptk_"),
        "the dump holds the record"
    );
    for secret in [ACCESS, REFRESH, CLIENT_SECRET, verifier.as_str()] {
        assert!(!contains(secret), "{secret} is in PostgreSQL in clear");
    }
    cleanup.await;
}

#[tokio::test]
async fn a_link_shows_the_button_and_keeps_nothing() {
    let app = memory_app().await;
    let alice = app.sign_in("alice").await;
    let page = app
        .callback("/connect/fake?agent=writer", Some(&alice))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains(r#"<form method="post" action="/connect/fake">"#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"name="agent" value="writer""#));
    assert_eq!(
        page.headers[header::CONTENT_SECURITY_POLICY],
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
         connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let signed_out = app.callback("/connect/fake?agent=writer", None).await;
    assert_eq!(signed_out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        signed_out.location(),
        "/login?return=%2Fconnect%2Ffake%3Fagent%3Dwriter"
    );
    let bob = app.sign_in("bob").await;
    let denied = app.callback("/connect/fake?agent=writer", Some(&bob)).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let hostile = app
        .callback("/connect/fake?agent=%22%3E%3Cscript%3E", Some(&alice))
        .await;
    assert_eq!(hostile.status, StatusCode::NOT_FOUND);
    assert!(!hostile.body.contains("<script>"));
    // Nothing was started: no event, and the provider saw nothing.
    let events = app.events().await;
    assert!(
        events
            .iter()
            .all(|e| e.action != AuditAction::ProviderAuthorizationStarted),
        "{events:?}"
    );
    assert!(app.fake.lock().unwrap().urls.is_empty());
}
