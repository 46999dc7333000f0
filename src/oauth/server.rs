//! [`AuthorizationServer`]: what every endpoint shares — the store, the issuer, the resources it
//! issues for, lifetimes, the bounds on registration, the audit trail — and the one router.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use ::axum::Router;
use time::OffsetDateTime;

use super::client::{Client, ClientKind};
use super::grant::{AuthorizationCodeGrant, Grant, RefreshTokenGrant};
use super::issuer::{Issuer, IssuerError};
use super::registration::AddressLimiter;
use crate::audit::{AuditEvent, AuditWriter};
use crate::server::SESSION_COOKIE;
use crate::store::{Backend, Store};

/// The longest an authorization code lives (RFC 6749 §4.1.2 recommends at most 10 minutes;
/// this server keeps 60 s).
pub const MAX_CODE_LIFETIME: Duration = Duration::from_secs(60);

/// The bounds on open registration (RFC 7591): registration grants nothing, but each one is a
/// record, so there are few of them and they go when unused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrationLimits {
    /// The most registered clients kept at once (live ones; `None`: no cap). Past it,
    /// registration answers 503 `temporarily_unavailable` until some lapse.
    pub cap: Option<u64>,
    /// How long a registration lives without being used; each use (a consent, a token) pushes
    /// its end back by as much.
    pub unused_for: Duration,
    /// Registrations one client address may make in a burst, refilled evenly over `window`.
    pub per_address: NonZeroU32,
    /// The window `per_address` refills over.
    pub window: Duration,
}

impl Default for RegistrationLimits {
    /// 10 000 clients; 30 days unused; 10 registrations per address per hour.
    fn default() -> Self {
        Self {
            cap: Some(10_000),
            unused_for: Duration::from_secs(30 * 86_400),
            per_address: NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN),
            window: Duration::from_secs(3600),
        }
    }
}

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
    pub(crate) inner: Arc<Inner<B>>,
}

impl<B> Clone for AuthorizationServer<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<B> std::fmt::Debug for AuthorizationServer<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.inner.issuer)
            .field("resources", &self.inner.resources)
            .field("access_lifetime", &self.inner.access_lifetime)
            .field("refresh_lifetime", &self.inner.refresh_lifetime)
            .field("code_lifetime", &self.inner.code_lifetime)
            .field("registration", &self.inner.registration)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner<B> {
    pub(crate) store: Store<B>,
    pub(crate) issuer: Issuer,
    pub(crate) resources: Vec<String>,
    pub(crate) scopes_supported: Vec<String>,
    pub(crate) access_lifetime: Duration,
    pub(crate) refresh_lifetime: Duration,
    pub(crate) code_lifetime: Duration,
    pub(crate) registration: RegistrationLimits,
    pub(crate) limiter: Arc<AddressLimiter>,
    pub(crate) audit: Option<AuditWriter>,
    pub(crate) consent_key: Arc<[u8; 32]>,
    pub(crate) sign_in: String,
    pub(crate) session_cookie: String,
    pub(crate) grants: Vec<Arc<dyn Grant<B>>>,
}

impl<B> Clone for Inner<B> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            issuer: self.issuer.clone(),
            resources: self.resources.clone(),
            scopes_supported: self.scopes_supported.clone(),
            access_lifetime: self.access_lifetime,
            refresh_lifetime: self.refresh_lifetime,
            code_lifetime: self.code_lifetime,
            registration: self.registration,
            limiter: self.limiter.clone(),
            audit: self.audit.clone(),
            consent_key: self.consent_key.clone(),
            sign_in: self.sign_in.clone(),
            session_cookie: self.session_cookie.clone(),
            grants: self.grants.clone(),
        }
    }
}

impl<B: Backend> AuthorizationServer<B> {
    /// A server for `store`, identified by `issuer` (normalised: see [`Issuer`]), with the
    /// grants `authorization_code` and `refresh_token`, access tokens of 1 h, refresh tokens of
    /// 30 days, codes of 60 s, the default [`RegistrationLimits`], sign-in at `/login`, no
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
            inner: Arc::new(Inner {
                store,
                issuer,
                resources: Vec::new(),
                scopes_supported: Vec::new(),
                access_lifetime: Duration::from_secs(3600),
                refresh_lifetime: Duration::from_secs(30 * 86_400),
                code_lifetime: MAX_CODE_LIFETIME,
                limiter: Arc::new(AddressLimiter::new(&registration)),
                registration,
                audit: None,
                consent_key: Arc::new(key),
                sign_in: "/login".into(),
                session_cookie: SESSION_COOKIE.into(),
                grants: vec![
                    Arc::new(AuthorizationCodeGrant),
                    Arc::new(RefreshTokenGrant),
                ],
            }),
        })
    }

    fn edit(self, change: impl FnOnce(&mut Inner<B>)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
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

    /// The capability patterns advertised as `scopes_supported` (clients ask for every one),
    /// and granted when a request names no scope and its client registered none: the baseline
    /// a new client should get.
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
    pub fn registration_limits(self, limits: RegistrationLimits) -> Self {
        self.edit(|s| {
            s.limiter = Arc::new(AddressLimiter::new(&limits));
            s.registration = limits;
        })
    }

    /// Records registrations, codes, tokens, rotations, replays, reuses, refusals and
    /// revocations in the audit trail (never a secret).
    pub fn audit(self, writer: AuditWriter) -> Self {
        self.edit(|s| s.audit = Some(writer))
    }

    /// The key consent forms are bound with (HMAC-SHA-256): the same on every node that serves
    /// the authorization endpoint, kept secret.
    pub fn consent_key(self, key: [u8; 32]) -> Self {
        self.edit(|s| s.consent_key = Arc::new(key))
    }

    /// The sign-in page a person who is not signed in is sent to (`/login` by default), with
    /// `?return=` the authorization request (see [`Login`](crate::server::Login)).
    pub fn sign_in_path(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.edit(|s| s.sign_in = path)
    }

    /// The cookie of the sessions people sign in with ([`SESSION_COOKIE`] by default): consent
    /// forms are bound to its value, so a form is good for one session only.
    pub fn session_cookie(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|s| s.session_cookie = name)
    }

    /// Adds a grant to the token endpoint (or replaces the one of its `grant_type`).
    pub fn grant(self, grant: impl Grant<B>) -> Self {
        let grant: Arc<dyn Grant<B>> = Arc::new(grant);
        self.edit(|s| {
            s.grants.retain(|g| g.grant_type() != grant.grant_type());
            s.grants.push(grant);
        })
    }

    /// The store.
    pub fn store(&self) -> &Store<B> {
        &self.inner.store
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.inner.issuer
    }

    /// The resources tokens may be issued for, the default first.
    pub fn resources(&self) -> &[String] {
        &self.inner.resources
    }

    /// How long access tokens live.
    pub fn access_lifetime(&self) -> Duration {
        self.inner.access_lifetime
    }

    /// How long refresh tokens live.
    pub fn refresh_lifetime(&self) -> Duration {
        self.inner.refresh_lifetime
    }

    /// Now, by the store's clock.
    pub fn now(&self) -> OffsetDateTime {
        self.inner.store.now()
    }

    /// The grant types the token endpoint serves.
    pub fn grant_types(&self) -> Vec<&str> {
        self.inner.grants.iter().map(|g| g.grant_type()).collect()
    }

    /// The resource a request is for: the one it names, if this server issues for it; the
    /// default when it names none. `Err` with the reason otherwise.
    pub(crate) fn target(&self, asked: Option<&str>) -> Result<Option<String>, &'static str> {
        match (asked, self.inner.resources.first()) {
            (None, default) => Ok(default.cloned()),
            (Some(asked), _) if self.inner.resources.iter().any(|r| r == asked) => {
                Ok(Some(asked.to_owned()))
            }
            (Some(_), None) => Err("this server issues tokens for no resource"),
            (Some(_), Some(_)) => Err("the resource is not one this server issues tokens for"),
        }
    }

    /// Marks `client` used now: its last use, and for a registered client an end pushed back by
    /// [`RegistrationLimits::unused_for`]. Best effort: a failure is logged, not answered.
    pub(crate) async fn touch_client(&self, client: &Client) {
        let now = self.now();
        let mut touched = client.clone();
        touched.last_used_at = Some(now);
        if touched.kind == ClientKind::Registered {
            let unused_for = time::Duration::try_from(self.inner.registration.unused_for)
                .unwrap_or(time::Duration::MAX);
            touched.expires_at = now.checked_add(unused_for);
        }
        if let Err(error) = self.store().backend().update_client(&touched).await {
            tracing::warn!(%error, client = %client.id, "oauth: could not record a client's use");
        }
    }

    /// Records `event` in the audit trail, if there is one.
    pub async fn record(&self, event: AuditEvent) {
        if let Some(writer) = &self.inner.audit {
            writer.record(event).await;
        }
    }

    /// Every endpoint on one router, under the issuer's path: the metadata (RFC 8414, and
    /// `/.well-known/openid-configuration` answering 404), `POST /oauth/register`,
    /// `GET`/`POST /oauth/authorize`, `POST /oauth/token`, `POST /oauth/introspect` and
    /// `POST /oauth/revoke`. Merge it at the root of the application.
    ///
    /// The authorization endpoint reads the person from the request's
    /// [`Principal`](crate::Principal) (an [`AgentAuthLayer`](crate::AgentAuthLayer) with a
    /// session resolver, outside this router, puts it there), and answers only session
    /// principals. The registration limit counts by the connection's address
    /// (`ConnectInfo<SocketAddr>`; without it, every client counts as one).
    pub fn router(&self) -> Router {
        Router::new()
            .merge(super::metadata::router(self.clone()))
            .merge(super::registration::router(self.clone()))
            .merge(super::authorize::router(self.clone()))
            .merge(super::token::router(self.clone()))
            .merge(super::introspect::router(self.clone()))
            .merge(super::revoke::router(self.clone()))
    }
}
