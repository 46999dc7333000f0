//! The middleware: [`AgentAuthLayer`], the [`AgentAuth`] service, its [`ResponseFuture`], and
//! [`RequireCapabilityLayer`].
//!
//! # Request flow
//!
//! 1. `Authorization` is read. Two `Authorization` headers, an empty one, or a `Bearer` header
//!    without a valid RFC 6750 `b64token` → `400 invalid_request`. The scheme is
//!    case-insensitive.
//! 2. A bearer token without this application's prefix, or another scheme (`Basic`, `DPoP`):
//!    a required layer answers `401` (`invalid_token`, "not one of this application's tokens",
//!    for a foreign bearer token), so that no route behind it is reached unauthenticated. An
//!    optional layer, or one built with
//!    [`pass_foreign_credentials`](AgentAuthLayer::pass_foreign_credentials), passes it through
//!    untouched for another layer to judge; the request gets no principal. With a
//!    [`SessionResolver`](crate::SessionResolver), a request with another scheme is judged by
//!    its session first, as one without the header (a proxy's or a browser's cached `Basic`
//!    credentials do not sign the user out).
//! 3. No `Authorization` header: the [`SessionResolver`](crate::SessionResolver), if configured,
//!    is asked for a session principal; without one, a required layer answers `401`.
//! 4. A token with our prefix is checked offline (shape and CRC32 checksum: no hashing, no
//!    lookup), then hashed with SHA-256 and handed to the [`TokenResolver`](crate::TokenResolver).
//! 5. Success puts a [`Principal`](crate::Principal) into the request extensions and calls the
//!    inner service. Any failure answers without calling it:
//!
//! | case | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials, or another scheme, principal required | 401 | `Bearer realm="…"` |
//! | a bearer token of another prefix, principal required | 401 | `Bearer realm="…", error="invalid_token"` |
//! | malformed header, two `Authorization` headers | 400 | `Bearer realm="…", error="invalid_request"` |
//! | unknown, bad checksum, revoked, expired, spent, agent disabled, owner gone | 401 | `Bearer realm="…", error="invalid_token"` (one body for all) |
//! | capability missing ([`RequireCapabilityLayer`], `Require<C>`) | 403 | `Bearer realm="…", error="insufficient_scope", scope="…"` |
//! | store unavailable | 503 | — |
//! | the resolver's own data is bad ([`ResolveError::Corrupt`](crate::ResolveError::Corrupt)) | 500 | — |
//!
//! With [`AgentAuthLayer::resource_metadata`] the challenges also carry
//! `resource_metadata="…"` (RFC 9728). The reason a token was refused is never told to the
//! client; it is attached to the response as an [`InvalidReason`](crate::InvalidReason)
//! extension for logging.
//!
//! # When a use is spent
//!
//! A use-limited token reserves a use when it is resolved and settles it when the application
//! has answered: a `401`, `403` (from [`RequireCapabilityLayer`] or `Require<C>`), `404`, `405`
//! or `429` (a rate limit), or any answer carrying the [`NotActed`] extension, releases it; any
//! other answer spends it, and so does a request dropped unanswered. A handler that refuses
//! before acting with another status (a `400` about its input, a `503` of a dependency) marks
//! its response with [`NotActed`]; every
//! [`ApprovalRejection`](crate::approval::ApprovalRejection) answer carries it. See
//! [`store::resolve`](crate::store::resolve#when-a-use-is-spent).
//!
//! # Inside
//!
//! `layer.rs` (the settings), `service.rs` (`call` reads the request), `decide.rs` (every
//! decision), `future.rs` (drives the decided states), `bearer.rs` (the `Authorization`
//! header), `challenge.rs` and `rejection.rs` (RFC 6750 answers), `require.rs`.
//!
//! # Example
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_agent_auth::ceiling::Policy;
//! use tower_agent_auth::store::{AgentStore, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, TokenStore, UserRecord};
//! use tower_agent_auth::token::TokenFormat;
//! use tower_agent_auth::{AgentAuthLayer, Principal};
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
//!     .service_fn(|request: Request<String>| async move {
//!         let principal = request.extensions().get::<Principal>().unwrap();
//!         Ok::<_, std::convert::Infallible>(Response::new(format!("hello {}", principal.user_id())))
//!     });
//!
//! // A valid token: the inner service sees the principal.
//! let request = Request::builder()
//!     .header("authorization", format!("Bearer {}", issued.token.expose_secret()))
//!     .body(String::new())?;
//! let response = service.clone().oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(response.body(), "hello alice");
//!
//! // No token: 401 with a Bearer challenge, the inner service is not called.
//! let response = service.oneshot(Request::new(String::new())).await?;
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"api\"");
//! # Ok(()) }
//! ```

mod bearer;
mod challenge;
mod decide;
mod future;
#[allow(clippy::module_inception)]
mod layer;
pub(crate) mod rejection;
mod require;
mod service;

pub use challenge::ChallengeError;
pub use future::ResponseFuture;
pub use layer::AgentAuthLayer;
pub use rejection::{InsufficientScope, MissingLayer, MissingPrincipal, PrincipalRejection};
pub use require::{RequireCapability, RequireCapabilityFuture, RequireCapabilityLayer};
pub use service::AgentAuth;

/// A response extension by which the application says it refused the request before acting
/// on it: the layer then releases the use a use-limited token reserved (and, with uses shared
/// down a delegation chain, every ancestor's), whatever the status. Insert it with
/// `response.extensions_mut().insert(NotActed)`; every
/// [`ApprovalRejection`](crate::approval::ApprovalRejection) answer carries it. Set it only
/// when nothing was done: a use released is an operation not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NotActed;
