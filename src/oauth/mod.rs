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
//!   a reuse revoking the family), the device code (below), token exchange (RFC 8693, over
//!   [delegation](crate::delegation): a sub-agent's narrower child of its parent's token,
//!   [`TokenExchangeGrant`](grant::TokenExchangeGrant)) and `client_credentials` (an agent
//!   holding a client secret obtains its own token,
//!   [`ClientCredentialsGrant`](grant::ClientCredentialsGrant)); more by
//!   [`AuthorizationServer::grant`];
//! - `POST /oauth/agent-token`, the "Agent Tokens" endpoint: an orchestrator agent's client
//!   mints task tokens for the other agents of its owner, on behalf of a person who
//!   authorized it (below);
//! - the device flow (RFC 8628; [`DeviceFlow`] tells it step by step and sets its lifetimes
//!   and limits): `POST /oauth/device_authorization` for a device without a browser, and
//!   `GET`/`POST /oauth/device`, where the person signs in, enters the code the device shows
//!   and consents, in the consent page's layout;
//! - `POST /oauth/introspect` (RFC 7662, agent extensions) and `POST /oauth/revoke` (RFC 7009).
//!
//! With the feature `client-id-metadata-documents` and `AuthorizationServer::metadata_documents`,
//! a client may also be known by its Client ID Metadata Document: an https `client_id` is the
//! URL of its metadata, fetched with SSRF defences (public addresses only, checked after
//! resolution and pinned for the connection; no redirect; 5 KiB; 5 s), kept by its
//! `Cache-Control`, and advertised as `client_id_metadata_document_supported` (module
//! `document`).
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
//! # Agents as clients, sub-agents and orchestrators
//!
//! An agent is a client by its slug. [`Store::register_agent_client`](crate::store::Store::register_agent_client)
//! (`agent-auth client register --agent SLUG`) gives it a secret, shown once:
//!
//! - **client credentials**: the agent then obtains tokens of its own, acting for its owner,
//!   within the owner's role and its policy, for the access-token lifetime and with no refresh
//!   token; every request checks the agent and its owner as for any agent token;
//! - **token exchange**: a `subject_token` (an agent token; one issued to a client, by that
//!   client only) and an optional `actor_token` (a token of the sub-agent that will act) become
//!   a child token of the actor's agent — never wider, its `scope` and `resource` narrowing,
//!   not past the subject's expiry, bound to the subject's resource. Introspection shows the
//!   chain as RFC 8693's nested `act` (the acting agent outermost, the least recent innermost),
//!   beside `delegation_chain`;
//! - **the "Agent Tokens" endpoint**, for an orchestrator agent (`NewAgent::orchestrator()`):
//!   `POST /oauth/agent-token` (a form; the client authenticates with `client_id` and
//!   `client_secret`, or Basic) mints a task token
//!   ([`Store::issue_task_token`](crate::store::Store::issue_task_token)):
//!
//!   | parameter | |
//!   |---|---|
//!   | `delegated_by_user_id` | required: the person the token acts for |
//!   | `agent` | required: the target agent's slug, another agent of the orchestrator's owner (this server's addition: its tokens are always an agent's) |
//!   | `agent_type` | `autonomous`, `supervised` or `ephemeral`: checked against the target's |
//!   | `scope` | required: within the orchestrator's policy, the person's role, the target's policy and its owner's role |
//!   | `task_id` | required |
//!   | `max_operations`, `expires_on_completion` | an exact use limit; the last use ending the token |
//!   | `intent_description` | what the token is for |
//!   | `expires_in` | seconds: [`DEFAULT_TASK_TOKEN_LIFETIME`] (15 min) by default, cut to [`MAX_TASK_TOKEN_LIFETIME`] (1 h) |
//!   | `resource` | RFC 8707, the default resource otherwise |
//!
//!   Only the client of an active orchestrator agent (`NewAgent::orchestrator()`), with its
//!   secret, may call it (else `invalid_client` or `unauthorized_client`). The person named
//!   must have authorized the orchestrator — own it or hold an `admin` grant on it — and own
//!   the target or hold a grant on it (else `invalid_grant`, audited); a scope outside those
//!   bounds is `invalid_scope`. At every request of the token, as for every task token, the
//!   orchestrator must still be an active orchestrator and the person active, and the
//!   orchestrator's policy and the person's role bound it (the grants are checked at issue,
//!   within the token's short life). The answer: `access_token`, `token_type`, `expires_in`,
//!   `scope`, `agent_type`, `task_id`, `max_operations` (`null` for none) and
//!   `expires_on_completion`; introspection adds `operations_remaining`.
//!
//! None of these keeps a record of its own: a client secret is a [`Client`]'s hash, and the
//! tokens are agent tokens with their delegation or task fields.
//!
//! The records — [`Client`], [`AuthorizationCode`], [`RefreshToken`], [`Connection`] — are
//! kept by the store's [`Backend`](crate::store::Backend), each single-use or rotating step
//! one atomic method of it. No secret is kept (only SHA-256 hashes of client secrets, codes
//! and refresh tokens), none travels in a URL but the code in its one redirect, and none
//! reaches the audit trail.
//! The records — [`Client`], [`AuthorizationCode`], [`RefreshToken`], [`Connection`],
//! [`DeviceAuthorization`] — are kept by the store's [`Backend`](crate::store::Backend), each
//! single-use or rotating step one atomic method of it. No secret is kept (only SHA-256 hashes
//! of client secrets, codes, device and user codes and refresh tokens), none travels in a URL
//! but the code in its one redirect (and a device's user code, in `verification_uri_complete`,
//! which is not a credential: it leads a signed-in person to a consent page), and none reaches
//! the audit trail.

mod agent_token;
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
mod device;
#[cfg(feature = "client-id-metadata-documents")]
pub mod document;
mod error;
pub mod grant;
mod introspect;
mod issue;
mod issuer;
mod lookup;
mod manage;
mod metadata;
mod name;
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

pub use agent_token::{DEFAULT_TASK_TOKEN_LIFETIME, MAX_TASK_TOKEN_LIFETIME};
pub use authority::{Authority, MAX_CODE_LIFETIME};
pub use client::{Client, ClientAuth, ClientKind};
pub use code::{AuthorizationCode, Redemption};
pub use connection::Connection;
pub use device::{
    DeviceAuthorization, DeviceFlow, DevicePoll, DeviceStatus, Polled, SLOW_DOWN_STEP,
};
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
