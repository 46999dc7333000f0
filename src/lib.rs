//! Bearer-token authentication for AI agents in [tower] and [axum] applications.
//!
//! People let AI agents act on their behalf. Each agent presents an opaque bearer token;
//! [`AgentAuthLayer`] resolves it through a [`TokenResolver`] into an [`ExecutionPrincipal`] —
//! which user it acts for, which agent it is, how it authenticated, which token it used — and
//! puts it into the request extensions, where handlers extract it as a [`Principal`]. Every
//! permission check goes through the principal's [`CapabilityCeiling`]: the owner's role ∩ the
//! parent agent's policy (for a thread-scoped child) ∩ the agent's policy ∩ the token's
//! capabilities, so an agent never does more than any of them allows. Requests signed in by an ordinary user session yield the same principal type.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_agent_auth::ceiling::{CapabilitySet, Policy};
//! use tower_agent_auth::store::{AgentStore, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, TokenStore, UserRecord};
//! use tower_agent_auth::token::TokenFormat;
//! use tower_agent_auth::{AgentAuthLayer, Principal};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # #[cfg(feature = "axum")] {
//! // The host application's users, with their roles.
//! let users = MemoryUserDirectory::new();
//! users.insert(UserRecord::new("alice", Policy::allow(CapabilitySet::parse(["posts:*"])?)));
//!
//! // Agents and tokens; only SHA-256 hashes of tokens are kept.
//! let store = MemoryStore::new(TokenFormat::new("acme")?, users);
//! let agent = store.create_agent(NewAgent::new("writer", "alice")).await?;
//! let issued = store.create_token(&agent.id, NewToken::new("laptop")).await?;
//!
//! async fn me(principal: Principal) -> String {
//!     format!("{} as {:?}, may publish: {}",
//!         principal.user_id(), principal.agent_ref().map(|a| a.slug()), principal.can("posts:publish"))
//! }
//!
//! let app: Router = Router::new().route("/me", get(me)).layer(AgentAuthLayer::new(store));
//! # let _ = (app, issued);
//! # }
//! # Ok(()) }
//! ```
//!
//! Modules, one concept each: [`token`] (format, hashing, redacted secrets), [`principal`],
//! [`ceiling`], [`resolver`], [`layer`], [`store`], [`audit`], `axum` (feature `axum`), `server`
//! (feature `server`: management REST API and login routers). The `agent-auth` binary (feature
//! `cli`) is the CLI and reference server.
//!
//! [tower]: https://docs.rs/tower
//! [axum]: https://docs.rs/axum

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod audit;
#[cfg(feature = "axum")]
pub mod axum;
mod bytes;
pub mod ceiling;
pub mod clock;
pub mod layer;
pub mod principal;
pub mod reason;
pub mod resolver;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

// The README's snippets, compiled and run as doctests, so they stay true.
#[cfg(all(doctest, feature = "axum", feature = "audit"))]
#[doc = include_str!("../README.md")]
struct ReadmeSnippets;

/// The attribute for implementing this crate's async traits ([`TokenResolver`],
/// [`SessionResolver`], the store traits): `#[tower_agent_auth::async_trait]` on the `impl`.
/// Re-exported so that a plain `async fn` in an impl needs no extra dependency.
pub use async_trait::async_trait;
pub use ceiling::{Capability, CapabilityCeiling, CapabilitySet, Policy};
pub use layer::{AgentAuthLayer, RequireCapabilityLayer};
pub use layer::{InsufficientScope, MissingLayer, MissingPrincipal, PrincipalRejection};
pub use principal::{AgentId, AuthSource, ExecutionPrincipal, Principal, TokenId, UserId};
pub use reason::{InvalidReason, RefusedCredential, ResolveError};
pub use resolver::{SessionResolver, TokenLookup, TokenResolver};
