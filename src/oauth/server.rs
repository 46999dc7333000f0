//! [`AuthorizationServer`]: the configuration of every endpoint, and the one router that serves
//! them.

use std::sync::Arc;
use std::time::Duration;

use ::axum::Router;

use super::authority::{Authority, MAX_CODE_LIFETIME};
use super::authorize::{self, Consenting};
use super::device::{self, DeviceFlow};
use super::grant::{Grant, Grants};
use super::issuer::{Issuer, IssuerError};
use super::metadata::{self, ProtectedResource, ResourceError};
use super::registration::{self, Registration, RegistrationLimits};
use super::{agent_token, introspect, revoke, token};
use crate::audit::AuditWriter;
use crate::server::SESSION_COOKIE;
use crate::store::{Backend, Store};

/// The OAuth 2.1 authorization server over a [`Store`]: its configuration, and
/// [`router`](AuthorizationServer::router), which serves every endpoint. Cheap to clone.
///
/// ```
/// use tower_agent_auth::oauth::AuthorizationServer;
/// use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
/// use tower_agent_auth::token::TokenFormat;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), MemoryUserDirectory::new());
/// let server = AuthorizationServer::new(store, "https://auth.example.com/")
///     .unwrap()
///     .resource("https://api.example.com/mcp")
///     .scopes_supported(["notes:read"]);
/// assert_eq!(server.issuer().as_str(), "https://auth.example.com");
/// let app: axum::Router = server.router().merge(
///     server.protected_resource("https://api.example.com/mcp").unwrap().router(),
/// );
/// # let _ = app;
/// # }
/// ```
pub struct AuthorizationServer<B> {
    authority: Authority<B>,
    grants: Grants<B>,
    registration: RegistrationLimits,
    consenting: Arc<Consenting>,
    device: DeviceFlow,
}

impl<B> Clone for AuthorizationServer<B> {
    fn clone(&self) -> Self {
        Self {
            authority: self.authority.clone(),
            grants: self.grants.clone(),
            registration: self.registration,
            consenting: self.consenting.clone(),
            device: self.device,
        }
    }
}

impl<B> std::fmt::Debug for AuthorizationServer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("authority", &self.authority)
            .field("registration", &self.registration)
            .field("device", &self.device)
            .field("sign_in", &self.consenting.sign_in)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> AuthorizationServer<B> {
    /// A server for `store`, identified by `issuer` (normalised: see [`Issuer`]), with the
    /// grants `authorization_code`, `refresh_token`, token exchange
    /// ([`TokenExchangeGrant`](super::grant::TokenExchangeGrant)), `client_credentials`
    /// ([`ClientCredentialsGrant`](super::grant::ClientCredentialsGrant)) and the device code
    /// (the default [`DeviceFlow`]), access tokens of 1 h, refresh tokens of 30 days, codes of 60 s, the default [`RegistrationLimits`], sign-in at `/login`, no
    /// resource and no audit trail. The key that binds consent forms is drawn at random: give
    /// every node the same with [`AuthorizationServer::consent_key`].
    pub fn new(store: Store<B>, issuer: &str) -> Result<Self, IssuerError> {
        let issuer = Issuer::parse(issuer)?;
        let mut key = [0u8; 32];
        // No entropy means no secrets at all: codes and tokens will fail as well, loudly.
        if let Err(error) = getrandom::fill(&mut key) {
            tracing::error!(%error, "oauth: no entropy for the consent key");
        }
        let registration = RegistrationLimits::default();
        Ok(Self {
            authority: Authority::new(store, issuer)
                .edit(|s| s.unused_for = registration.unused_for),
            grants: Grants::standard(),
            registration,
            consenting: Arc::new(Consenting {
                key,
                sign_in: "/login".into(),
                session_cookie: SESSION_COOKIE.into(),
            }),
            device: DeviceFlow::default(),
        })
    }

    fn edit(mut self, change: impl FnOnce(&mut super::authority::Shared<B>)) -> Self {
        self.authority = self.authority.edit(change);
        self
    }

    fn consenting(mut self, change: impl FnOnce(&mut Consenting)) -> Self {
        let mut consenting = Consenting {
            key: self.consenting.key,
            sign_in: self.consenting.sign_in.clone(),
            session_cookie: self.consenting.session_cookie.clone(),
        };
        change(&mut consenting);
        self.consenting = Arc::new(consenting);
        self
    }

    /// Adds a resource (RFC 8707) tokens may be issued for, compared byte for byte with the
    /// `resource` clients send (give exactly the URL clients are given, e.g.
    /// `https://api.example.com/mcp`). The first is the default for a request naming none;
    /// with none configured, tokens are bound to no resource and a request naming one is
    /// refused (`invalid_target`).
    pub fn resource(self, uri: impl Into<String>) -> Self {
        let uri = uri.into();
        self.edit(|s| s.resources.push(uri))
    }

    /// The type of the agent made for a person's connection to a registered client (the
    /// default type unless set): `Supervised` holds each critical action of every app a person
    /// connects for their approval. Agents made before keep their type.
    pub fn connection_agent_type(self, agent_type: crate::principal::AgentType) -> Self {
        self.edit(|s| s.connection_agent_type = agent_type)
    }

    /// The capability patterns advertised as `scopes_supported` (clients ask for every one),
    /// and asked for when a request names no scope and its client registered none: the
    /// baseline a new client should get.
    pub fn scopes_supported<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes = scopes.into_iter().map(Into::into).collect();
        self.edit(|s| s.scopes_supported = scopes)
    }

    /// How long access tokens live (1 h by default; an agent type's maximum still applies).
    pub fn access_token_lifetime(self, lifetime: Duration) -> Self {
        self.edit(|s| s.access_lifetime = lifetime)
    }

    /// How long a refresh token lives from its issue (30 days by default); each rotation
    /// issues a new one.
    pub fn refresh_token_lifetime(self, lifetime: Duration) -> Self {
        self.edit(|s| s.refresh_lifetime = lifetime)
    }

    /// How long authorization codes live: at most [`MAX_CODE_LIFETIME`] (longer is cut to it).
    pub fn code_lifetime(self, lifetime: Duration) -> Self {
        self.edit(|s| s.code_lifetime = lifetime.min(MAX_CODE_LIFETIME))
    }

    /// Bounds on open registration other than the default.
    pub fn registration_limits(mut self, limits: RegistrationLimits) -> Self {
        self.registration = limits;
        self.edit(|s| s.unused_for = limits.unused_for)
    }

    /// How the device flow runs (RFC 8628): its codes' lifetime, the polling interval, the
    /// limits on wrong user codes and on requests per address.
    pub fn device_flow(mut self, flow: DeviceFlow) -> Self {
        self.device = flow;
        self
    }

    /// Records registrations, codes, tokens, rotations, replays, reuses, refusals and
    /// revocations in the audit trail (never a secret).
    pub fn audit(self, writer: AuditWriter) -> Self {
        self.edit(|s| s.audit = Some(writer))
    }

    /// Reuses an introspection answer, and an introspecting client's authentication, for at
    /// most `keep_for` (never past the token's expiry; never for a use-limited token or an
    /// inactive answer): a resource server that introspects at every request then costs no
    /// read of the store, and a revocation is seen within `keep_for` — give it the bound of the
    /// verdict cache, which holds the layer to the same. Off by default (every answer read
    /// anew); `Duration::ZERO` turns it off.
    pub fn introspection_reuse(self, keep_for: Duration) -> Self {
        let recent = (!keep_for.is_zero()).then(|| Arc::new(super::recent::Recent::new(keep_for)));
        self.edit(|s| s.recent = recent)
    }

    /// Introspection reads and feeds `cache`, the verdict cache the layer resolves through: a
    /// token the cache holds as refused (unknown, revoked, expired, spent) is inactive without
    /// a read of the store; an [answer reused](Self::introspection_reuse) is given only while
    /// the cache still holds the token's verdict, so a change the cache applied ends it at
    /// once; and what introspection reads from the store is kept in the cache like a
    /// request's verdict.
    pub fn verdict_cache(self, cache: crate::cache::VerdictCache) -> Self {
        self.edit(|s| s.verdicts = Some(cache))
    }

    /// The key consent forms are bound with (HMAC-SHA-256): the same on every node that serves
    /// the authorization endpoint, kept secret.
    pub fn consent_key(self, key: [u8; 32]) -> Self {
        self.consenting(|c| c.key = key)
    }

    /// The sign-in page a person who is not signed in is sent to (`/login` by default), with
    /// `?return=` the authorization request (see [`Login`](crate::server::Login)).
    pub fn sign_in_path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.consenting(|c| c.sign_in = path)
    }

    /// The cookie of the sessions people sign in with ([`SESSION_COOKIE`] by default): consent
    /// forms are bound to its value, so a form is good for one session only.
    pub fn session_cookie(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.consenting(|c| c.session_cookie = name)
    }

    /// Accepts Client ID Metadata Documents: an https `client_id` is the URL of the client's
    /// metadata, fetched as `documents` says (with SSRF defences, kept by its
    /// `Cache-Control`), and the metadata says `client_id_metadata_document_supported`. See
    /// [`document`](super::document). Off by default: without it, an https `client_id` is an
    /// unknown client, unless a document's client was stored before.
    #[cfg(feature = "client-id-metadata-documents")]
    pub fn metadata_documents(self, documents: super::document::MetadataDocuments) -> Self {
        let documents = Arc::new(super::document::Documents::new(documents));
        self.edit(|s| s.documents = Some(documents))
    }

    /// **For tests only**: accepts Client ID Metadata Documents as configured so far (or
    /// with the defaults), trusting `trust`'s CA and, if it allows them, loopback hosts — so
    /// that a test's local TLS server can serve them. Never in production: see
    /// [`TestTrust`](super::document::TestTrust).
    #[cfg(feature = "client-id-metadata-documents")]
    pub fn metadata_documents_for_tests(self, trust: super::document::TestTrust) -> Self {
        let documents = (self.authority.documents())
            .map(|documents| documents.config().clone())
            .unwrap_or_default()
            .trust_for_tests(trust);
        self.metadata_documents(documents)
    }

    /// Adds a grant to the token endpoint (or replaces the one of its `grant_type`).
    pub fn grant(mut self, grant: impl Grant<B>) -> Self {
        self.grants = self.grants.with(Arc::new(grant));
        self
    }

    /// Stops serving the grant of `grant_type` (`client_credentials`, or
    /// [`TOKEN_EXCHANGE`](super::grant::TOKEN_EXCHANGE), …): the token endpoint answers
    /// `unsupported_grant_type` for it and the metadata no longer lists it.
    ///
    /// ```
    /// use tower_agent_auth::oauth::AuthorizationServer;
    /// use tower_agent_auth::oauth::grant::TOKEN_EXCHANGE;
    /// use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
    /// use tower_agent_auth::token::TokenFormat;
    ///
    /// let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), MemoryUserDirectory::new());
    /// let server = AuthorizationServer::new(store, "https://auth.example.com")
    ///     .unwrap()
    ///     .without_grant(TOKEN_EXCHANGE);
    /// assert_eq!(
    ///     server.grant_types(),
    ///     [
    ///         "authorization_code",
    ///         "refresh_token",
    ///         "client_credentials",
    ///         "urn:ietf:params:oauth:grant-type:device_code",
    ///     ]
    /// );
    /// ```
    pub fn without_grant(mut self, grant_type: &str) -> Self {
        self.grants = self.grants.without(grant_type);
        self
    }

    /// What every endpoint and grant works with.
    pub fn authority(&self) -> &Authority<B> {
        &self.authority
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        self.authority.issuer()
    }

    /// The grant types the token endpoint serves.
    pub fn grant_types(&self) -> Vec<&'static str> {
        self.grants.types()
    }

    /// The authorization server's metadata document (RFC 8414), as served.
    pub fn metadata(&self) -> serde_json::Value {
        metadata::document(&self.authority, &self.grant_types())
    }

    /// The metadata of `resource` (RFC 9728), naming this server and its `scopes_supported`.
    pub fn protected_resource(&self, resource: &str) -> Result<ProtectedResource, ResourceError> {
        Ok(ProtectedResource::new(resource, self.issuer().as_str())?
            .scopes_supported(self.authority.scopes_supported().to_vec()))
    }

    /// Every endpoint on one router, under the issuer's path: the metadata (RFC 8414, and
    /// `/.well-known/openid-configuration` answering 404), `POST /oauth/register`,
    /// `GET`/`POST /oauth/authorize`, `POST /oauth/token`, `POST /oauth/introspect`,
    /// `POST /oauth/revoke`, `POST /oauth/agent-token` (an orchestrator's task tokens: see
    /// the [`oauth`](super) module), `POST /oauth/device_authorization` and `GET`/`POST
    /// /oauth/device` (the device flow). Merge it at the root of the application.
    ///
    /// The authorization endpoint reads the person from the request's
    /// [`Principal`](crate::Principal) (an [`AgentAuthLayer`](crate::AgentAuthLayer) with a
    /// session resolver, outside this router, puts it there), and answers only session
    /// principals. The registration limit counts by the connection's address
    /// (`ConnectInfo<SocketAddr>`; without it, every client counts as one), and so do the
    /// device flow's limits.
    pub fn router(&self) -> Router {
        let authority = &self.authority;
        let consenting = Consenting {
            key: self.consenting.key,
            sign_in: self.consenting.sign_in.clone(),
            session_cookie: self.consenting.session_cookie.clone(),
        };
        Router::new()
            .merge(metadata::router(authority, &self.grant_types()))
            .merge(registration::router(
                authority.clone(),
                Registration::new(self.registration),
            ))
            .merge(device::authorization_router(authority.clone(), self.device))
            .merge(device::page_router(
                authority.clone(),
                Consenting {
                    key: consenting.key,
                    sign_in: consenting.sign_in.clone(),
                    session_cookie: consenting.session_cookie.clone(),
                },
                self.device,
            ))
            .merge(authorize::router(authority.clone(), consenting))
            .merge(token::router(authority.clone(), self.grants.clone()))
            .merge(introspect::router(authority.clone()))
            .merge(revoke::router(authority.clone()))
            .merge(agent_token::router(authority.clone()))
    }
}
