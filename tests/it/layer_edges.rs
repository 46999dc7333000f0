//! AgentAuthLayer edges found by mutation testing: each case pins one decision of the layer.

use std::time::Duration;

use crate::common::{Fixture, Seen};
use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::store::NewToken;
use tower_agent_auth::{AgentAuthLayer, InvalidReason, RequireCapabilityLayer};

fn with_auth(value: &str) -> Request<String> {
    Request::builder()
        .uri("/posts")
        .header("authorization", value)
        .body(String::new())
        .unwrap()
}

#[tokio::test]
async fn a_403_after_admission_carries_the_layers_own_realm() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()).realm("blog").unwrap())
        .layer(RequireCapabilityLayer::new("users:delete"))
        .service(seen.service())
        .oneshot(with_auth(&f.bearer()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"blog\", error=\"insufficient_scope\", scope=\"users:delete\""
    );
    assert_eq!(seen.calls(), 0);
}

#[tokio::test]
async fn a_request_dropped_before_its_answer_spends_its_use() {
    let f = Fixture::with_token(NewToken::new("t").max_operations(1)).await;
    let never_answers = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()))
        .service_fn(|_: Request<String>| {
            std::future::pending::<Result<Response<String>, std::convert::Infallible>>()
        });
    let dropped = tokio::time::timeout(
        Duration::from_millis(20),
        never_answers.oneshot(with_auth(&f.bearer())),
    )
    .await;
    assert!(dropped.is_err(), "the handler never answers");
    // The use is spent, not left in flight: the next request is refused at once.
    let next = tokio::time::timeout(
        Duration::from_secs(5),
        ServiceBuilder::new()
            .layer(AgentAuthLayer::new(f.store.clone()))
            .service(Seen::default().service())
            .oneshot(with_auth(&f.bearer())),
    )
    .await
    .expect("no use left in flight to wait for")
    .unwrap();
    assert_eq!(next.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        next.extensions().get::<InvalidReason>(),
        Some(&InvalidReason::Exhausted)
    );
}

#[tokio::test]
async fn a_default_realm_set_after_resource_metadata_keeps_the_metadata_in_a_403() {
    let f = Fixture::new().await;
    let layer = AgentAuthLayer::new(f.store.clone())
        .resource_metadata("https://api.example/.well-known/oauth-protected-resource")
        .unwrap()
        .realm("api")
        .unwrap();
    let response = ServiceBuilder::new()
        .layer(layer)
        .layer(RequireCapabilityLayer::new("users:delete"))
        .service(Seen::default().service())
        .oneshot(with_auth(&f.bearer()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\", error=\"insufficient_scope\", scope=\"users:delete\""
    );
}
