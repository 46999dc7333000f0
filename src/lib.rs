//! Bearer-token authentication for AI agents in [tower] and [axum] applications.
//!
//! People let AI agents act on their behalf. Each agent presents an opaque bearer token;
//! [`AgentAuthLayer`] resolves it through a [`TokenResolver`] into an [`ExecutionPrincipal`] —
//! which user it acts for, which agent it is, how it authenticated, which token it used — and
//! puts it into the request extensions, where handlers extract it as a [`Principal`]. Every
//! permission check goes through the principal's [`CapabilityCeiling`](ceiling::CapabilityCeiling): the owner's role ∩ the
//! parent agent's policy (for a thread-scoped child) ∩ the agent's policy ∩ the token's
//! capabilities, so an agent never does more than any of them allows. Requests signed in by an ordinary user session yield the same principal type.
//!
//! ```
//! use axum::{Router, routing::get};
//! use tower_agent_auth::ceiling::{CapabilitySet, Policy};
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
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
//! # Where names live
//!
//! The root holds what an axum or tower application names: [`AgentAuthLayer`] and
//! [`RequireCapabilityLayer`], [`Principal`] (and the [`ExecutionPrincipal`] it derefs to),
//! [`PrincipalRejection`], and what a custom resolver implements and returns:
//! [`TokenResolver`], [`SessionResolver`], [`TokenLookup`], [`ResolveError`], [`InvalidReason`],
//! [`macro@async_trait`]. Everything else lives in its module, under one path, one concept each:
//!
//! - [`token`]: the format (mint, parse, checksum), hashing, the redacted [`token::RawToken`];
//! - [`principal`]: the principal, its ids ([`principal::UserId`], [`principal::AgentId`],
//!   [`principal::TokenId`]) and [`principal::AgentRef`] — no HTTP state;
//! - [`ceiling`]: capabilities, policies and the ceiling algebra;
//! - [`error`]: every error, by area — refusal reasons, resolution and store errors;
//! - [`resolver`]: the resolver traits;
//! - [`layer`]: the middleware and its answers;
//! - [`store`]: [`store::Store`], every rule over one [`store::Backend`] (the persistence
//!   contract a store of your own implements), the in-memory and SQL backends, and
//!   [`store::resolve`], the one resolution pipeline every store goes through;
//! - [`cache`]: the change feeds, and (feature `cache`) the verdict cache over any store's
//!   resolver (following a feed: feature `feed`);
//! - [`audit`]: events, sinks, the batching writer;
//! - [`limit`]: rate limits per token and per agent (`429` with `Retry-After`);
//! - [`delegation`]: delegated and task tokens;
//! - `approval` (feature `approval`): supervised agents and the human-approval gate of critical
//!   actions;
//! - `mcp` (feature `mcp`): per-tool authorization for MCP servers, and (feature `rmcp`) the
//!   caller inside an `rmcp` tool handler;
//! - `axum` (feature `axum`): extractors; `server` (feature `server`): management REST API and
//!   login routers; `testing` (feature `testing`): the conformance suite any store can run.
//!
//! The `agent-auth` package of this workspace is the CLI and the reference server.
//!
//! [tower]: https://docs.rs/tower
//! [axum]: https://docs.rs/axum

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "approval")]
pub mod approval;
pub mod audit;
#[cfg(feature = "axum")]
pub mod axum;
mod bytes;
pub mod cache;
pub mod ceiling;
pub mod clock;
pub mod delegation;
pub mod error;
pub mod layer;
pub mod limit;
#[cfg(feature = "mcp")]
pub mod mcp;
#[cfg(feature = "oauth")]
pub mod oauth;
pub mod outcome;
pub mod principal;
#[deprecated(since = "0.2.0", note = "moved to `tower_agent_auth::error`")]
pub mod reason;
pub mod resolver;
#[cfg(feature = "server")]
pub mod server;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod text;
pub mod token;

// The README's snippets, compiled and run as doctests, so they stay true.
#[cfg(all(doctest, feature = "axum", feature = "audit"))]
#[doc = include_str!("../README.md")]
struct ReadmeSnippets;

/// The attribute for implementing this crate's async traits ([`TokenResolver`],
/// [`SessionResolver`], the store traits): `#[tower_agent_auth::async_trait]` on the `impl`.
/// Re-exported so that a plain `async fn` in an impl needs no extra dependency.
pub use async_trait::async_trait;
pub use error::{InvalidReason, ResolveError};
pub use layer::{AgentAuthLayer, PrincipalRejection, RequireCapabilityLayer};
pub use principal::{ExecutionPrincipal, Principal};
pub use resolver::{SessionResolver, TokenLookup, TokenResolver};
