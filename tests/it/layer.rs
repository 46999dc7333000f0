//! AgentAuthLayer behaviour, driven with `oneshot` against a recording `service_fn`.

use std::sync::Arc;

use crate::common::{CookieSessions, Fixture, Seen, caps};
use http::{Request, StatusCode};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::ceiling::Policy;
use tower_agent_auth::error::StoreError;
use tower_agent_auth::principal::{AuthSource, UserId};
use tower_agent_auth::store::{AgentStatus, NewToken, UserDirectory};
use tower_agent_auth::token::TokenFormat;
use tower_agent_auth::{
    AgentAuthLayer, InvalidReason, Principal, RequireCapabilityLayer, ResolveError, TokenLookup,
    TokenResolver,
};

async fn call(
    layer: AgentAuthLayer,
    seen: &Seen,
    request: Request<String>,
) -> http::Response<String> {
    ServiceBuilder::new()
        .layer(layer)
        .service(seen.service())
        .oneshot(request)
        .await
        .unwrap()
}

fn with_auth(value: &str) -> Request<String> {
    Request::builder()
        .uri("/posts")
        .header("authorization", value)
        .body(String::new())
        .unwrap()
}

async fn assert_invalid_token(layer: AgentAuthLayer, value: &str, reason: InvalidReason) {
    let seen = Seen::default();
    let response = call(layer, &seen, with_auth(value)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
    assert_eq!(
        response.body(),
        r#"{"error":"invalid_token","error_description":"the access token is invalid"}"#
    );
    assert_eq!(response.extensions().get::<InvalidReason>(), Some(&reason));
    assert_eq!(seen.calls(), 0, "the inner service must not run");
}

#[tokio::test]
async fn valid_token_binds_the_agent_and_its_owner() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(f.store.clone()),
        &seen,
        with_auth(&f.bearer()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let principal = seen.principal().expect("principal inserted");
    assert_eq!(principal.user_id(), &UserId::from("alice"));
    assert_eq!(principal.agent_id(), Some(&f.agent.id));
    assert_eq!(principal.agent_ref().unwrap().slug(), "writer");
    assert_eq!(principal.auth_source(), AuthSource::AgentToken);
    let listed = f.store.list_tokens(&f.agent.id).await.unwrap();
    assert_eq!(principal.token_id(), Some(&listed[0].id));
    assert!(principal.can("posts:publish"));
    assert!(!principal.can("users:delete"));
}

#[tokio::test]
async fn unknown_token_is_refused() {
    let f = Fixture::new().await;
    let stranger = TokenFormat::new("acme").unwrap().mint("writer").unwrap();
    let value = format!("Bearer {}", stranger.expose_secret());
    assert_invalid_token(AgentAuthLayer::new(f.store), &value, InvalidReason::Unknown).await;
}

#[tokio::test]
async fn revoked_token_is_refused() {
    let f = Fixture::new().await;
    let id = f.store.list_tokens(&f.agent.id).await.unwrap()[0]
        .id
        .clone();
    f.store.revoke_token(&f.agent.id, &id).await.unwrap();
    assert_invalid_token(
        AgentAuthLayer::new(f.store.clone()),
        &f.bearer(),
        InvalidReason::Revoked,
    )
    .await;
}

#[tokio::test]
async fn expired_token_is_refused_at_its_expiry_instant() {
    let f = Fixture::with_token(
        NewToken::new("short").expires_in(std::time::Duration::from_secs(15 * 60)),
    )
    .await;
    f.clock.advance(std::time::Duration::from_secs(15 * 60));
    assert_invalid_token(
        AgentAuthLayer::new(f.store.clone()),
        &f.bearer(),
        InvalidReason::Expired,
    )
    .await;
}

#[tokio::test]
async fn token_is_admitted_just_before_expiry() {
    let f = Fixture::with_token(
        NewToken::new("short").expires_in(std::time::Duration::from_secs(15 * 60)),
    )
    .await;
    f.clock
        .advance(std::time::Duration::from_secs(15 * 60) - std::time::Duration::from_secs(1));
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(f.store.clone()),
        &seen,
        with_auth(&f.bearer()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_checksum_is_refused_without_a_lookup() {
    let f = Fixture::new().await;
    let mut token = f.token.expose_secret().to_owned();
    let last = token.pop().unwrap();
    token.push(if last == 'a' { 'b' } else { 'a' });
    assert_invalid_token(
        AgentAuthLayer::new(f.store),
        &format!("Bearer {token}"),
        InvalidReason::Checksum,
    )
    .await;
}

#[tokio::test]
async fn malformed_token_with_our_prefix_is_refused() {
    let f = Fixture::new().await;
    assert_invalid_token(
        AgentAuthLayer::new(f.store),
        "Bearer acme_writer_123",
        InvalidReason::Malformed,
    )
    .await;
}

#[tokio::test]
async fn disabled_agent_is_refused() {
    let f = Fixture::new().await;
    f.store
        .set_agent_status(&f.agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    assert_invalid_token(
        AgentAuthLayer::new(f.store.clone()),
        &f.bearer(),
        InvalidReason::AgentDisabled,
    )
    .await;
}

#[tokio::test]
async fn reenabled_agent_is_admitted_again() {
    let f = Fixture::new().await;
    f.store
        .set_agent_status(&f.agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    f.store
        .set_agent_status(&f.agent.id, AgentStatus::Active)
        .await
        .unwrap();
    let response = call(
        AgentAuthLayer::new(f.store.clone()),
        &Seen::default(),
        with_auth(&f.bearer()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn deleted_agent_takes_its_tokens_along() {
    let f = Fixture::new().await;
    f.store.delete_agent(&f.agent.id).await.unwrap();
    assert_invalid_token(
        AgentAuthLayer::new(f.store.clone()),
        &f.bearer(),
        InvalidReason::Unknown,
    )
    .await;
}

#[tokio::test]
async fn removed_owner_is_refused() {
    let f = Fixture::new().await;
    f.users.remove(&UserId::from("alice"));
    assert_invalid_token(
        AgentAuthLayer::new(f.store.clone()),
        &f.bearer(),
        InvalidReason::OwnerMissing,
    )
    .await;
}

#[tokio::test]
async fn deactivated_owner_is_refused() {
    let f = Fixture::new().await;
    f.users.set_active(&UserId::from("alice"), false);
    assert_invalid_token(
        AgentAuthLayer::new(f.store.clone()),
        &f.bearer(),
        InvalidReason::OwnerInactive,
    )
    .await;
}

#[tokio::test]
async fn a_required_layer_refuses_a_foreign_bearer_token_saying_so() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let foreign = format!("Bearer ghp_{}", "a".repeat(36));
    let response = call(AgentAuthLayer::new(f.store), &seen, with_auth(&foreign)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.calls(), 0, "no route is reached unauthenticated");
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
    assert!(
        response
            .body()
            .contains("not one of this application's tokens")
    );
    assert_eq!(
        response.extensions().get::<InvalidReason>(),
        Some(&InvalidReason::ForeignPrefix)
    );
}

#[tokio::test]
async fn a_required_layer_refuses_another_scheme() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let basic = with_auth("Basic dXNlcjpwYXNz");
    let response = call(AgentAuthLayer::new(f.store), &seen, basic).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.calls(), 0);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\""
    );
}

#[tokio::test]
async fn foreign_prefix_passes_through_untouched_when_asked() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let foreign = format!("Bearer ghp_{}", "a".repeat(36));
    let layer = AgentAuthLayer::new(f.store).pass_foreign_credentials();
    let response = call(layer, &seen, with_auth(&foreign)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.calls(), 1);
    assert_eq!(seen.authorization().as_deref(), Some(foreign.as_str()));
    assert!(seen.principal().is_none());
}

#[tokio::test]
async fn other_schemes_pass_through_untouched_when_asked() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(f.store).pass_foreign_credentials(),
        &seen,
        with_auth("Basic dXNlcjpwYXNz"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.authorization().as_deref(), Some("Basic dXNlcjpwYXNz"));
    assert!(seen.principal().is_none());
}

#[tokio::test]
async fn an_optional_layer_passes_a_foreign_token_and_a_route_needing_a_principal_says_it_is_not_ours()
 {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let foreign = format!("Bearer ghp_{}", "a".repeat(36));
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store).optional())
        .layer(RequireCapabilityLayer::new("posts:publish"))
        .service(seen.service())
        .oneshot(with_auth(&foreign))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.calls(), 0);
    assert!(
        response
            .body()
            .contains("not one of this application's tokens")
    );
}

#[tokio::test]
async fn lower_case_bearer_scheme_is_accepted() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let value = format!("bearer {}", f.token.expose_secret());
    let response = call(
        AgentAuthLayer::new(f.store.clone()),
        &seen,
        with_auth(&value),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(seen.principal().is_some());
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let request = Request::builder()
        .header("authorization", f.bearer())
        .header("authorization", f.bearer())
        .body(String::new())
        .unwrap();
    let response = call(AgentAuthLayer::new(f.store.clone()), &seen, request).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\", error=\"invalid_request\""
    );
    assert_eq!(seen.calls(), 0);
}

#[tokio::test]
async fn bearer_without_token_is_a_bad_request() {
    let f = Fixture::new().await;
    let response = call(
        AgentAuthLayer::new(f.store),
        &Seen::default(),
        with_auth("Bearer"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn missing_credentials_get_a_challenge_without_error_code() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(f.store),
        &seen,
        Request::new(String::new()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\""
    );
    assert_eq!(seen.calls(), 0);
}

#[tokio::test]
async fn optional_layer_lets_anonymous_requests_through() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(f.store).optional(),
        &seen,
        Request::new(String::new()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(seen.principal().is_none());
}

#[tokio::test]
async fn optional_layer_still_refuses_invalid_tokens() {
    let f = Fixture::new().await;
    let response = call(
        AgentAuthLayer::new(f.store).optional(),
        &Seen::default(),
        with_auth("Bearer acme_writer_x"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn challenges_carry_realm_and_resource_metadata() {
    let f = Fixture::new().await;
    let layer = AgentAuthLayer::new(f.store)
        .realm("agents")
        .unwrap()
        .resource_metadata("https://api.example/.well-known/oauth-protected-resource")
        .unwrap();
    let response = call(layer, &Seen::default(), Request::new(String::new())).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"agents\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\""
    );
}

#[tokio::test]
async fn session_request_gets_a_session_principal_with_the_owner_ceiling() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let layer =
        AgentAuthLayer::new(f.store.clone()).with_session_resolver(CookieSessions(f.users.clone()));
    let request = Request::builder()
        .header("cookie", "session=alice")
        .body(String::new())
        .unwrap();
    let response = call(layer, &seen, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    let principal = seen.principal().unwrap();
    assert_eq!(principal.auth_source(), AuthSource::Session);
    assert_eq!(principal.user_id(), &UserId::from("alice"));
    assert!(principal.agent_id().is_none() && principal.token_id().is_none());
    assert_eq!(principal.ceiling().layers().len(), 1, "owner role only");
    assert!(principal.can("posts:publish"));
    assert!(!principal.can("users:delete"));
}

/// `Authorization: Basic` (a proxy's, a browser's cached credentials) does not hide the
/// session: the request is judged by its cookie, as one without the header.
#[tokio::test]
async fn another_scheme_beside_a_session_cookie_is_judged_by_the_session() {
    let f = Fixture::new().await;
    for layer in [
        AgentAuthLayer::new(f.store.clone()),
        AgentAuthLayer::new(f.store.clone()).optional(),
    ] {
        let seen = Seen::default();
        let layer = layer.with_session_resolver(CookieSessions(f.users.clone()));
        let request = Request::builder()
            .header("authorization", "Basic dXNlcjpwYXNz")
            .header("cookie", "session=alice")
            .body(String::new())
            .unwrap();
        let response = call(layer, &seen, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(seen.principal().unwrap().auth_source(), AuthSource::Session);
    }
    // Without a session, a required layer refuses it; one passing foreign credentials passes it.
    let required =
        AgentAuthLayer::new(f.store.clone()).with_session_resolver(CookieSessions(f.users.clone()));
    let basic = || with_auth("Basic dXNlcjpwYXNz");
    let response = call(required.clone(), &Seen::default(), basic()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let seen = Seen::default();
    let response = call(required.pass_foreign_credentials(), &seen, basic()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(seen.principal().is_none());
    assert_eq!(seen.authorization().as_deref(), Some("Basic dXNlcjpwYXNz"));
}

#[tokio::test]
async fn request_without_session_is_refused_when_required() {
    let f = Fixture::new().await;
    let layer =
        AgentAuthLayer::new(f.store.clone()).with_session_resolver(CookieSessions(f.users.clone()));
    let response = call(layer, &Seen::default(), Request::new(String::new())).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn owner_demotion_narrows_the_agent_on_the_next_request() {
    let f = Fixture::new().await;
    let layer = AgentAuthLayer::new(f.store.clone());
    let seen = Seen::default();
    call(layer.clone(), &seen, with_auth(&f.bearer())).await;
    assert!(seen.principal().unwrap().can("posts:publish"));

    f.users.set_role(
        &UserId::from("alice"),
        Policy::allow(caps(&["comments:read"])),
    );
    call(layer, &seen, with_auth(&f.bearer())).await;
    let principal = seen.principal().unwrap();
    assert!(!principal.can("posts:publish"));
    assert!(principal.can("comments:read"));
}

#[tokio::test]
async fn token_capabilities_narrow_the_ceiling() {
    let f =
        Fixture::with_token(NewToken::new("narrow").with_capabilities(caps(&["posts:read"]))).await;
    let seen = Seen::default();
    call(
        AgentAuthLayer::new(f.store.clone()),
        &seen,
        with_auth(&f.bearer()),
    )
    .await;
    let principal = seen.principal().unwrap();
    assert!(principal.can("posts:read"));
    assert!(
        !principal.can("posts:publish"),
        "the owner may, the token may not"
    );
}

/// A resolver whose backend is down.
struct Down(TokenFormat);

#[async_trait::async_trait]
impl TokenResolver for Down {
    fn token_format(&self) -> &TokenFormat {
        &self.0
    }
    async fn resolve(&self, _: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        Err(ResolveError::unavailable(std::io::Error::other(
            "connection refused",
        )))
    }
}

#[tokio::test]
async fn unavailable_resolver_answers_503_and_never_admits() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let layer = AgentAuthLayer::new(Down(TokenFormat::new("acme").unwrap()));
    let response = call(layer, &seen, with_auth(&f.bearer())).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("www-authenticate").is_none());
    assert_eq!(seen.calls(), 0);
}

/// A user directory whose backend is down.
struct DirectoryDown;

#[async_trait::async_trait]
impl UserDirectory for DirectoryDown {
    async fn user(
        &self,
        _: &UserId,
    ) -> Result<Option<tower_agent_auth::store::UserRecord>, tower_agent_auth::error::BoxError>
    {
        Err(std::io::Error::other("timeout").into())
    }
}

#[tokio::test]
async fn unavailable_user_directory_answers_503() {
    use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, UserRecord};
    // Create the agent while the directory works, then resolve through one that is down.
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let working = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
    let agent = working
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let token = working
        .create_token(&agent.id, NewToken::new("t"))
        .await
        .unwrap()
        .token;
    let broken = MemoryStore::new(TokenFormat::new("acme").unwrap(), DirectoryDown);
    assert!(matches!(
        broken.create_agent(NewAgent::new("other", "alice")).await,
        Err(StoreError::Unavailable(_))
    ));
    // The broken store does not know the token either; what matters is a directory failure
    // during resolution, exercised through a resolver that shares the token but not the users.
    struct Split(tower_agent_auth::store::MemoryStore, Arc<DirectoryDown>);
    #[async_trait::async_trait]
    impl TokenResolver for Split {
        fn token_format(&self) -> &TokenFormat {
            self.0.token_format()
        }
        async fn resolve(&self, t: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
            let principal = self.0.resolve(t).await?;
            self.1
                .user(principal.user_id())
                .await
                .map_err(ResolveError::Unavailable)?;
            Ok(principal)
        }
    }
    let seen = Seen::default();
    let layer = AgentAuthLayer::new(Split(working, Arc::new(DirectoryDown)));
    let response = call(
        layer,
        &seen,
        with_auth(&format!("Bearer {}", token.expose_secret())),
    )
    .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.calls(), 0);
}

#[tokio::test]
async fn require_capability_layer_admits_allowed_capabilities() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()))
        .layer(RequireCapabilityLayer::new("posts:publish"))
        .service(seen.service())
        .oneshot(with_auth(&f.bearer()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn require_capability_layer_answers_403_with_scope() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()))
        .layer(RequireCapabilityLayer::new("users:delete"))
        .service(seen.service())
        .oneshot(with_auth(&f.bearer()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"users:delete\""
    );
    assert_eq!(seen.calls(), 0);
}

#[tokio::test]
async fn require_capability_layer_answers_401_without_principal() {
    let f = Fixture::new().await;
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()).optional())
        .layer(RequireCapabilityLayer::new("posts:publish"))
        .service(Seen::default().service())
        .oneshot(Request::new(String::new()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer realm=\"api\""
    );
}

#[tokio::test]
async fn require_capability_layer_without_auth_layer_is_a_500() {
    let response = ServiceBuilder::new()
        .layer(RequireCapabilityLayer::new("posts:publish"))
        .service(Seen::default().service())
        .oneshot(Request::new(String::new()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.body().contains("AgentAuthLayer"));
}

#[test]
fn require_capability_layer_refuses_patterns() {
    assert!(RequireCapabilityLayer::try_new("posts:*").is_err());
    assert!(RequireCapabilityLayer::try_new("Posts").is_err());
}

#[tokio::test]
async fn last_used_is_recorded_at_most_once_per_interval() {
    let f = Fixture::new().await;
    let layer = AgentAuthLayer::new(f.store.clone());
    let first_use = tower_agent_auth::clock::Clock::now(&*f.clock);
    call(layer.clone(), &Seen::default(), with_auth(&f.bearer())).await;
    let after_first = f.store.list_tokens(&f.agent.id).await.unwrap()[0].last_used_at;
    assert_eq!(after_first, Some(first_use));

    f.clock.advance(std::time::Duration::from_secs(30));
    call(layer.clone(), &Seen::default(), with_auth(&f.bearer())).await;
    let within = f.store.list_tokens(&f.agent.id).await.unwrap()[0].last_used_at;
    assert_eq!(
        within,
        Some(first_use),
        "coalesced within the 60 s interval"
    );

    f.clock.advance(std::time::Duration::from_secs(31));
    call(layer, &Seen::default(), with_auth(&f.bearer())).await;
    let later = f.store.list_tokens(&f.agent.id).await.unwrap()[0].last_used_at;
    assert_eq!(later, Some(first_use + time::Duration::seconds(61)));
}

#[tokio::test]
async fn refused_requests_do_not_touch_last_used() {
    let f = Fixture::new().await;
    f.store
        .set_agent_status(&f.agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    call(
        AgentAuthLayer::new(f.store.clone()),
        &Seen::default(),
        with_auth(&f.bearer()),
    )
    .await;
    assert_eq!(
        f.store.list_tokens(&f.agent.id).await.unwrap()[0].last_used_at,
        None
    );
}

/// A resolver that waits before answering, as one backed by a database does.
struct Slow(tower_agent_auth::store::MemoryStore);

#[async_trait::async_trait]
impl TokenResolver for Slow {
    fn token_format(&self) -> &TokenFormat {
        self.0.token_format()
    }
    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        self.0.resolve(token).await
    }
}

#[tokio::test]
async fn a_resolver_that_waits_is_awaited_before_the_inner_service() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(Slow(f.store.clone())),
        &seen,
        with_auth(&f.bearer()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.principal().unwrap().user_id(), &UserId::from("alice"));
}

#[tokio::test]
async fn a_resolver_that_waits_still_refuses() {
    let f = Fixture::new().await;
    f.store
        .set_agent_status(&f.agent.id, AgentStatus::Disabled)
        .await
        .unwrap();
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(Slow(f.store.clone())),
        &seen,
        with_auth(&f.bearer()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(seen.calls(), 0);
}

/// Sessions looked up in a slow backend.
struct SlowSessions(crate::common::CookieSessions);

#[async_trait::async_trait]
impl tower_agent_auth::SessionResolver for SlowSessions {
    async fn resolve_session(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Principal>, ResolveError> {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        self.0.resolve_session(request).await
    }
}

#[tokio::test]
async fn a_session_resolver_that_waits_is_awaited() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let layer = AgentAuthLayer::new(f.store.clone())
        .with_session_resolver(SlowSessions(CookieSessions(f.users.clone())));
    let request = Request::builder()
        .header("cookie", "session=alice")
        .body(String::new())
        .unwrap();
    let response = call(layer, &seen, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.principal().unwrap().auth_source(), AuthSource::Session);
}

#[tokio::test]
async fn our_prefix_with_characters_outside_b64token_is_a_bad_request() {
    let f = Fixture::new().await;
    let response = call(
        AgentAuthLayer::new(f.store),
        &Seen::default(),
        with_auth("Bearer acme_wri,ter"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn foreign_token_outside_b64token_is_a_bad_request() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(f.store),
        &seen,
        with_auth("Bearer ghp_a\"b"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(seen.calls(), 0);
}

#[tokio::test]
async fn a_token_minted_for_one_agent_never_acts_as_another() {
    let f = Fixture::new().await;
    let other = f
        .store
        .create_agent(tower_agent_auth::store::NewAgent::new("reviewer", "alice"))
        .await
        .unwrap();
    let seen = Seen::default();
    call(
        AgentAuthLayer::new(f.store.clone()),
        &seen,
        with_auth(&f.bearer()),
    )
    .await;
    let principal = seen.principal().unwrap();
    assert_eq!(principal.agent_id(), Some(&f.agent.id));
    assert_ne!(principal.agent_id(), Some(&other.id));
}

#[tokio::test]
async fn configuring_a_store_keeps_what_it_holds() {
    use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, UserRecord};
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new("alice", Policy::unrestricted()));
    let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users);
    let agent = store
        .create_agent(NewAgent::new("writer", "alice"))
        .await
        .unwrap();
    let store = store.with_last_used_interval(std::time::Duration::from_secs(5));
    assert_eq!(store.agent(&agent.id).await.unwrap(), Some(agent));
}

/// Two layers of two prefixes: the outer one passes foreign tokens on, the inner one keeps the
/// outer one's principal, and each admits only its own tokens.
#[tokio::test]
async fn stacked_layers_of_two_prefixes_each_admit_their_own_tokens() {
    use tower_agent_auth::store::{MemoryStore, NewAgent};
    let acme = Fixture::new().await;
    let partner = MemoryStore::new(TokenFormat::new("partner").unwrap(), acme.users.clone());
    let agent = partner
        .create_agent(NewAgent::new("helper", "alice"))
        .await
        .unwrap();
    let issued = partner
        .create_token(&agent.id, NewToken::new("p"))
        .await
        .unwrap();
    let partner_bearer = format!("Bearer {}", issued.token.expose_secret());
    let outer = AgentAuthLayer::new(acme.store.clone()).pass_foreign_credentials();
    let inner = AgentAuthLayer::new(partner.clone());
    async fn stack(
        outer: &AgentAuthLayer,
        inner: &AgentAuthLayer,
        seen: &Seen,
        request: Request<String>,
    ) -> http::Response<String> {
        let service = ServiceBuilder::new()
            .layer(outer.clone())
            .layer(inner.clone())
            .service(seen.service());
        service.oneshot(request).await.unwrap()
    }

    let seen = Seen::default();
    let response = stack(&outer, &inner, &seen, with_auth(&acme.bearer())).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the outer prefix's token"
    );
    assert_eq!(seen.principal().unwrap().agent_id(), Some(&acme.agent.id));

    let seen = Seen::default();
    let response = stack(&outer, &inner, &seen, with_auth(&partner_bearer)).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the inner prefix's token"
    );
    assert_eq!(seen.principal().unwrap().agent_id(), Some(&agent.id));

    let seen = Seen::default();
    let foreign = format!("Bearer ghp_{}", "a".repeat(36));
    let response = stack(&outer, &inner, &seen, with_auth(&foreign)).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "neither prefix"
    );
    assert_eq!(seen.calls(), 0);

    let seen = Seen::default();
    let bare = Request::builder()
        .uri("/posts")
        .body(String::new())
        .unwrap();
    let response = stack(&outer, &inner, &seen, bare).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "no credentials"
    );
    assert_eq!(seen.calls(), 0);
}

const API: &str = "https://api.example/mcp";

/// A token bound to another resource is refused by a layer that protects one.
#[tokio::test]
async fn a_token_for_another_resource_is_refused() {
    let f = Fixture::with_token(NewToken::new("t").resource("https://other.example/mcp")).await;
    let layer = AgentAuthLayer::new(f.store.clone()).resource(API);
    assert_invalid_token(layer, &f.bearer(), InvalidReason::Audience).await;
}

#[tokio::test]
async fn a_token_for_this_resource_is_admitted() {
    let f = Fixture::with_token(NewToken::new("t").resource(API)).await;
    let seen = Seen::default();
    let layer = AgentAuthLayer::new(f.store.clone()).resource(API);
    let response = call(layer, &seen, with_auth(&f.bearer())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.principal().unwrap().audience(), Some(API));
}

/// A token bound to no resource (the CLI's, the REST API's) passes, unless the layer requires
/// an audience.
#[tokio::test]
async fn a_token_without_audience_passes_unless_one_is_required() {
    let f = Fixture::new().await;
    let seen = Seen::default();
    let layer = AgentAuthLayer::new(f.store.clone()).resource(API);
    let response = call(layer, &seen, with_auth(&f.bearer())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let strict = AgentAuthLayer::new(f.store.clone())
        .resource(API)
        .require_audience();
    assert_invalid_token(strict, &f.bearer(), InvalidReason::Audience).await;
}

/// A layer without a resource admits a token bound to one: the binding is the protecting
/// layer's to check.
#[tokio::test]
async fn a_layer_without_resource_admits_a_bound_token() {
    let f = Fixture::with_token(NewToken::new("t").resource(API)).await;
    let seen = Seen::default();
    let response = call(
        AgentAuthLayer::new(f.store.clone()),
        &seen,
        with_auth(&f.bearer()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// An inner layer checks its resource on the principal the outer layer admitted.
#[tokio::test]
async fn an_inner_layer_checks_its_resource_on_the_outer_principal() {
    let f = Fixture::with_token(NewToken::new("t").max_operations(1).resource(API)).await;
    let seen = Seen::default();
    let refused = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()).optional())
        .layer(AgentAuthLayer::new(f.store.clone()).resource("https://other.example/mcp"))
        .service(seen.service())
        .oneshot(with_auth(&f.bearer()))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.extensions().get::<InvalidReason>(),
        Some(&InvalidReason::Audience)
    );
    assert_eq!(seen.calls(), 0);
}

/// Nested layers of one prefix resolve the token once: a token of one use is spent by one
/// request.
#[tokio::test]
async fn nested_layers_spend_one_use_per_request() {
    let f = Fixture::with_token(NewToken::new("t").max_operations(1)).await;
    let outer = AgentAuthLayer::new(f.store.clone());
    let inner = AgentAuthLayer::new(f.store.clone()).resource(API);
    let seen = Seen::default();
    let first = ServiceBuilder::new()
        .layer(outer.clone())
        .layer(inner.clone())
        .service(seen.service())
        .oneshot(with_auth(&f.bearer()))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let second = ServiceBuilder::new()
        .layer(outer)
        .layer(inner)
        .service(seen.service())
        .oneshot(with_auth(&f.bearer()))
        .await
        .unwrap();
    assert_eq!(
        second.status(),
        StatusCode::UNAUTHORIZED,
        "one use, spent once"
    );
}

/// Behind nested layers, a refusal names the innermost layer's challenge: its resource
/// metadata, not the outer layer's default.
#[tokio::test]
async fn a_capability_refusal_behind_nested_layers_names_the_inner_challenge() {
    let f = Fixture::new().await;
    let metadata = "https://api.example/.well-known/oauth-protected-resource/mcp";
    let response = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(f.store.clone()).optional())
        .layer(
            AgentAuthLayer::new(f.store.clone())
                .resource(API)
                .resource_metadata(metadata)
                .unwrap(),
        )
        .layer(RequireCapabilityLayer::new("users:delete"))
        .service(Seen::default().service())
        .oneshot(with_auth(&f.bearer()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains(metadata), "{challenge}");
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
}
