//! An application written against the public paths of 0.1, unchanged: the layer, a custom
//! `TokenResolver`, the principal, the extractors, the ceiling, the store constructors, and
//! code generic over the 0.1 store traits. It compiles with deprecation warnings only: every
//! other warning is an error here, and the deprecations are allowed so that the test passes.
#![deny(warnings)]
#![allow(deprecated)]

use std::convert::Infallible;

use axum::Router;
use axum::routing::{get, post};
use http::{Request, Response};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::axum::Require;
use tower_agent_auth::ceiling::{CapabilityCeiling, CapabilitySet, Policy};
use tower_agent_auth::principal::{AgentId, AgentRef, TokenId, UserId};
use tower_agent_auth::reason::{BoxError, InvalidReason, RefusedCredential, ResolveError};
use tower_agent_auth::store::{
    AgentStore, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, PgStore, SqliteStore,
    StoreConfig, StoreError, TokenStore, UserRecord,
};
use tower_agent_auth::token::{TokenFormat, TokenHash};
use tower_agent_auth::{
    AgentAuthLayer, ExecutionPrincipal, Principal, RequireCapabilityLayer, TokenLookup,
    TokenResolver, capability,
};

capability!(pub PublishPosts = "posts:publish");

async fn me(principal: Principal) -> String {
    format!("{} via {}", principal.user_id(), principal.auth_source().as_str())
}

async fn maybe(principal: Option<Principal>) -> &'static str {
    if principal.is_some() { "signed in" } else { "anonymous" }
}

async fn publish(Require(principal, ..): Require<PublishPosts>) -> String {
    format!("published for {}", principal.user_id())
}

/// A resolver of an application's own token table, as 0.1 wrote it.
struct OwnTable {
    format: TokenFormat,
    admitted: TokenHash,
}

#[tower_agent_auth::async_trait]
impl TokenResolver for OwnTable {
    fn token_format(&self) -> &TokenFormat {
        &self.format
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        if *token.hash() != self.admitted {
            let refused = RefusedCredential::new(
                InvalidReason::Revoked,
                UserId::from("alice"),
                AgentId::from("agt_1"),
                TokenId::from("tok_1"),
            );
            return Err(refused.into());
        }
        let ceiling = CapabilityCeiling::new(Policy::unrestricted().into());
        let agent = AgentRef::new("agt_1", token.slug());
        let (user, id) = (UserId::from("alice"), TokenId::from("tok_1"));
        Ok(ExecutionPrincipal::agent(user, agent, id, ceiling).into())
    }
}

/// Code generic over the 0.1 store traits.
async fn seed<S: AgentStore + TokenStore>(store: &S) -> Result<String, StoreError> {
    let agent = store.create_agent(NewAgent::new("writer", "alice")).await?;
    let issued = store.create_token(&agent.id, NewToken::new("ci")).await?;
    Ok(issued.token.expose_secret().to_owned())
}

fn unreachable_store(error: StoreError) -> BoxError {
    Box::new(error)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let users = MemoryUserDirectory::new();
    users.insert(UserRecord::new(
        "alice",
        Policy::allow(CapabilitySet::parse(["posts:*"])?),
    ));
    let format = TokenFormat::new("acme")?;
    let store = MemoryStore::new(format.clone(), users.clone());
    let token = seed(&store).await.map_err(unreachable_store)?;

    let app: Router = Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .route("/posts", post(publish))
        .layer(AgentAuthLayer::new(store.clone()).optional());
    let response = app
        .oneshot(
            Request::post("/posts")
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())?,
        )
        .await?;
    assert_eq!(response.status(), 200);

    // A tower stack with the resolver of one's own table.
    let admitted = format.mint("writer")?;
    let resolver = OwnTable {
        format: format.clone(),
        admitted: admitted.hash(),
    };
    let service = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(resolver).pass_foreign_credentials())
        .layer(RequireCapabilityLayer::new("posts:publish"))
        .service_fn(|_: Request<String>| async { Ok::<_, Infallible>(Response::new(String::new())) });
    let request = Request::get("/")
        .header("authorization", format!("Bearer {}", admitted.expose_secret()))
        .body(String::new())?;
    assert_eq!(service.oneshot(request).await?.status(), 200);

    // The store constructors of 0.1, SQL ones included (built, not connected, here).
    let _with_config = MemoryStore::with_config(StoreConfig::new(format.clone(), users.clone()));
    let _sqlite = SqliteStore::open;
    let _postgres = PgStore::connect;
    Ok(())
}
