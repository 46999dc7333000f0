//! The extractors on a real `axum::Router`.
#![cfg(feature = "axum")]

use crate::common::{CookieSessions, Fixture};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_agent_auth::axum::Require;
use tower_agent_auth::{AgentAuthLayer, Principal, capability};

capability!(
    /// The fixture's owner may publish posts.
    PublishPosts = "posts:publish"
);
capability!(
    /// Nobody in the fixture may delete users.
    DeleteUsers = "users:delete"
);

async fn me(principal: Principal) -> String {
    format!(
        "{}:{}:{}",
        principal.user_id(),
        principal.agent_ref().map_or("-", |a| a.slug()),
        principal.auth_source().as_str()
    )
}

async fn maybe(principal: Option<Principal>) -> String {
    principal.map_or_else(|| "anonymous".to_owned(), |p| p.user_id().to_string())
}

async fn publish(Require(principal, ..): Require<PublishPosts>) -> String {
    format!("published by {}", principal.user_id())
}

async fn delete_users(_: Require<DeleteUsers>) -> &'static str {
    "deleted"
}

fn routes() -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route("/publish", get(publish))
        .route("/users/delete", get(delete_users))
}

async fn get_path(
    app: Router,
    path: &str,
    auth: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::builder().uri(path);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn principal_extractor_names_user_and_agent() {
    let f = Fixture::new().await;
    let app = routes().layer(AgentAuthLayer::new(f.store.clone()));
    let (status, _, body) = get_path(app, "/me", Some(&f.bearer())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "alice:writer:agent_token");
}

#[tokio::test]
async fn principal_extractor_answers_401_on_an_optional_layer() {
    let f = Fixture::new().await;
    let app = routes().layer(AgentAuthLayer::new(f.store.clone()).optional());
    let (status, headers, _) = get_path(app, "/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer realm=\"api\"");
}

#[tokio::test]
async fn principal_extractor_without_the_layer_is_a_500_with_a_hint() {
    let (status, _, body) = get_path(routes(), "/me", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("is `AgentAuthLayer` installed"), "{body}");
}

#[tokio::test]
async fn optional_principal_is_none_for_anonymous_requests() {
    let f = Fixture::new().await;
    let app = routes().layer(AgentAuthLayer::new(f.store.clone()).optional());
    let (status, _, body) = get_path(app, "/maybe", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "anonymous");
}

#[tokio::test]
async fn optional_principal_is_some_for_agents() {
    let f = Fixture::new().await;
    let app = routes().layer(AgentAuthLayer::new(f.store.clone()).optional());
    let (_, _, body) = get_path(app, "/maybe", Some(&f.bearer())).await;
    assert_eq!(body, "alice");
}

#[tokio::test]
async fn optional_principal_without_the_layer_is_still_a_500() {
    let (status, _, _) = get_path(routes(), "/maybe", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn require_admits_an_allowed_capability() {
    let f = Fixture::new().await;
    let app = routes().layer(AgentAuthLayer::new(f.store.clone()));
    let (status, _, body) = get_path(app, "/publish", Some(&f.bearer())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "published by alice");
}

#[tokio::test]
async fn require_answers_403_insufficient_scope() {
    let f = Fixture::new().await;
    let app = routes().layer(AgentAuthLayer::new(f.store.clone()));
    let (status, headers, body) = get_path(app, "/users/delete", Some(&f.bearer())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"users:delete\""
    );
    assert!(body.contains("insufficient_scope"));
}

#[tokio::test]
async fn require_applies_to_session_users_too() {
    let f = Fixture::new().await;
    let app = routes().layer(
        AgentAuthLayer::new(f.store.clone()).with_session_resolver(CookieSessions(f.users.clone())),
    );
    let request = Request::builder()
        .uri("/publish")
        .header("cookie", "session=alice")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn invalid_token_never_reaches_the_handler() {
    let f = Fixture::new().await;
    let app = routes().layer(AgentAuthLayer::new(f.store.clone()).optional());
    let (status, headers, _) = get_path(app, "/maybe", Some("Bearer acme_writer_nope")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
}
