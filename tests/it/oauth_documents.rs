//! Client ID Metadata Documents through the authorization server: the metadata says so; a
//! client known only by its document's URL is shown by its name and its URL's host, consented
//! to, and gets tokens; documents are kept by their `Cache-Control` and never when refused; the
//! token endpoint reads the document again; a revoked document client obtains nothing. The
//! documents are served by a local TLS server the server is told to trust, for tests only.
#![cfg(feature = "client-id-metadata-documents")]

use std::time::Duration;

use http::StatusCode;
use tower_agent_auth::audit::AuditAction;
use tower_agent_auth::oauth::ClientKind;
use tower_agent_auth::oauth::document::DocumentError;

use crate::document_server::{Documents, HOST, Reply};
use crate::oauth_support::{OAuth, RESOURCE};

#[tokio::test]
async fn the_metadata_says_documents_are_supported_only_when_they_are() {
    let documents = Documents::new().await;
    let answer = documents
        .oauth
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert_eq!(answer.json()["client_id_metadata_document_supported"], true);
    let plain = OAuth::new().await;
    let answer = plain
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert!(
        answer
            .json()
            .get("client_id_metadata_document_supported")
            .is_none()
    );
    // Without them, an https client_id is just an unknown client.
    let cookie = plain.sign_in("alice").await;
    let page = plain
        .consent_page(
            &cookie,
            &[
                ("response_type", "code"),
                ("client_id", &documents.url("/client.json")),
                ("redirect_uri", crate::oauth_support::REDIRECT),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("not known"), "{}", page.body);
}

#[tokio::test]
async fn a_client_known_by_its_document_is_consented_to_and_gets_tokens() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let url = documents.serve("/client.json", Some("max-age=600"));
    let oauth = &documents.oauth;
    let cookie = oauth.sign_in("alice").await;

    // The consent page: the document's name and the URL's host, both escaped.
    let page = documents.authorize_page(&cookie, &url).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("Docs &#60;b&#62;search&#60;/b&#62;"),
        "{}",
        page.body
    );
    let host = format!("<strong>{HOST}:{}</strong>", documents.server.port);
    assert!(page.body.contains(&host), "{}", page.body);
    assert!(page.body.contains("metadata document"), "{}", page.body);
    // Nothing is stored before a person consents.
    assert!(oauth.store.client(&url).await.unwrap().is_none());

    let (code, verifier) = oauth.authorize(&cookie, &url, "notes:read", None).await;
    let stored = oauth
        .store
        .client(&url)
        .await
        .unwrap()
        .expect("stored at consent");
    assert_eq!(stored.kind, ClientKind::MetadataDocument);
    assert_eq!(stored.name, "Docs <b>search</b>");
    assert!(stored.secret_hash.is_none());

    let answer = oauth.exchange(&url, &code, &verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let tokens = answer.json();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(oauth.api("/api/notes", access).await, StatusCode::OK);

    // Refresh: the document's client still, by the same URL.
    let refreshed = oauth
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &url),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("resource", RESOURCE),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    // A secret is refused: the client has none.
    let with_secret = oauth
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &url),
                ("client_secret", "guess"),
                (
                    "refresh_token",
                    refreshed.json()["refresh_token"].as_str().unwrap(),
                ),
            ],
            None,
        )
        .await;
    assert_eq!(with_secret.status, StatusCode::UNAUTHORIZED);
    assert_eq!(with_secret.json()["error"], "invalid_client");

    // One fetch served all of it (max-age=600).
    assert_eq!(documents.server.hits("/client.json"), 1);
    let events = oauth.events().await;
    assert!(
        events
            .iter()
            .any(|e| e.action == AuditAction::ClientRegistered
                && e.detail.as_deref().is_some_and(|d| d.contains(&url)))
    );
    oauth.assert_no_secret_leaked().await;
}

/// An authorization request must use a redirect URI the document lists: another gets a page.
#[tokio::test]
async fn a_redirect_uri_the_document_does_not_list_gets_a_page() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let url = documents.serve("/client.json", None);
    let cookie = documents.oauth.sign_in("alice").await;
    let (_, challenge) = crate::oauth_support::pkce();
    let page = documents
        .oauth
        .consent_page(
            &cookie,
            &[
                ("response_type", "code"),
                ("client_id", &url),
                ("redirect_uri", "https://evil.example/cb"),
                ("state", "xyz"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location().is_none());
}

#[tokio::test]
async fn a_document_is_kept_by_its_cache_control_and_an_error_never() {
    let documents = Documents::with(true, |d| {
        d.cache_bounds(Duration::from_millis(300), Duration::from_secs(3600))
    })
    .await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let kept = documents.serve("/kept.json", Some("public, max-age=3600"));
    let brief = documents.serve("/brief.json", Some("no-store"));
    for _ in 0..3 {
        documents.read(&kept).await.unwrap();
        documents.read(&brief).await.unwrap();
    }
    assert_eq!(documents.server.hits("/kept.json"), 1);
    // no-store is kept for the lower bound only.
    assert_eq!(documents.server.hits("/brief.json"), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    documents.read(&kept).await.unwrap();
    documents.read(&brief).await.unwrap();
    assert_eq!(documents.server.hits("/kept.json"), 1);
    assert_eq!(documents.server.hits("/brief.json"), 2);

    // An error is fetched anew at the next request; so is a refused document.
    documents.server.set("/flaky.json", Reply::Status(503));
    let flaky = documents.url("/flaky.json");
    assert_eq!(
        documents.read(&flaky).await.unwrap_err(),
        DocumentError::Status(503)
    );
    documents.serve("/flaky.json", Some("max-age=3600"));
    documents.read(&flaky).await.unwrap();
    documents.read(&flaky).await.unwrap();
    assert_eq!(documents.server.hits("/flaky.json"), 2);
}

/// The token endpoint reads the document again: once it is gone, the client obtains nothing.
#[tokio::test]
async fn the_token_endpoint_reads_the_document_again() {
    let documents = Documents::with(true, |d| d.cache_bounds(Duration::ZERO, Duration::ZERO)).await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let url = documents.serve("/client.json", None);
    let oauth = &documents.oauth;
    let cookie = oauth.sign_in("alice").await;
    let (code, verifier) = oauth.authorize(&cookie, &url, "notes:read", None).await;
    documents.server.set("/client.json", Reply::Status(404));
    let answer = oauth.exchange(&url, &code, &verifier).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert_eq!(answer.json()["error"], "invalid_client");
    assert!(
        answer.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("404"),
        "{}",
        answer.body
    );
}

/// A document's client an operator revoked obtains nothing more, whatever its document says.
#[tokio::test]
async fn a_revoked_document_client_is_refused() {
    let documents = Documents::new().await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let url = documents.serve("/client.json", Some("max-age=600"));
    let oauth = &documents.oauth;
    let cookie = oauth.sign_in("alice").await;
    let (code, verifier) = oauth.authorize(&cookie, &url, "notes:read", None).await;
    oauth.store.revoke_client(&url).await.unwrap();
    let page = documents.authorize_page(&cookie, &url).await;
    Documents::assert_refused_page(&page, "not known");
    let answer = oauth.exchange(&url, &code, &verifier).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"], "invalid_client");
}

/// A changed document is what the next consent shows and keeps.
#[tokio::test]
async fn a_changed_document_updates_the_stored_client_at_the_next_consent() {
    let documents = Documents::with(true, |d| d.cache_bounds(Duration::ZERO, Duration::ZERO)).await;
    documents.script.answer(HOST, &["127.0.0.1"]);
    let url = documents.serve("/client.json", None);
    let oauth = &documents.oauth;
    let cookie = oauth.sign_in("alice").await;
    oauth.authorize(&cookie, &url, "notes:read", None).await;
    let mut renamed = documents.document("/client.json");
    renamed["client_name"] = serde_json::json!("Docs search 2");
    documents
        .server
        .set("/client.json", Reply::Json(renamed.to_string(), None));
    let page = documents.authorize_page(&cookie, &url).await;
    assert!(page.body.contains("Docs search 2"), "{}", page.body);
    oauth.authorize(&cookie, &url, "notes:read", None).await;
    let stored = oauth.store.client(&url).await.unwrap().unwrap();
    assert_eq!(stored.name, "Docs search 2");
    // One connection for the person and this client, however many consents.
    let connections = oauth.store.connections(None).await.unwrap();
    assert_eq!(connections.iter().filter(|c| c.client_id == url).count(), 1);
}
