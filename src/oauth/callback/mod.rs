//! The callback receiver (feature `callback`): this application as the OAuth *client* of
//! another service's authorize flow, so that an agent of this application can act at that
//! service with a token the service issued — the safe version of a receiver that stores
//! whatever token anyone posts to it.
//!
//! # The flow
//!
//! 1. A signed-in administrator of an agent posts `POST /connect/{provider}` with the form
//!    field `agent=<slug>` (from a page of this application: cross-site posts are refused; a
//!    link to `GET /connect/{provider}?agent=<slug>` shows a page with that form, and keeps
//!    nothing).
//!    The receiver draws a `state` (256 random bits) and a PKCE verifier, and keeps a pending
//!    authorization: the SHA-256 of the state, the SHA-256 of the person's session cookie, the
//!    person, the agent, the provider, the verifier (sealed) and an expiry (10 minutes by
//!    default). It answers `303` to the provider's authorization endpoint with the `state`, the
//!    S256 `code_challenge`, the scopes and the redirect URI (built by the `oauth2` crate).
//! 2. The provider sends the person back to the redirect URI with `code` and `state`. The
//!    receiver takes the pending authorization of that state in one atomic step (a state is
//!    accepted once, on any node), then requires that it is unexpired, for this provider, and
//!    that the request comes from the very session it was handed to, by the same person, who
//!    is still allowed to connect the agent. Otherwise: a `400` page, and a
//!    [`CallbackRefused`](crate::audit::AuditAction::CallbackRefused) event in the audit trail
//!    (a state this server did not issue, a replay, another session's, an expired one).
//! 3. The code is exchanged server-side at the provider's token endpoint (the `oauth2` crate,
//!    with the verifier and this application's client secret; no redirect followed; 10 s and
//!    64 KiB at most). The access and refresh tokens are sealed with XChaCha20-Poly1305 under
//!    the [`CallbackKey`], the record's id and the field's name as associated data and a fresh
//!    random nonce each, and kept as the agent's [`ProviderToken`] for that provider (one per
//!    agent and provider: connecting again replaces it).
//!
//! # Who may connect
//!
//! A provider token is a credential of the agent it is kept for, so the crate's access rule
//! for credentials applies ([`authorize`](crate::store::authorize)): connecting an agent and
//! disconnecting it need the agent's owner or an `admin` grant on it
//! ([`Operation::ManageAgent`](crate::store::Operation::ManageAgent)); listing needs `operator`
//! ([`Operation::ListTokens`](crate::store::Operation::ListTokens)). Only a person signed in
//! by a session may start or finish a connection, never an agent token.
//!
//! # Listings
//!
//! `GET /api/providers` names the configured providers; `GET /api/provider-tokens` and
//! `GET /api/agents/{slug}/provider-tokens` list the tokens kept — provider, agent, who
//! connected it, when, the scopes, the expiry — never a token; `DELETE
//! /api/agents/{slug}/provider-tokens/{id}` deletes one. The application reads a token with
//! [`CallbackReceiver::credentials`], to call the provider.
//!
//! # Secrets
//!
//! No secret travels in a URL: the state is not one (it is bound to the session, and only its
//! hash is kept), the code comes in its one redirect, the verifier, the client secret and the
//! tokens go only from server to server. None is logged (at any level) or reaches the audit
//! trail. The pages answer `Cache-Control: no-store` and `Referrer-Policy: no-referrer`.
//!
//! ```
//! use tower_agent_auth::oauth::callback::{CallbackKey, CallbackReceiver, Provider};
//! use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
//! use tower_agent_auth::token::TokenFormat;
//!
//! let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), MemoryUserDirectory::new());
//! let github = Provider::new(
//!     "github",
//!     "https://github.com/login/oauth/authorize",
//!     "https://github.com/login/oauth/access_token",
//!     "Iv1.0123456789",
//!     "https://app.example.com/connect/github/callback",
//! )
//! .unwrap()
//! .client_secret("from your secret store")
//! .scopes(["repo"]);
//! let receiver = CallbackReceiver::new(store, CallbackKey::new([7; 32]))
//!     .provider(github)
//!     .unwrap();
//! // Merge it inside the `AgentAuthLayer` that resolves sessions, like the management API.
//! let app: axum::Router = receiver.router();
//! # let _ = app;
//! ```

mod api;
mod exchange;
mod page;
mod provider;
mod receive;
mod receiver;
mod record;
mod routes;
mod seal;
mod start;

pub use provider::{Provider, ProviderError, SecretIn};
pub use receiver::{CallbackError, CallbackReceiver, Credentials};
pub use record::{CallbackState, ProviderToken, Sealed, StateTaken};
pub use routes::START;
pub use seal::{CallbackKey, KeyError, SealError};
