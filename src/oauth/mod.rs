//! The OAuth 2.1 authorization server (feature `oauth`): how agents obtain tokens.
//!
//! An OAuth client is a registered agent (`client_id` = its slug, `agent_slug` accepted as an
//! alias), a dynamically registered client (RFC 7591) or a Client ID Metadata Document.
//! [`AuthorizationServer`] serves, on one router mountable in any axum application:
//!
//! - the metadata (RFC 8414) at `/.well-known/oauth-authorization-server`, one canonical
//!   [`Issuer`] everywhere; `/.well-known/openid-configuration` answers a JSON 404;
//! - `POST /oauth/register` (RFC 7591): open, rate-limited per address, capped, lapsing unused
//!   ([`RegistrationLimits`]);
//! - `GET`/`POST /oauth/authorize`: code + PKCE (S256 only), `resource` (RFC 8707), a consent
//!   page bound to the session and the request; a registered agent's owner or admin consents
//!   for it, and consent to a registered client makes the person's [`Connection`] (an agent of
//!   theirs for that client);
//! - `POST /oauth/token`: the [`Grant`]s `authorization_code` and `refresh_token` (rotated,
//!   a reuse revoking the family), more by [`AuthorizationServer::grant`];
//! - `POST /oauth/introspect` (RFC 7662, agent extensions) and `POST /oauth/revoke` (RFC 7009).
//!
//! The other way round, [`callback`] (feature `callback`) makes this application the client of
//! another service's authorize flow, keeping the tokens it receives for an agent, sealed.
//!
//! [`ProtectedResource`] is the protected-resource metadata (RFC 9728) an application serves
//! for each resource. Access tokens are the crate's own agent tokens, short-lived and bound to
//! their resource, so the [`AgentAuthLayer`](crate::AgentAuthLayer) in front of the resource
//! checks them like any other.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use tower_agent_auth::oauth::AuthorizationServer;
//! use tower_agent_auth::server::{Login, PasswordVerifier, Sessions};
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, UserDirectory};
//! use tower_agent_auth::token::TokenFormat;
//! use tower_agent_auth::{AgentAuthLayer, Principal};
//! # struct Accounts;
//! # #[async_trait::async_trait]
//! # impl PasswordVerifier for Accounts {
//! #     async fn verify(&self, _: &str, _: &str)
//! #         -> Result<Option<tower_agent_auth::principal::UserId>, tower_agent_auth::error::BoxError> {
//! #         Ok(None)
//! #     }
//! # }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let users = MemoryUserDirectory::new();
//! let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), users.clone());
//! let directory: Arc<dyn UserDirectory> = Arc::new(users);
//! let sessions = Sessions::new(directory, Duration::from_secs(8 * 3600));
//!
//! let oauth = AuthorizationServer::new(store.clone(), "https://app.example.com")
//!     .unwrap()
//!     .resource("https://app.example.com/mcp")
//!     .scopes_supported(["notes:read"]);
//! let mcp = Router::new()
//!     .route("/mcp", get(|p: Principal| async move { p.user_id().to_string() }))
//!     .layer(AgentAuthLayer::new(store.clone()));
//! let app: Router = Router::new()
//!     // Sign-in and the authorization server see the person through their session.
//!     .merge(Login::new(sessions.clone(), Arc::new(Accounts)).router())
//!     .merge(oauth.router())
//!     .layer(AgentAuthLayer::new(store).optional().with_session_resolver(sessions))
//!     .merge(oauth.protected_resource("https://app.example.com/mcp").unwrap().router())
//!     .merge(mcp);
//! # let _ = app;
//! # }
//! ```
//!
//! The records — [`Client`], [`AuthorizationCode`], [`RefreshToken`], [`Connection`] — are
//! kept by the store's [`Backend`](crate::store::Backend), each single-use or rotating step
//! one atomic method of it. No secret is kept (only SHA-256 hashes of client secrets, codes
//! and refresh tokens), none travels in a URL but the code in its one redirect, and none
//! reaches the audit trail.

mod authority;
mod authorize;
#[cfg(feature = "callback")]
pub mod callback;
mod client;
mod client_auth;
mod code;
mod connect;
mod connection;
mod consent;
mod error;
pub mod grant;
mod introspect;
mod issue;
mod issuer;
mod manage;
mod metadata;
mod page;
mod params;
mod pkce;
mod recent;
pub mod redirect;
mod refresh;
mod registration;
mod request;
mod response;
mod revoke;
mod routes;
mod scope;
mod secret;
mod server;
mod token;

pub use authority::{Authority, MAX_CODE_LIFETIME};
pub use client::{Client, ClientAuth, ClientKind};
pub use code::{AuthorizationCode, Redemption};
pub use connection::Connection;
pub use error::{ErrorCode, OAuthError};
pub use grant::Grant;
pub use issue::Issue;
pub use issuer::{Issuer, IssuerError};
pub use manage::{ClientSecret, NewClient, RegisteredClient};
pub use metadata::{ProtectedResource, ResourceError};
pub use params::Params;
pub use pkce::PkceError;
pub use refresh::{FamilyId, RefreshRotation, RefreshToken};
pub use registration::RegistrationLimits;
pub use response::TokenResponse;
pub use server::AuthorizationServer;
