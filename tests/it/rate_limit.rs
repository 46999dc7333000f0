//! Rate limits behind the auth layer, counted per node (`LocalCounter`): one edge per test.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::AgentAuthLayer;
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::layer::NotActed;
use tower_agent_auth::limit::{
    Hit, LimitKind, Rate, RateCounter, RateLimitLayer, RateLimited, RateLimits,
};
use tower_agent_auth::principal::{AgentId, AgentType};
use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
use tower_agent_auth::token::TokenFormat;

fn store() -> MemoryStore {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    MemoryStore::new(TokenFormat::new("acme").unwrap(), users)
}

/// An agent of `agent_type` and a token of it.
async fn agent(store: &MemoryStore, slug: &str, agent_type: AgentType) -> (AgentId, String) {
    let agent = store
        .create_agent(NewAgent::new(slug, "alice").with_type(agent_type))
        .await
        .unwrap();
    (
        agent.id.clone(),
        token(store, &agent.id, NewToken::new("t")).await,
    )
}

async fn token(store: &MemoryStore, agent: &AgentId, new: NewToken) -> String {
    let issued = store.create_token(agent, new).await.unwrap();
    issued.token.expose_secret().to_owned()
}

fn get(token: Option<&str>) -> Request<String> {
    let mut request = Request::builder().uri("/posts");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(String::new()).unwrap()
}

async fn ok(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new("done".to_owned()))
}

/// What a request through `auth` and `limits` (counted per node) is answered.
macro_rules! service {
    ($auth:expr, $limits:expr) => {
        ServiceBuilder::new()
            .layer($auth)
            .layer($limits)
            .service_fn(ok)
    };
}

async fn status<S>(service: &S, token: &str) -> StatusCode
where
    S: tower::Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    service
        .clone()
        .oneshot(get(Some(token)))
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn over_the_token_limit_is_429_with_retry_after_naming_the_limit() {
    let store = store();
    let (_, token) = agent(&store, "writer", AgentType::Autonomous).await;
    let limits = RateLimits::new().per_token(Rate::per_minute(2));
    let service = service!(AgentAuthLayer::new(store), RateLimitLayer::local(limits));
    assert_eq!(status(&service, &token).await, StatusCode::OK);
    assert_eq!(status(&service, &token).await, StatusCode::OK);
    let refused = service.oneshot(get(Some(&token))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["content-type"], "application/json");
    assert!(refused.body().contains(r#""limit":"token""#));
    assert!(refused.body().contains("token limit 2 per 60s"));
    let limited = refused.extensions().get::<RateLimited>().unwrap();
    assert_eq!(limited.limit.kind, LimitKind::Token);
    assert_eq!(limited.retry_after, Duration::from_secs(retry_after));
    assert!(refused.extensions().get::<NotActed>().is_some());
}

#[tokio::test]
async fn over_the_agent_limit_is_429_whichever_token_is_used() {
    let store = store();
    let (agent, first) = agent(&store, "writer", AgentType::Autonomous).await;
    let second = token(&store, &agent, NewToken::new("second")).await;
    let limits = RateLimits::new()
        .per_token(Rate::per_minute(10))
        .per_agent(Rate::per_minute(3));
    let service = service!(AgentAuthLayer::new(store), RateLimitLayer::local(limits));
    assert_eq!(status(&service, &first).await, StatusCode::OK);
    assert_eq!(status(&service, &first).await, StatusCode::OK);
    assert_eq!(status(&service, &second).await, StatusCode::OK);
    let refused = service.oneshot(get(Some(&second))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body().contains("agent limit 3 per 60s"));
    assert!(refused.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_request_over_its_token_limit_spends_none_of_its_agents_budget() {
    let store = store();
    let (agent, first) = agent(&store, "writer", AgentType::Autonomous).await;
    let second = token(&store, &agent, NewToken::new("second")).await;
    let limits = RateLimits::new()
        .per_token(Rate::per_minute(1))
        .per_agent(Rate::per_minute(2));
    let service = service!(AgentAuthLayer::new(store), RateLimitLayer::local(limits));
    assert_eq!(status(&service, &first).await, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(
            status(&service, &first).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(status(&service, &second).await, StatusCode::OK);
}

#[tokio::test]
async fn an_agent_type_override_replaces_the_general_rate() {
    let store = store();
    let (_, ephemeral) = agent(&store, "task-bot", AgentType::Ephemeral).await;
    let (_, autonomous) = agent(&store, "writer", AgentType::Autonomous).await;
    let limits = RateLimits::new()
        .per_token(Rate::per_minute(100))
        .per_token_for(AgentType::Ephemeral, Rate::per_minute(1));
    let service = service!(AgentAuthLayer::new(store), RateLimitLayer::local(limits));
    assert_eq!(status(&service, &ephemeral).await, StatusCode::OK);
    assert_eq!(
        status(&service, &ephemeral).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    for _ in 0..5 {
        assert_eq!(status(&service, &autonomous).await, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_next_window_admits_again() {
    let store = store();
    let (_, token) = agent(&store, "writer", AgentType::Autonomous).await;
    let window = Duration::from_millis(300);
    let limits = RateLimits::new().per_token(Rate::new(1, window));
    let service = service!(AgentAuthLayer::new(store), RateLimitLayer::local(limits));
    // Start just after a window begins, so both requests fall in it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    tokio::time::sleep(Duration::from_millis((300 - now % 300) as u64 + 5)).await;
    assert_eq!(status(&service, &token).await, StatusCode::OK);
    let refused = service.clone().oneshot(get(Some(&token))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.headers()["retry-after"],
        "1",
        "under a second left rounds up to 1"
    );
    tokio::time::sleep(window).await;
    assert_eq!(status(&service, &token).await, StatusCode::OK);
}

#[tokio::test]
async fn a_limited_request_of_a_use_limited_token_leaves_its_use() {
    let store = store();
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let token = token(&store, &agent.id, NewToken::new("once").max_operations(1)).await;
    let refusing = service!(
        AgentAuthLayer::new(store.clone()),
        RateLimitLayer::local(RateLimits::new().per_agent(Rate::per_minute(0)))
    );
    for _ in 0..3 {
        assert_eq!(
            status(&refusing, &token).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // The one use is still there: spent now, and then gone.
    let plain = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(store.clone()))
        .service_fn(ok);
    assert_eq!(status(&plain, &token).await, StatusCode::OK);
    assert_eq!(status(&plain, &token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_request_without_a_principal_passes_untouched() {
    let limits = || RateLimits::new().per_token(Rate::per_minute(0));
    // No auth layer at all.
    let bare = ServiceBuilder::new()
        .layer(RateLimitLayer::local(limits()))
        .service_fn(ok);
    let response = bare.oneshot(get(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "done");
    // An optional auth layer, no credentials.
    let optional = service!(
        AgentAuthLayer::new(store()).optional(),
        RateLimitLayer::local(limits())
    );
    let response = optional.oneshot(get(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A counter that cannot count.
struct Broken;

#[tower_agent_auth::async_trait]
impl RateCounter for Broken {
    async fn hit(
        &self,
        _: LimitKind,
        _: &str,
        _: Duration,
    ) -> Result<Hit, tower_agent_auth::error::BoxError> {
        Err("counter down".into())
    }
}

#[tokio::test]
async fn a_counter_error_is_503_with_retry_after_1_and_admits_nothing() {
    let store = store();
    let (_, token) = agent(&store, "writer", AgentType::Autonomous).await;
    let limits = RateLimits::new().per_token(Rate::per_minute(100));
    let service = service!(
        AgentAuthLayer::new(store),
        RateLimitLayer::new(limits, Broken)
    );
    let response = service.oneshot(get(Some(&token))).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_ne!(response.body(), "done");
    assert!(response.extensions().get::<NotActed>().is_some());
}

#[cfg(feature = "audit")]
#[tokio::test]
async fn the_audit_trail_records_rate_limited_naming_the_limit() {
    use std::sync::Arc;
    use tower_agent_auth::audit::{
        AuditAction, AuditFilter, AuditQuery, AuditWriter, Outcome, WriterOptions,
    };

    let store = store();
    let (agent, token) = agent(&store, "writer", AgentType::Autonomous).await;
    let writer = AuditWriter::spawn(Arc::new(store.clone()), WriterOptions::default());
    let limits = RateLimits::new().per_agent(Rate::per_second(1));
    let service = service!(
        AgentAuthLayer::new(store.clone()).audit(writer.clone()),
        RateLimitLayer::local(limits)
    );
    // Two requests in the same one-second window: start just after one begins.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    tokio::time::sleep(Duration::from_millis((1_000 - now % 1_000) as u64 + 5)).await;
    assert_eq!(status(&service, &token).await, StatusCode::OK);
    assert_eq!(
        status(&service, &token).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    writer.shutdown().await;
    let events = store.events(&AuditFilter::agent(agent)).await.unwrap();
    let actions: Vec<_> = events.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        vec![AuditAction::Request, AuditAction::RateLimited],
        "{events:?}"
    );
    let limited = &events[1];
    assert_eq!(limited.outcome, Outcome::Denied);
    assert_eq!(limited.detail.as_deref(), Some("agent limit 1 per 1s"));
    assert_eq!(limited.request.as_ref().unwrap().status, 429);
    assert_eq!(
        AuditAction::parse("rate_limited"),
        Some(AuditAction::RateLimited)
    );
    assert_eq!(AuditAction::RateLimited.as_str(), "rate_limited");
}
