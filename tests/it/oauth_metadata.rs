//! The metadata documents: every field clients require, one issuer string everywhere, no
//! redirects, JSON errors, CORS.
#![cfg(feature = "oauth")]

use axum::Router;
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use tower_agent_auth::oauth::{AuthorizationServer, ProtectedResource};
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
use tower_agent_auth::token::TokenFormat;

use crate::oauth_support::{ISSUER, OAuth, RESOURCE};

async fn get(app: &Router, uri: &str) -> (StatusCode, http::HeaderMap, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn the_authorization_server_metadata_has_every_required_field() {
    let oauth = OAuth::new().await;
    let (status, headers, doc) = get(&oauth.app, "/.well-known/oauth-authorization-server").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{ISSUER}/oauth/authorize")
    );
    assert_eq!(doc["token_endpoint"], format!("{ISSUER}/oauth/token"));
    assert_eq!(
        doc["registration_endpoint"],
        format!("{ISSUER}/oauth/register")
    );
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{ISSUER}/oauth/introspect")
    );
    assert_eq!(doc["revocation_endpoint"], format!("{ISSUER}/oauth/revoke"));
    assert!(
        !doc["authorization_endpoint"]
            .as_str()
            .unwrap()
            .contains('?')
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        doc["device_authorization_endpoint"],
        format!("{ISSUER}/oauth/device_authorization")
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none", "client_secret_basic", "client_secret_post"])
    );
    assert_eq!(doc["scopes_supported"], serde_json::json!(["notes:read"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    // Nothing is advertised that is not served.
    for absent in [
        "client_id_metadata_document_supported",
        "jwks_uri",
        "userinfo_endpoint",
    ] {
        assert!(doc.get(absent).is_none(), "{absent} is advertised");
    }
}

#[tokio::test]
async fn openid_discovery_is_a_json_404() {
    let oauth = OAuth::new().await;
    let (status, headers, doc) = get(&oauth.app, "/.well-known/openid-configuration").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert_eq!(doc["error"], "not_found");
}

#[tokio::test]
async fn one_issuer_string_everywhere() {
    let oauth = OAuth::new().await;
    let (_, _, server) = get(&oauth.app, "/.well-known/oauth-authorization-server").await;
    let prm = oauth.server.protected_resource(RESOURCE).unwrap().router();
    for uri in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/api",
    ] {
        let (status, _, doc) = get(&prm, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(doc["resource"], RESOURCE);
        assert_eq!(doc["authorization_servers"][0], server["issuer"]);
        assert_eq!(doc["scopes_supported"], serde_json::json!(["notes:read"]));
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
    }
    // The authorization response's `iss`: the same bytes (the flow tests check every one).
    let cookie = oauth.sign_in("alice").await;
    let client = oauth.public_client().await;
    let (_, _) = oauth.authorize(&cookie, &client, "notes:read", None).await;
}

#[tokio::test]
async fn an_issuer_with_a_path_is_served_at_both_well_known_uris() {
    let store = MemoryStore::new(
        TokenFormat::new("acme").unwrap(),
        MemoryUserDirectory::new(),
    );
    let server = AuthorizationServer::new(store, "HTTPS://Auth.Example.com:443/tenant/").unwrap();
    assert_eq!(server.issuer().as_str(), "https://auth.example.com/tenant");
    let app = server.router();
    for uri in [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/oauth-authorization-server",
    ] {
        let (status, _, doc) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(doc["issuer"], "https://auth.example.com/tenant");
        assert_eq!(
            doc["token_endpoint"],
            "https://auth.example.com/tenant/oauth/token"
        );
    }
    // The endpoints live under the issuer's path.
    let response = app
        .clone()
        .oneshot(
            Request::post("/tenant/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("grant_type=authorization_code"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _, _) = get(&app, "/tenant/.well-known/openid-configuration").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metadata_registration_and_token_allow_browser_clients() {
    let oauth = OAuth::new().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/oauth/register",
        "/oauth/token",
        "/oauth/revoke",
    ] {
        let response = oauth
            .app
            .clone()
            .oneshot(
                Request::builder()
                    .method(Method::OPTIONS)
                    .uri(path)
                    .header(header::ORIGIN, "http://localhost:6274")
                    .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                    .header(
                        header::ACCESS_CONTROL_REQUEST_HEADERS,
                        "authorization, content-type, mcp-protocol-version",
                    )
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let headers = response.headers();
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "{path}");
        let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        for wanted in ["authorization", "content-type", "mcp-protocol-version"] {
            assert!(allowed.contains(wanted), "{path}: {allowed}");
        }
    }
}

#[tokio::test]
async fn a_protected_resource_names_its_own_metadata_url() {
    let prm = ProtectedResource::new("http://127.0.0.1:8080/mcp", ISSUER)
        .unwrap()
        .at_root(false);
    assert_eq!(
        prm.metadata_url(),
        "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
    );
    let app = prm.router();
    let (status, _, doc) = get(&app, "/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["resource"], "http://127.0.0.1:8080/mcp");
    let (status, _, _) = get(&app, "/.well-known/oauth-protected-resource").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
