//! The verdict cache over any store's resolver, and how changes reach it.
//!
//! A [`CachingResolver`] answers from a [`VerdictCache`] — principals by token hash, never by
//! token — and asks the resolver it wraps on a miss. A verdict is never served past its own
//! [expiry](crate::ExecutionPrincipal::expires_at), nor after a [`Change`] it depends on was
//! applied; use-limited tokens always reach the resolver, which spends each use from the
//! store's counter. How the cache learns of changes:
//!
//! - in one process, a [revision](CacheConfig::revision) read before each verdict: a change
//!   anywhere in the store makes every older verdict stale at once (the in-memory store's own
//!   cache works so);
//! - across nodes, a [`ChangeFeed`] the cache follows (`VerdictCache::follow`, feature `feed`):
//!   polled at a quarter of the [bound](CacheConfig::bound), so that a lost notice still
//!   arrives within it, and no hits at all while the feed cannot be read or its channel is
//!   known to be down.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use std::time::Duration;
//!
//! use http::{Request, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_agent_auth::cache::{CacheConfig, CachingResolver, VerdictCache};
//! use tower_agent_auth::ceiling::Policy;
//! use tower_agent_auth::store::{
//!     AgentStore, MemoryUserDirectory, NewAgent, NewToken, SqliteStore, StoreConfig, TokenStore,
//!     UserRecord,
//! };
//! use tower_agent_auth::token::TokenFormat;
//! use tower_agent_auth::AgentAuthLayer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = MemoryUserDirectory::new();
//! users.insert(UserRecord::new("alice", Policy::unrestricted()));
//! let dir = tempfile::tempdir()?;
//! let url = format!("sqlite://{}", dir.path().join("agents.db").display());
//! let store = SqliteStore::open(&url, StoreConfig::new(TokenFormat::new("acme")?, users)).await?;
//! let agent = store.create_agent(NewAgent::new("writer", "alice")).await?;
//! let issued = store.create_token(&agent.id, NewToken::new("ci")).await?;
//!
//! // A token revoked anywhere — this process, another node, the CLI — is refused within 1 s.
//! let bound = Duration::from_secs(1);
//! let cache = VerdictCache::new(CacheConfig::new().bound(bound).follows_feed());
//! tokio::spawn(cache.follow(store.clone()));
//! let service = ServiceBuilder::new()
//!     .layer(AgentAuthLayer::new(CachingResolver::new(store.clone(), cache.clone())))
//!     .service_fn(|_: Request<String>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) });
//! let request = || {
//!     Request::get("/")
//!         .header("authorization", format!("Bearer {}", issued.token.expose_secret()))
//!         .body(String::new())
//!         .unwrap()
//! };
//!
//! // Admitted: asked of the store once, then answered from memory.
//! assert_eq!(service.clone().oneshot(request()).await?.status(), StatusCode::OK);
//! assert_eq!(service.clone().oneshot(request()).await?.status(), StatusCode::OK);
//! assert!(cache.status().hits >= 1);
//!
//! // Revoked: the change log reaches the cache within the bound, and the token gets a 401.
//! store.revoke_token(&agent.id, &issued.info.id).await?;
//! tokio::time::sleep(bound).await;
//! assert_eq!(service.oneshot(request()).await?.status(), StatusCode::UNAUTHORIZED);
//! # Ok(()) }
//! # }
//! ```

mod change;
#[cfg(feature = "cache")]
mod config;
#[cfg(feature = "feed")]
mod follow;
#[cfg(feature = "cache")]
mod resolver;
#[cfg(feature = "cache")]
mod status;
#[cfg(feature = "cache")]
mod verdicts;

#[cfg(feature = "redis")]
mod redis;

pub use change::{Change, ChangeFeed, Changes, Notice, SecondLevel, Subscription};
#[cfg(feature = "cache")]
pub use config::CacheConfig;
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_PREFIX, MIN_SECRET_LEN, RedisSecondLevel};
#[cfg(feature = "cache")]
pub use resolver::CachingResolver;
#[cfg(feature = "cache")]
pub use status::CacheStatus;
#[cfg(feature = "cache")]
pub use verdicts::VerdictCache;
