//! Dynamic client registration (RFC 7591): 201 with the fields clients require, a secret shown
//! once, RFC errors, and the bounds — a rate limit per address, a cap.
#![cfg(feature = "oauth")]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;
use tower_agent_auth::store::Backend as _;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode, header};
use serde_json::json;
use tower_agent_auth::oauth::{ClientAuth, RegistrationLimits};
use tower_agent_auth::token::TokenHash;

use crate::oauth_support::{OAuth, REDIRECT};

#[tokio::test]
async fn a_confidential_registration_gets_every_field_and_its_secret_once() {
    let oauth = OAuth::new().await;
    let answer = oauth
        .register(json!({
            "client_name": "Inspector",
            "redirect_uris": [REDIRECT, "https://app.example.com/cb"],
            "scope": "notes:read notes:write",
        }))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
    let body = answer.json();
    let id = body["client_id"].as_str().unwrap();
    assert!(id.starts_with("c_"), "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );
    // Omitted → client_secret_basic (RFC 7591 §2), always echoed.
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        body["redirect_uris"],
        json!([REDIRECT, "https://app.example.com/cb"])
    );
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["scope"], "notes:read notes:write");
    assert!(body["client_id_issued_at"].is_i64());
    assert_eq!(body["client_secret_expires_at"], 0);
    let secret = body["client_secret"].as_str().unwrap();
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    );

    // Kept only as its hash; never shown again.
    let stored = oauth.store.backend().client(id).await.unwrap().unwrap();
    assert_eq!(stored.auth, ClientAuth::SecretBasic);
    assert_eq!(stored.secret_hash, Some(TokenHash::of(secret)));
    assert!(!format!("{stored:?}").contains(secret));
    let metadata = oauth
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert!(!metadata.body.contains(secret));
}

#[tokio::test]
async fn a_public_native_client_gets_no_secret() {
    let oauth = OAuth::new().await;
    let answer = oauth
        .register(json!({
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert!(body.get("client_secret").is_none());
    assert!(body.get("client_secret_expires_at").is_none());
    assert_eq!(
        body["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
}

#[tokio::test]
async fn bad_metadata_gets_rfc_7591_errors() {
    let oauth = OAuth::new().await;
    for (metadata, code) in [
        (
            json!({"redirect_uris": ["https://app.example.com/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://app.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://user@app.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (json!("not an object"), "invalid_client_metadata"),
    ] {
        let answer = oauth.register(metadata.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{metadata}");
        assert_eq!(answer.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(answer.json()["error"], code, "{metadata}");
    }
}

async fn register_from(oauth: &OAuth, address: [u8; 4]) -> StatusCode {
    let mut request = Request::post("/oauth/register")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}).to_string(),
        ))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((address, 40000))));
    let answer = oauth.call(request).await;
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        assert_eq!(answer.json()["error"], "slow_down");
        assert!(answer.headers.contains_key(header::RETRY_AFTER));
    }
    answer.status
}

#[tokio::test]
async fn a_flood_from_one_address_is_429_and_others_still_register() {
    let oauth = OAuth::configured(|server| {
        server.registration_limits(RegistrationLimits {
            per_address: NonZeroU32::new(3).unwrap(),
            window: Duration::from_secs(3600),
            ..RegistrationLimits::default()
        })
    })
    .await;
    let flooder = [203, 0, 113, 7];
    for _ in 0..3 {
        assert_eq!(register_from(&oauth, flooder).await, StatusCode::CREATED);
    }
    for _ in 0..5 {
        assert_eq!(
            register_from(&oauth, flooder).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        register_from(&oauth, [198, 51, 100, 1]).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn past_the_cap_registration_is_closed_until_registrations_lapse() {
    let oauth = OAuth::configured(|server| {
        server.registration_limits(RegistrationLimits {
            cap: Some(2),
            unused_for: Duration::from_secs(600),
            ..RegistrationLimits::default()
        })
    })
    .await;
    let address = [192, 0, 2, 1];
    assert_eq!(register_from(&oauth, address).await, StatusCode::CREATED);
    assert_eq!(register_from(&oauth, address).await, StatusCode::CREATED);
    let answer = oauth
        .register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["error"], "temporarily_unavailable");
    // Unused, they lapse; then there is room again.
    oauth.clock.advance(Duration::from_secs(601));
    assert_eq!(register_from(&oauth, address).await, StatusCode::CREATED);
}

#[tokio::test]
async fn registration_is_audited_without_the_secret() {
    let oauth = OAuth::new().await;
    let answer = oauth.register(json!({"redirect_uris": [REDIRECT]})).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let events = oauth.events().await;
    let event = events
        .iter()
        .find(|e| e.action.as_str() == "client_registered")
        .expect("audited");
    let id = answer.json()["client_id"].as_str().unwrap().to_owned();
    assert!(event.detail.as_deref().unwrap().contains(&id));
    oauth.assert_no_secret_leaked().await;
}
