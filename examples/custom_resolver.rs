//! Implementing `TokenResolver` for your own store, as a library author would.
//!
//! `cargo run --example custom_resolver`
//!
//! The "database" here is a table of token rows keyed by SHA-256 hash, like the one an existing
//! application already has. The resolver refuses unknown, revoked and expired tokens, reports a
//! failing backend as `Unavailable` (503, never admission), and builds the principal's ceiling
//! from the owner's role, the agent's policy and the token's capabilities.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Request, Response};
use tower::{ServiceBuilder, ServiceExt};
use tower_agent_auth::ceiling::{CapabilitySet, Policy};
use tower_agent_auth::principal::AgentRef;
use tower_agent_auth::token::{TokenFormat, TokenHash};
use tower_agent_auth::{
    AgentAuthLayer, ExecutionPrincipal, InvalidReason, Principal, ResolveError, TokenLookup,
    TokenResolver,
};

/// A row of the application's own token table.
struct TokenRow {
    id: &'static str,
    agent_id: &'static str,
    agent_slug: &'static str,
    owner: &'static str,
    capabilities: Vec<&'static str>,
    expires_at: Option<u64>,
    revoked: bool,
}

struct MyDatabase {
    tokens: RwLock<HashMap<TokenHash, TokenRow>>,
    roles: HashMap<&'static str, Policy>,
    down: AtomicBool,
}

struct MyResolver {
    format: TokenFormat,
    db: Arc<MyDatabase>,
}

#[tower_agent_auth::async_trait]
impl TokenResolver for MyResolver {
    fn token_format(&self) -> &TokenFormat {
        &self.format
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        if self.db.down.load(Ordering::Relaxed) {
            return Err(ResolveError::unavailable(std::io::Error::other(
                "connection refused",
            )));
        }
        let tokens = self.db.tokens.read().expect("lock");
        let row = tokens.get(token.hash()).ok_or(InvalidReason::Unknown)?;
        if row.revoked {
            return Err(InvalidReason::Revoked.into());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        if row.expires_at.is_some_and(|at| at <= now) {
            return Err(InvalidReason::Expired.into());
        }
        if row.agent_slug != token.slug() {
            return Err(InvalidReason::AgentMismatch.into());
        }
        let role = self
            .db
            .roles
            .get(row.owner)
            .ok_or(InvalidReason::OwnerMissing)?;
        // Bad data of our own: never admission, and not an outage either (500, not 503).
        let token_caps = CapabilitySet::parse(&row.capabilities).map_err(ResolveError::corrupt)?;
        Ok(ExecutionPrincipal::agent_builder(
            row.owner,
            AgentRef::new(row.agent_id, row.agent_slug),
            row.id,
            role.clone(),
        )
        .token_capabilities(token_caps)
        .build())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let format = TokenFormat::new("shop")?;
    let good = format.mint("inventory-bot")?;
    let revoked = format.mint("inventory-bot")?;

    let row = |id, revoked| TokenRow {
        id,
        agent_id: "agent-7",
        agent_slug: "inventory-bot",
        owner: "bob",
        capabilities: vec!["stock:read"],
        expires_at: None,
        revoked,
    };
    let db = Arc::new(MyDatabase {
        tokens: RwLock::new(HashMap::from([
            (good.hash(), row("tok-1", false)),
            (revoked.hash(), row("tok-2", true)),
        ])),
        roles: HashMap::from([("bob", Policy::allow(CapabilitySet::parse(["stock:*"])?))]),
        down: AtomicBool::new(false),
    });

    let service = ServiceBuilder::new()
        .layer(AgentAuthLayer::new(MyResolver {
            format,
            db: db.clone(),
        }))
        .service_fn(|request: Request<String>| async move {
            let principal = request.extensions().get::<Principal>().expect("layer ran");
            let body = format!(
                "{} acting for {}: stock:read={} stock:write={}",
                principal.agent_ref().map_or("-", |a| a.slug()),
                principal.user_id(),
                principal.can("stock:read"),
                principal.can("stock:write"),
            );
            Ok::<_, Infallible>(Response::new(body))
        });

    let call = |token: String| {
        let service = service.clone();
        async move {
            let request = Request::builder()
                .header("authorization", format!("Bearer {token}"))
                .body(String::new())
                .expect("valid request");
            let response = service.oneshot(request).await.expect("infallible");
            format!("{} {}", response.status(), response.body())
        }
    };

    println!(
        "valid token    → {}",
        call(good.expose_secret().to_owned()).await
    );
    println!(
        "revoked token  → {}",
        call(revoked.expose_secret().to_owned()).await
    );
    db.down.store(true, Ordering::Relaxed);
    println!(
        "database down  → {}",
        call(good.expose_secret().to_owned()).await
    );
    Ok(())
}
