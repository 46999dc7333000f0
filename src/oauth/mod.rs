//! The OAuth 2.1 authorization server (feature `oauth`): how agents obtain tokens.
//!
//! An OAuth client is a registered agent (`client_id` = its slug), a dynamically registered
//! client (RFC 7591) or a Client ID Metadata Document. The routers here — metadata (RFC 8414),
//! registration, the authorization endpoint with PKCE and consent, the token endpoint,
//! introspection (RFC 7662) and revocation (RFC 7009) — mount in any axum application.
//!
//! The records — [`Client`], [`AuthorizationCode`], [`RefreshToken`], [`Connection`] — are
//! kept by the store's [`Backend`](crate::store::Backend), each single-use or rotating step
//! one atomic method of it.

mod authority;
mod authorize;
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
mod metadata;
mod page;
mod params;
mod pkce;
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
pub use metadata::{ProtectedResource, ResourceError};
pub use params::Params;
pub use pkce::PkceError;
pub use refresh::{FamilyId, RefreshRotation, RefreshToken};
pub use registration::RegistrationLimits;
pub use response::TokenResponse;
pub use server::AuthorizationServer;
