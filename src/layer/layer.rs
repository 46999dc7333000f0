//! [`AgentAuthLayer`]: the settings of the middleware — resolver, session resolver, whether a
//! principal is required, realm and resource metadata, audit recorder, clock — shared by every
//! service it builds.

use std::sync::Arc;

use tower_layer::Layer;

use super::challenge::{Challenge, ChallengeError, DEFAULT_REALM};
use super::decide::Shared;
use super::service::AgentAuth;
use crate::audit::AuditRecorder;
use crate::clock::{Clock, SystemClock};
use crate::resolver::{SessionResolver, TokenResolver};

/// Configuration shared by every clone of the service.
/// A tower [`Layer`] that authenticates agent bearer tokens (and, optionally, user sessions) and
/// puts the resulting [`Principal`](crate::Principal) into the request extensions.
///
/// See the [module documentation](crate::layer) for the request flow and status codes.
#[derive(Clone)]
pub struct AgentAuthLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AgentAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentAuthLayer")
            .field("prefix", &self.shared.format.prefix())
            .field("required", &self.shared.required)
            .field("pass_foreign", &self.shared.pass_foreign)
            .field("realm", &self.shared.realm)
            .field("session_resolver", &self.shared.session.is_some())
            .field("audit", &self.shared.audit.is_some())
            .finish_non_exhaustive()
    }
}

impl AgentAuthLayer {
    /// A layer resolving tokens of `resolver.token_format()` with `resolver`.
    ///
    /// By default a principal is required (requests without credentials get `401`), the realm is
    /// `"api"` and no session resolver is consulted.
    pub fn new(resolver: impl TokenResolver) -> Self {
        Self::from_arc(Arc::new(resolver))
    }

    /// Like [`AgentAuthLayer::new`] for a resolver already behind an `Arc`.
    pub fn from_arc(resolver: Arc<dyn TokenResolver>) -> Self {
        let format = resolver.token_format().clone();
        let challenge = Challenge::default_shared().clone();
        Self {
            shared: Arc::new(Shared {
                resolver,
                format,
                session: None,
                required: true,
                pass_foreign: false,
                realm: DEFAULT_REALM.into(),
                resource_metadata: None,
                scope: None,
                resource: None,
                require_audience: false,
                challenge,
                default_challenge: true,
                audit: None,
                clock: Arc::new(SystemClock),
            }),
        }
    }

    fn edit(self, change: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        change(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Lets requests without credentials through without a principal (handlers may still
    /// demand one with the `Principal` extractor). Invalid tokens are still refused.
    pub fn optional(self) -> Self {
        self.edit(|s| s.required = false)
    }

    /// Lets credentials this layer does not own — a bearer token of another prefix, another
    /// scheme (`Basic`, `DPoP`) — through untouched and without a principal even when a
    /// principal is required, for another authentication layer inside this one to judge.
    /// Without it a required layer answers them `401` (`invalid_token` for a foreign bearer
    /// token), so that no route behind it is reached unauthenticated. An optional layer always
    /// lets them through.
    pub fn pass_foreign_credentials(self) -> Self {
        self.edit(|s| s.pass_foreign = true)
    }

    /// Whether requests without credentials are refused with `401` (the default).
    pub fn required(self, required: bool) -> Self {
        self.edit(|s| s.required = required)
    }

    /// Consults `resolver` for requests without an `Authorization` header, so users signed in by
    /// an ordinary session get the same kind of principal.
    pub fn with_session_resolver(self, resolver: impl SessionResolver) -> Self {
        let resolver: Arc<dyn SessionResolver> = Arc::new(resolver);
        self.edit(|s| s.session = Some(resolver))
    }

    /// Sets the realm of the `WWW-Authenticate` challenges.
    pub fn realm(self, realm: &str) -> Result<Self, ChallengeError> {
        let challenge = Challenge::new(
            realm,
            self.shared.resource_metadata.as_deref(),
            self.shared.scope.as_deref(),
        )?;
        Ok(self.edit(|s| {
            s.default_challenge =
                realm == DEFAULT_REALM && s.resource_metadata.is_none() && s.scope.is_none();
            s.realm = realm.into();
            s.challenge = Arc::new(challenge);
        }))
    }

    /// Adds `resource_metadata="…"` (RFC 9728) to 401 challenges, pointing MCP and OAuth
    /// clients at the protected resource metadata document.
    pub fn resource_metadata(self, url: &str) -> Result<Self, ChallengeError> {
        let challenge =
            Challenge::new(&self.shared.realm, Some(url), self.shared.scope.as_deref())?;
        Ok(self.edit(|s| {
            s.default_challenge = false;
            s.resource_metadata = Some(url.into());
            s.challenge = Arc::new(challenge);
        }))
    }

    /// The resource (RFC 8707) this layer protects, exactly as clients are given it
    /// (`https://api.example/mcp`): a token bound to another resource is refused with `401
    /// invalid_token` (reason [`InvalidReason::Audience`](crate::InvalidReason::Audience)).
    /// Tokens bound to no resource — minted by the CLI or the REST API — and sessions pass,
    /// unless [`require_audience`](Self::require_audience).
    pub fn resource(self, resource: &str) -> Self {
        self.edit(|s| s.resource = Some(resource.into()))
    }

    /// Refuses principals bound to no resource as well (with [`resource`](Self::resource)):
    /// only tokens issued for this resource pass.
    pub fn require_audience(self) -> Self {
        self.edit(|s| s.require_audience = true)
    }

    /// Adds `scope="…"` to the 401 challenges: the scope a client without a token should ask
    /// the authorization server for (MCP clients ask for exactly this; list only the baseline).
    /// RFC 6749 scope tokens separated by single spaces. A `403 insufficient_scope` names the
    /// scope that is missing instead.
    pub fn scope(self, scope: &str) -> Result<Self, ChallengeError> {
        let challenge = Challenge::new(
            &self.shared.realm,
            self.shared.resource_metadata.as_deref(),
            Some(scope),
        )?;
        Ok(self.edit(|s| {
            s.default_challenge = false;
            s.scope = Some(scope.into());
            s.challenge = Arc::new(challenge);
        }))
    }

    /// Records every agent-authenticated request (identity, credential, acting user, method,
    /// path, status) and every refused token whose credential is known (with
    /// the reason) through `recorder`, typically an `AuditWriter` (feature `audit`). The path
    /// is recorded without its query string, which may carry secrets. Session requests and
    /// unknown tokens are not recorded: they name no identity. A request a
    /// [`RateLimitLayer`](crate::limit::RateLimitLayer) inside refused (its answer carries
    /// [`RateLimited`](crate::limit::RateLimited)) is recorded as
    /// [`AuditAction::RateLimited`](crate::audit::AuditAction::RateLimited), naming the limit.
    ///
    /// Recording is a queue push after the inner service answered; only a recorder that asks
    /// for backpressure (a full queue) makes the response wait.
    pub fn audit(self, recorder: impl AuditRecorder) -> Self {
        let recorder: Arc<dyn AuditRecorder> = Arc::new(recorder);
        self.edit(|s| s.audit = Some(recorder))
    }

    /// Reads the time of audit events from `clock` (default: the system clock); give it the
    /// store's clock so that events and expiry agree.
    pub fn clock(self, clock: impl Clock) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        self.edit(|s| s.clock = clock)
    }
}

impl<S> Layer<S> for AgentAuthLayer {
    type Service = AgentAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AgentAuth::new(inner, self.shared.clone())
    }
}
