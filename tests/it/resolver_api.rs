//! A resolver written from the outside, with nothing but the crate's public API: the
//! re-exported `async_trait`, the principal builder, boxed resolvers, the answer to bad data.

use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::principal::AgentRef;
use tower_agent_auth::token::{RawToken, TokenFormat};
use tower_agent_auth::{
    AgentAuthLayer, ExecutionPrincipal, InvalidReason, Principal, ResolveError, TokenLookup,
    TokenResolver,
};

/// Admits the token whose slug is `good`, answers "my data is bad" for `corrupt`.
struct Fixed {
    format: TokenFormat,
}

#[tower_agent_auth::async_trait]
impl TokenResolver for Fixed {
    fn token_format(&self) -> &TokenFormat {
        &self.format
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        match token.slug() {
            "good" => Ok(ExecutionPrincipal::agent_builder(
                "alice",
                AgentRef::new("agt_1", "good"),
                "tok_1",
                Policy::allow(CapabilitySet::parse(["posts:*"]).unwrap()),
            )
            .agent_policy(Policy::allow(
                CapabilitySet::parse(["posts:read", "posts:publish"]).unwrap(),
            ))
            .token_capabilities(CapabilitySet::parse(["posts:read"]).unwrap())
            .task_id("task-1")
            .build()),
            "corrupt" => Err(ResolveError::corrupt("stored policy is not valid JSON")),
            _ => Err(InvalidReason::Unknown.into()),
        }
    }
}

fn format() -> TokenFormat {
    TokenFormat::new("acme").unwrap()
}

fn mint(slug: &str) -> RawToken {
    format().mint(slug).unwrap()
}

async fn call(layer: AgentAuthLayer, token: &RawToken) -> Response<String> {
    ServiceBuilder::new()
        .layer(layer)
        .service_fn(|request: Request<String>| async move {
            let principal = request.extensions().get::<Principal>().unwrap();
            let body = format!(
                "{} read={} publish={} task={:?}",
                principal.user_id(),
                principal.can("posts:read"),
                principal.can("posts:publish"),
                principal.task_id()
            );
            Ok::<_, Infallible>(Response::new(body))
        })
        .oneshot(
            Request::builder()
                .header("authorization", format!("Bearer {}", token.expose_secret()))
                .body(String::new())
                .unwrap(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_boxed_resolver_is_a_resolver() {
    let boxed: Box<dyn TokenResolver> = Box::new(Fixed { format: format() });
    let response = call(AgentAuthLayer::new(boxed), &mint("good")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_builder_narrows_by_every_layer() {
    let response = call(
        AgentAuthLayer::new(Fixed { format: format() }),
        &mint("good"),
    )
    .await;
    assert_eq!(
        response.body(),
        "alice read=true publish=false task=Some(\"task-1\")"
    );
}

#[tokio::test]
async fn a_resolvers_bad_data_answers_500_never_admission() {
    let response = call(
        AgentAuthLayer::new(Fixed { format: format() }),
        &mint("corrupt"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!response.headers().contains_key("www-authenticate"));
    assert_eq!(
        response.body(),
        r#"{"error":"server_error","error_description":"credentials cannot be checked"}"#
    );
}
