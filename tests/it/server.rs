//! The server routers on a real `axum::Router`: login sets a safe session cookie, management
//! needs a signed-in user with the right role, and answers are JSON with the right status.
#![cfg(feature = "server")]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::principal::UserId;
use tower_agent_auth::server::{
    ManageState, PasswordVerifier, Sessions, hash_password, login_router, manage_router,
    verify_password,
};
use tower_agent_auth::store::{
    MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserDirectory, UserRecord,
};
use tower_agent_auth::token::TokenFormat;

/// alice and mallory, both with the password "pw".
struct Passwords(String);

#[async_trait::async_trait]
impl PasswordVerifier for Passwords {
    async fn verify(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Option<UserId>, tower_agent_auth::error::BoxError> {
        Ok(
            (["alice", "mallory"].contains(&user) && verify_password(&self.0, password))
                .then(|| UserId::from(user)),
        )
    }
}

async fn app() -> (Router, MemoryStore) {
    let users = MemoryUserDirectory::new();
    for user in ["alice", "mallory"] {
        users.insert(UserRecord::new(user, Policy::unrestricted()));
    }
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let directory: Arc<dyn UserDirectory> = Arc::new(users);
    let sessions = Sessions::new(directory, Duration::from_secs(3600));
    let verifier = Arc::new(Passwords(hash_password("pw").unwrap()));
    let app = Router::new()
        .merge(login_router(sessions.clone(), verifier, false))
        .merge(manage_router(ManageState {
            store: store.clone(),
            audit: None,
        }))
        .layer(
            AgentAuthLayer::new(store.clone())
                .optional()
                .with_session_resolver(sessions),
        );
    (app, store)
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

async fn sign_in(app: &Router, user: &str, password: &str) -> Option<String> {
    let fields = [("user", user), ("password", password)];
    let request = crate::page_forms::sign_in_request(app, &fields).await;
    let (status, headers, _) = call(app, request).await;
    if status != StatusCode::SEE_OTHER {
        return None;
    }
    let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    Some(cookie.split(';').next().unwrap().to_owned())
}

fn with_cookie(request: http::request::Builder, cookie: &str) -> http::request::Builder {
    request.header(header::COOKIE, cookie)
}

#[tokio::test]
async fn a_wrong_password_gets_no_session() {
    let (app, _) = app().await;
    assert!(sign_in(&app, "alice", "nope").await.is_none());
    assert!(sign_in(&app, "nobody", "pw").await.is_none());
}

#[tokio::test]
async fn the_owner_issues_a_token_through_the_api() {
    let (app, store) = app().await;
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    let request = with_cookie(Request::post("/api/agents/writer/tokens"), &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"label": "api", "expires_in_seconds": 600}).to_string(),
        ))
        .unwrap();
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["token"].as_str().unwrap().starts_with("acme_writer_"));
    assert_eq!(body["info"]["created_by"], "alice");
    let agent = store.agent_by_slug("writer").await.unwrap().unwrap();
    assert_eq!(store.list_tokens(&agent.id).await.unwrap().len(), 1);

    let list = with_cookie(Request::get("/api/agents/writer/tokens"), &cookie)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&app, list).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body[0].get("token").is_none(), "lists never show a secret");
}

#[tokio::test]
async fn another_user_without_a_grant_is_forbidden() {
    let (app, _) = app().await;
    let cookie = sign_in(&app, "mallory", "pw").await.unwrap();
    let request = with_cookie(Request::post("/api/agents/writer/disable"), &cookie)
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");
    let (status, _, body) = call(
        &app,
        with_cookie(Request::get("/api/agents"), &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!([])),
        "nothing visible"
    );
}

#[tokio::test]
async fn an_agent_token_cannot_manage() {
    let (app, store) = app().await;
    let agent = store.agent_by_slug("writer").await.unwrap().unwrap();
    let issued = store
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap();
    let request = Request::post("/api/agents/writer/tokens")
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", issued.token.expose_secret()),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"label": "escalate"}).to_string()))
        .unwrap();
    let (status, _, _) = call(&app, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(store.list_tokens(&agent.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_agents_are_404_and_bad_input_422() {
    let (app, _) = app().await;
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    let (status, _, _) = call(
        &app,
        with_cookie(Request::get("/api/agents/ghost"), &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let request = with_cookie(Request::put("/api/agents/writer/grants/mallory"), &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"role": "emperor"}).to_string()))
        .unwrap();
    let (status, _, _) = call(&app, request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn no_session_no_management() {
    let (app, _) = app().await;
    let (status, _, _) = call(
        &app,
        Request::get("/api/agents").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Signing out without a session: the sign-out page's pre-session cookie and its token.
    let page = call(&app, Request::get("/logout").body(Body::empty()).unwrap()).await;
    let pre_session = page.1[header::SET_COOKIE].to_str().unwrap();
    let pre_session = pre_session.split(';').next().unwrap();
    let logout = crate::page_forms::form_post("/logout", pre_session, &[]);
    let (status, headers, _) = call(&app, logout).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn logging_out_ends_the_session() {
    let (app, _) = app().await;
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    let me = |cookie: &str| {
        with_cookie(Request::get("/api/me"), cookie)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&app, me(&cookie)).await.0, StatusCode::OK);
    let logout = crate::page_forms::form_post("/logout", &cookie, &[]);
    assert_eq!(call(&app, logout).await.0, StatusCode::SEE_OTHER);
    assert_eq!(call(&app, me(&cookie)).await.0, StatusCode::UNAUTHORIZED);
}

fn post_json(path: &str, cookie: &str, body: Value) -> Request<Body> {
    with_cookie(Request::post(path), cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn a_misspelled_field_is_refused_naming_it_and_mints_nothing() {
    let (app, store) = app().await;
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    let body = json!({"label": "x", "capabilites": ["posts:read"], "expires_in": 60});
    let request = post_json("/api/agents/writer/tokens", &cookie, body);
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "invalid");
    assert!(
        body["message"].as_str().unwrap().contains("capabilites"),
        "{body}"
    );
    let agent = store.agent_by_slug("writer").await.unwrap().unwrap();
    assert!(store.list_tokens(&agent.id).await.unwrap().is_empty());
    for (path, body) in [
        ("/api/agents", json!({"slug": "b", "scope": ["a"]})),
        (
            "/api/agents/writer/tokens/tok_x/rotate",
            json!({"grace": 5}),
        ),
    ] {
        let (status, _, body) = call(&app, post_json(path, &cookie, body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["error"], "invalid", "{path}: JSON, not plain text");
    }
    // Not JSON at all: still a JSON error.
    let request = with_cookie(Request::post("/api/agents"), &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{"))
        .unwrap();
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "malformed");
}

#[tokio::test]
async fn an_agent_with_too_many_scopes_is_refused() {
    let (app, store) = app().await;
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    let scopes: Vec<String> = (0..150_000).map(|n| format!("scope{n}")).collect();
    let body = json!({"slug": "big", "scopes": scopes});
    let (status, _, body) = call(&app, post_json("/api/agents", &cookie, body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most 64"));
    assert!(store.agent_by_slug("big").await.unwrap().is_none());
}

#[tokio::test]
async fn errors_name_the_agent_by_its_slug() {
    let (app, _) = app().await;
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    let request = with_cookie(
        Request::delete("/api/agents/writer/tokens/tok_nope"),
        &cookie,
    )
    .body(Body::empty())
    .unwrap();
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("\"writer\""), "{message}");
    assert!(!message.contains("agt_"), "{message}");
}

#[tokio::test]
async fn the_audit_trail_takes_a_duration_ago_as_on_the_command_line() {
    let (app, _) = app().await;
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    for (query, expected) in [
        ("since=1h", StatusCode::OK),
        ("since=2026-01-01T00:00:00Z&until=30d", StatusCode::OK),
        ("since=1h&last=2", StatusCode::OK),
        ("last=10001", StatusCode::UNPROCESSABLE_ENTITY),
        ("since=yesterday", StatusCode::UNPROCESSABLE_ENTITY),
        ("sinse=1h", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let request = with_cookie(
            Request::get(format!("/api/agents/writer/audit?{query}")),
            &cookie,
        )
        .body(Body::empty())
        .unwrap();
        let (status, _, body) = call(&app, request).await;
        assert_eq!(status, expected, "{query}: {body}");
    }
}

#[tokio::test]
async fn an_agents_policy_is_replaced_through_the_api() {
    let (app, store) = app().await;
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    let put = |cookie: &str, body: Value| {
        with_cookie(Request::put("/api/agents/writer/policy"), cookie)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let body = json!({"allow": ["posts:*"], "deny": ["posts:delete"]});
    let (status, _, body) = call(&app, put(&cookie, body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["policy"]["allow"], json!(["posts:*"]));
    assert_eq!(body["policy"]["deny"], json!(["posts:delete"]));
    let agent = store.agent_by_slug("writer").await.unwrap().unwrap();
    assert!(agent.policy.denied().matches("posts:delete"));

    let mallory = sign_in(&app, "mallory", "pw").await.unwrap();
    let (status, _, _) = call(&app, put(&mallory, json!({"allow": null}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&app, put(&cookie, json!({"alow": ["x:y"]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A forgotten `allow` never widens the agent to everything.
    for body in [json!({}), json!({"deny": ["posts:delete"]})] {
        let (status, _, body) = call(&app, put(&cookie, body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("allow"),
            "{body}"
        );
    }
    let (status, _, _) = call(&app, put(&cookie, json!({"allow": ["Not A Cap"]}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let agent = store.agent_by_slug("writer").await.unwrap().unwrap();
    assert_eq!(agent.policy.allowed().unwrap().to_strings(), ["posts:*"]);
}

/// The landing page escapes what it shows: a host's user ids may hold anything.
#[tokio::test]
async fn the_landing_page_escapes_the_user() {
    use tower_agent_auth::server::Pages;
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("<i>eve</i>", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    let directory: Arc<dyn UserDirectory> = Arc::new(users);
    let sessions = Sessions::new(directory, Duration::from_secs(3600));
    let secret = sessions.start(UserId::from("<i>eve</i>")).await.unwrap();
    let app = Pages::new(ManageState {
        store: store.clone(),
        audit: None,
    })
    .router()
    .layer(
        AgentAuthLayer::new(store)
            .optional()
            .with_session_resolver(sessions),
    );
    let request = Request::get("/")
        .header(header::COOKIE, format!("agent_auth_session={secret}"))
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(bytes.to_vec()).unwrap();
    // Shown as text: escaped in the markup, whichever references the escaping uses.
    assert!(!page.contains("<i>eve"), "{page}");
    assert!(
        crate::oauth_support::unescape(&page).contains("<i>eve</i>"),
        "{page}"
    );
}

/// The sign-in and sign-out pages cannot be framed by another site (clickjacking).
#[tokio::test]
async fn browser_pages_refuse_to_be_framed() {
    let (app, _) = app().await;
    for path in ["/login", "/logout"] {
        let (status, headers, _) =
            call(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
    }
}

/// A session started under one credential stamp ends when the stamp changes (a password reset),
/// and only then.
#[tokio::test]
async fn a_changed_credential_stamp_ends_the_session() {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()).with_credential_stamp(1));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
    let directory: Arc<dyn UserDirectory> = Arc::new(users.clone());
    let sessions = Sessions::new(directory, Duration::from_secs(3600));
    let verifier = Arc::new(Passwords(hash_password("pw").unwrap()));
    let app = Router::new()
        .merge(login_router(sessions.clone(), verifier, false))
        .merge(manage_router(ManageState {
            store: store.clone(),
            audit: None,
        }))
        .layer(
            AgentAuthLayer::new(store)
                .optional()
                .with_session_resolver(sessions),
        );
    let cookie = sign_in(&app, "alice", "pw").await.unwrap();
    let me = || {
        with_cookie(Request::get("/api/me"), &cookie)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(call(&app, me()).await.0, StatusCode::OK);
    users.insert(UserRecord::new("alice", Policy::unrestricted()).with_credential_stamp(1));
    assert_eq!(call(&app, me()).await.0, StatusCode::OK, "same stamp");
    users.insert(UserRecord::new("alice", Policy::unrestricted()).with_credential_stamp(2));
    assert_eq!(call(&app, me()).await.0, StatusCode::UNAUTHORIZED);
    users.insert(UserRecord::new("alice", Policy::unrestricted()).with_credential_stamp(1));
    assert_eq!(
        call(&app, me()).await.0,
        StatusCode::UNAUTHORIZED,
        "an ended session stays ended"
    );
}
