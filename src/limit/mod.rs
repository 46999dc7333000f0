//! Rate limits per token and per agent: [`RateLimitLayer`], the [`RateLimit`] service and its
//! [`ResponseFuture`].
//!
//! Each agent-authenticated request counts against its token's [`Rate`] and its agent's (all
//! the agent's tokens together), both optional and each configurable per
//! [`AgentType`](crate::principal::AgentType) ([`RateLimits`]). Windows are fixed and aligned to
//! Unix time (`floor(unix_ms / window_ms)`, see [`Window`]), so every node counts the same
//! window. The count is kept by a [`RateCounter`]: [`LocalCounter`] counts per node;
//! `RedisCounter` (feature `redis`) counts in Redis, exact across nodes.
//!
//! | case | answer |
//! |---|---|
//! | no [`Principal`](crate::Principal) in the extensions, a session, no rate configured | passed through untouched |
//! | within both limits | the inner service's |
//! | over the token's or the agent's limit | `429`, `Retry-After` (seconds until the window ends, rounded up, ≥ 1), a JSON body naming the limit |
//! | the counter failed | `503`, `Retry-After: 1` (fails closed: nothing is admitted uncounted) |
//!
//! The token's limit is counted first; a request over it spends none of its agent's budget.
//! Every refusal is marked [`NotActed`](crate::outcome::NotActed), so the
//! [`AgentAuthLayer`](crate::AgentAuthLayer) outside releases the use a use-limited token
//! reserved, and a `429` carries [`RateLimited`], which the auth layer's audit records as a
//! [`rate_limited`](crate::audit::AuditAction::RateLimited) event (outcome `denied`, the detail
//! naming the limit) instead of a `request` event.
//!
//! # Example
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_agent_auth::AgentAuthLayer;
//! use tower_agent_auth::ceiling::Policy;
//! use tower_agent_auth::limit::{Rate, RateLimitLayer, RateLimits};
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
//! use tower_agent_auth::token::TokenFormat;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = MemoryUserDirectory::new();
//! users.insert(UserRecord::new("alice", Policy::unrestricted()));
//! let store = MemoryStore::new(TokenFormat::new("acme")?, users);
//! let agent = store.create_agent(NewAgent::new("writer", "alice")).await?;
//! let issued = store.create_token(&agent.id, NewToken::new("docs")).await?;
//!
//! let service = ServiceBuilder::new()
//!     .layer(AgentAuthLayer::new(store))
//!     .layer(RateLimitLayer::local(RateLimits::new().per_token(Rate::per_minute(2))))
//!     .service_fn(|_: Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(Response::new(String::from("done")))
//!     });
//!
//! let request = || {
//!     Request::builder()
//!         .header("authorization", format!("Bearer {}", issued.token.expose_secret()))
//!         .body(String::new())
//! };
//! assert_eq!(service.clone().oneshot(request()?).await?.status(), StatusCode::OK);
//! assert_eq!(service.clone().oneshot(request()?).await?.status(), StatusCode::OK);
//! let refused = service.oneshot(request()?).await?;
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert!(refused.headers()["retry-after"].to_str()?.parse::<u64>()? >= 1);
//! # Ok(()) }
//! ```

mod check;
mod counter;
mod future;
mod layer;
mod local;
mod rate;
#[cfg(feature = "redis")]
mod redis;
mod rejection;
mod service;

pub use counter::{Hit, RateCounter, Window};
pub use future::ResponseFuture;
pub use layer::RateLimitLayer;
pub use local::LocalCounter;
pub use rate::{Limit, LimitKind, Rate, RateLimits};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_PREFIX, RedisCounter};
pub use rejection::{RateLimitRejection, RateLimited};
pub use service::RateLimit;
