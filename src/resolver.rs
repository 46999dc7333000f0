//! The traits that turn credentials into principals: [`TokenResolver`] and [`SessionResolver`].

use std::sync::Arc;

use http::StatusCode;

use crate::principal::Principal;
use crate::token::{TokenFormat, TokenHash};

/// A boxed error from a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a token was refused. Recorded for operators (audit, metrics), never told to the client:
/// every reason answers the same `401 invalid_token`, so an attacker learns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvalidReason {
    /// The token does not have the application's shape.
    Malformed,
    /// The checksum does not match (a typo or a forgery).
    Checksum,
    /// No stored token has this hash.
    Unknown,
    /// The token was revoked.
    Revoked,
    /// The token's expiry has passed.
    Expired,
    /// The token's use limit is spent.
    Exhausted,
    /// The agent is disabled.
    AgentDisabled,
    /// The agent's own expiry has passed.
    AgentExpired,
    /// The token's embedded slug does not name the agent the token is stored for.
    AgentMismatch,
    /// The owner no longer exists.
    OwnerMissing,
    /// The owner exists but is deactivated.
    OwnerInactive,
}

impl InvalidReason {
    /// A stable snake_case name for logs and audit records.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Checksum => "checksum",
            Self::Unknown => "unknown",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Exhausted => "exhausted",
            Self::AgentDisabled => "agent_disabled",
            Self::AgentExpired => "agent_expired",
            Self::AgentMismatch => "agent_mismatch",
            Self::OwnerMissing => "owner_missing",
            Self::OwnerInactive => "owner_inactive",
        }
    }
}

impl InvalidReason {
    /// Parses [`InvalidReason::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Malformed,
            Self::Checksum,
            Self::Unknown,
            Self::Revoked,
            Self::Expired,
            Self::Exhausted,
            Self::AgentDisabled,
            Self::AgentExpired,
            Self::AgentMismatch,
            Self::OwnerMissing,
            Self::OwnerInactive,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == s)
    }
}

/// A stored credential that was refused: the reason, and whose credential it is (ids only), so
/// that the refusal can be audited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusedCredential {
    /// Why it was refused.
    pub reason: InvalidReason,
    /// The identity the credential belongs to.
    pub agent_id: crate::principal::AgentId,
    /// That identity's parent, for a thread-scoped child.
    pub parent: Option<crate::principal::AgentId>,
    /// The credential.
    pub token_id: crate::principal::TokenId,
    /// The user the identity acts for.
    pub user_id: crate::principal::UserId,
    /// The task the credential was minted for.
    pub task_id: Option<String>,
}

impl RefusedCredential {
    /// A refusal of `token_id`, a credential of `agent_id` acting for `user_id`, for a custom
    /// [`TokenResolver`] to return as [`ResolveError::Refused`].
    pub fn new(
        reason: InvalidReason,
        agent_id: crate::principal::AgentId,
        token_id: crate::principal::TokenId,
        user_id: crate::principal::UserId,
    ) -> Self {
        Self {
            reason,
            agent_id,
            parent: None,
            token_id,
            user_id,
            task_id: None,
        }
    }
}

impl From<RefusedCredential> for ResolveError {
    fn from(refused: RefusedCredential) -> Self {
        Self::Refused(Box::new(refused))
    }
}

impl std::fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why resolution did not produce a principal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The credential is not valid: answered with `401 invalid_token`.
    #[error("invalid credential: {0}")]
    Invalid(InvalidReason),
    /// A stored credential was refused (revoked, expired, its agent disabled, …): answered
    /// exactly like [`ResolveError::Invalid`], with the same body, but it says whose credential
    /// it was so the layer can audit the refusal.
    #[error("invalid credential: {}", .0.reason)]
    Refused(Box<RefusedCredential>),
    /// The backend could not decide (store or cache unreachable): answered with `503`.
    /// Never treated as admission.
    #[error("credential store unavailable")]
    Unavailable(#[source] BoxError),
}

impl ResolveError {
    /// Wraps a backend error as [`ResolveError::Unavailable`].
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::Refused(_) => StatusCode::UNAUTHORIZED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl ResolveError {
    /// Why the credential is not valid; `None` when the backend was unavailable.
    pub fn reason(&self) -> Option<InvalidReason> {
        match self {
            Self::Invalid(reason) => Some(*reason),
            Self::Refused(refused) => Some(refused.reason),
            Self::Unavailable(_) => None,
        }
    }
}

impl From<InvalidReason> for ResolveError {
    fn from(reason: InvalidReason) -> Self {
        Self::Invalid(reason)
    }
}

/// A presented token that passed the offline checks, as handed to a [`TokenResolver`].
///
/// It carries the hash, never the raw token.
#[derive(Clone, Copy)]
pub struct TokenLookup<'a> {
    hash: TokenHash,
    /// UTF-8: from a `&str`, or checked to be `[a-z0-9-]` by the token parser.
    slug: &'a [u8],
    legacy: bool,
}

impl std::fmt::Debug for TokenLookup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLookup")
            .field("hash", &self.hash)
            .field("slug", &self.slug())
            .field("legacy", &self.legacy)
            .finish()
    }
}

impl<'a> TokenLookup<'a> {
    /// A lookup for the token with this hash and embedded slug.
    pub fn new(hash: TokenHash, slug: &'a str, legacy: bool) -> Self {
        Self::from_parts(hash, slug.as_bytes(), legacy)
    }

    /// A lookup for a token that passed the format's checks.
    pub(crate) fn parsed(token: &crate::token::ParsedToken<'a>) -> Self {
        Self::from_parts(token.hash(), token.slug_bytes(), token.is_legacy())
    }

    /// `slug` must be UTF-8 (it is, when it comes from one of the above).
    pub(crate) fn from_parts(hash: TokenHash, slug: &'a [u8], legacy: bool) -> Self {
        Self { hash, slug, legacy }
    }

    /// SHA-256 of the presented token: the key to look up.
    pub fn hash(&self) -> &TokenHash {
        &self.hash
    }

    /// The agent slug embedded in the token. A resolver should refuse the token with
    /// [`InvalidReason::AgentMismatch`] when it is stored for an agent with another slug.
    pub fn slug(&self) -> &'a str {
        crate::bytes::ascii_str(self.slug)
    }

    /// The slug's bytes.
    pub(crate) fn slug_bytes(&self) -> &'a [u8] {
        self.slug
    }

    /// True for a checksum-less legacy token.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }
}

/// Turns an agent bearer token into a [`Principal`] (a shared
/// [`ExecutionPrincipal`](crate::ExecutionPrincipal)).
///
/// Implement it for your own store; the trait is object safe, so `Arc<dyn TokenResolver>` works.
/// The layer calls it only for tokens of [`TokenResolver::token_format`] that passed the offline
/// checks. An implementation validates that the token exists, is not revoked, expired or spent,
/// that its agent is active, and that the owner exists and is active; then builds the principal
/// with its ceiling. It returns [`ResolveError::Unavailable`] when it cannot decide.
///
/// The principal is returned behind an `Arc` so that a resolver may hand out one cached principal
/// per token instead of building one per request (the in-memory store does).
///
/// See `examples/custom_resolver.rs` for a complete implementation.
#[async_trait::async_trait]
pub trait TokenResolver: Send + Sync + 'static {
    /// The format of the tokens this resolver owns; others pass through the layer untouched.
    fn token_format(&self) -> &TokenFormat;

    /// Answers at once when the verdict is already at hand — an in-memory store, a warm cache —
    /// without allocating a future; `None` when it would have to wait. The layer asks this first
    /// and calls [`TokenResolver::resolve`] only on `None`. The default never answers.
    fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        let _ = token;
        None
    }

    /// Resolves a token that passed the offline checks.
    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError>;
}

#[async_trait::async_trait]
impl<T: TokenResolver + ?Sized> TokenResolver for Arc<T> {
    fn token_format(&self) -> &TokenFormat {
        (**self).token_format()
    }

    fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        (**self).resolve_now(token)
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        (**self).resolve(token).await
    }
}

/// Resolves requests signed in by an ordinary user session (a cookie, a session id) into a
/// principal with [`AuthSource::Session`](crate::AuthSource::Session) (see
/// [`UserRecord::session_principal`](crate::store::UserRecord::session_principal)).
///
/// The layer asks it only when the request carries no `Authorization` header. Return `Ok(None)`
/// when there is no valid session.
#[async_trait::async_trait]
pub trait SessionResolver: Send + Sync + 'static {
    /// Looks at the request (headers, extensions set by a session layer) for a signed-in user.
    async fn resolve_session(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Principal>, ResolveError>;
}

#[async_trait::async_trait]
impl<T: SessionResolver + ?Sized> SessionResolver for Arc<T> {
    async fn resolve_session(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Principal>, ResolveError> {
        (**self).resolve_session(request).await
    }
}
