//! Every error of the crate, one module, by area.
//!
//! Each area has its own enum; the wider enums wrap the narrower ones with `From`, so `?` moves
//! an error outwards without a `map_err`:
//!
//! | area | type | answered by the HTTP surfaces with |
//! |---|---|---|
//! | a request's credential | [`InvalidReason`], [`RefusedCredential`], [`ResolveError`] | `401` (one body for every reason), `503`, `500` |
//! | a token's text | [`TokenError`] | `401` on a request; a [`StoreError::Token`] when minting |
//! | managing agents, tokens, grants, approvals | [`StoreError`]: [`InputError`], [`NotFound`], [`Conflict`], [`DelegationError`], `Forbidden`, `Unavailable` | `422`, `404`, `409`, `422`, `403`, `503` |
//! | the audit trail | [`AuditError`] | — (the writer retries) |
//! | a SQL store's change feed | `ChangeFeedError` (features `sqlite`, `postgres`) | — (the cache drops its verdicts) |
//!
//! Each [`InvalidReason`] has one meaning everywhere: the layer's answer, the audit trail and
//! the CLI's output. A refusal is never reported as an outage, nor an outage as a refusal. No
//! error carries a secret: a token's text, hash or a password never appear in a message.
//!
//! ```
//! use tower_agent_auth::error::{NotFound, StoreError};
//!
//! let error = StoreError::from(NotFound::Agent("writer".into()));
//! assert_eq!(error.to_string(), "unknown agent \"writer\"");
//! assert!(matches!(error, StoreError::NotFound(NotFound::Agent(_))));
//! ```

use http::StatusCode;

use crate::principal::{AgentId, TokenId, UserId};

/// A boxed error from a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a token was refused. Recorded for operators (audit, metrics), never told to the client:
/// every reason answers the same `401 invalid_token`, so an attacker learns nothing.
///
/// A stored token failing several checks at once is refused for the first in this order
/// (the resolution pipeline's, [`crate::store::resolve`]): revoked, expired, exhausted, a token
/// up a delegation chain, agent mismatch, agent disabled, agent expired, the parent's
/// (disabled, expired), an agent up the chain or the orchestrator, owner missing, owner
/// inactive, the person a task token was minted for.
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
    /// The token's expiry has passed (or its task completed with its last use).
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
    /// A bearer token of another application (not this layer's prefix) on a route that
    /// requires a principal.
    ForeignPrefix,
    /// A delegated token whose authority up the chain no longer holds: a token it was
    /// delegated from is revoked, expired, spent or gone, or that token's agent (or the
    /// orchestrator, or the person a task token was minted for) is disabled, expired or gone.
    DelegatorRefused,
    /// A token bound to another resource (RFC 8707 audience) than the layer's, or, where the
    /// layer requires one, bound to none.
    Audience,
}

impl InvalidReason {
    const ALL: [Self; 14] = [
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
        Self::ForeignPrefix,
        Self::DelegatorRefused,
        Self::Audience,
    ];

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
            Self::ForeignPrefix => "foreign_prefix",
            Self::DelegatorRefused => "delegator_refused",
            Self::Audience => "audience",
        }
    }

    /// Parses [`InvalidReason::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.as_str() == s)
    }
}

impl std::fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored credential that was refused: the reason, and whose credential it is (ids only), so
/// that the refusal can be audited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusedCredential {
    /// Why it was refused.
    pub reason: InvalidReason,
    /// The user the agent acts for.
    pub user_id: UserId,
    /// The agent the token belongs to.
    pub agent_id: AgentId,
    /// That agent's parent, for a thread-scoped child.
    pub parent: Option<AgentId>,
    /// The token.
    pub token_id: TokenId,
    /// The task the token was minted for.
    pub task_id: Option<String>,
    /// The agents the token was delegated through, the first (nearest the human) first; empty
    /// for a token minted directly.
    pub delegation_chain: Vec<AgentId>,
    /// For [`InvalidReason::DelegatorRefused`]: the token up the chain that failed, when one
    /// did (not the orchestrator or the delegating person).
    pub delegator: Option<TokenId>,
}

impl RefusedCredential {
    /// A refusal of `token_id`, a token of `agent_id` acting for `user_id` (the order of
    /// [`ExecutionPrincipal::agent`](crate::principal::ExecutionPrincipal::agent)), for a custom
    /// [`TokenResolver`](crate::TokenResolver) to return as [`ResolveError::Refused`].
    pub fn new(
        reason: InvalidReason,
        user_id: UserId,
        agent_id: AgentId,
        token_id: TokenId,
    ) -> Self {
        Self {
            reason,
            user_id,
            agent_id,
            parent: None,
            token_id,
            task_id: None,
            delegation_chain: Vec::new(),
            delegator: None,
        }
    }

    /// The agents the token was delegated through, root first.
    pub fn with_delegation_chain(mut self, chain: Vec<AgentId>) -> Self {
        self.delegation_chain = chain;
        self
    }

    /// The token up the chain that failed.
    pub fn with_delegator(mut self, token: Option<TokenId>) -> Self {
        self.delegator = token;
        self
    }

    /// The agent's parent, for a thread-scoped child.
    pub fn with_parent(mut self, parent: Option<AgentId>) -> Self {
        self.parent = parent;
        self
    }

    /// The task the token was minted for.
    pub fn with_task_id(mut self, task_id: Option<String>) -> Self {
        self.task_id = task_id;
        self
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
    /// The resolver's own stored data is bad (a row that does not parse, a policy that is not
    /// valid JSON): answered with `500`. Never treated as admission, and not an outage: retrying
    /// will not help until the data is repaired.
    #[error("stored credential data is corrupt")]
    Corrupt(#[source] BoxError),
}

impl ResolveError {
    /// Wraps a backend error as [`ResolveError::Unavailable`].
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }

    /// Wraps a description of bad stored data as [`ResolveError::Corrupt`].
    pub fn corrupt(error: impl Into<BoxError>) -> Self {
        Self::Corrupt(error.into())
    }

    /// The HTTP status this error answers with: 401, 503 or 500.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::Refused(_) => StatusCode::UNAUTHORIZED,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Why the credential is not valid; `None` when the resolver could not decide.
    pub fn reason(&self) -> Option<InvalidReason> {
        match self {
            Self::Invalid(reason) => Some(*reason),
            Self::Refused(refused) => Some(refused.reason),
            Self::Unavailable(_) | Self::Corrupt(_) => None,
        }
    }
}

impl From<InvalidReason> for ResolveError {
    fn from(reason: InvalidReason) -> Self {
        Self::Invalid(reason)
    }
}

impl From<RefusedCredential> for ResolveError {
    fn from(refused: RefusedCredential) -> Self {
        Self::Refused(Box::new(refused))
    }
}

/// Why a string is not a valid token of a [`TokenFormat`](crate::token::TokenFormat), or a
/// token could not be minted.
///
/// None of the variants carries any part of the token, so an error can be logged safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The string does not start with this format's `{prefix}_`: another layer may own it.
    #[error("token does not carry this application's prefix")]
    NotOwned,
    /// The prefix is ours but the rest is not `{slug}_{64 lowercase hex}`.
    #[error("token is malformed")]
    Malformed,
    /// The CRC32 does not match: a typo or a forgery, rejected without a lookup.
    #[error("token checksum does not match")]
    Checksum,
    /// An application prefix must be 1–32 of `[a-z0-9_]`, start with a letter and not end with `_`.
    #[error(
        "invalid token prefix (1-32 of [a-z0-9_], starting with a letter, not ending with '_')"
    )]
    InvalidPrefix,
    /// An agent slug must be 1–64 of `[a-z0-9-]`.
    #[error("invalid agent slug (1-64 of [a-z0-9-])")]
    InvalidSlug,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Entropy,
}

/// Why a management operation was refused. Nothing was changed when one is returned.
///
/// Match on the area first, then on its reason:
///
/// ```
/// use tower_agent_auth::error::{InputError, StoreError};
///
/// fn status(error: &StoreError) -> u16 {
///     match error {
///         StoreError::Input(_) | StoreError::Delegation(_) | StoreError::Token(_) => 422,
///         StoreError::NotFound(_) => 404,
///         StoreError::Conflict(_) => 409,
///         StoreError::Forbidden { .. } => 403,
///         _ => 503,
///     }
/// }
/// assert_eq!(status(&InputError::InvalidLabel.into()), 422);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The request is not acceptable as it stands.
    #[error(transparent)]
    Input(#[from] InputError),
    /// What the request names does not exist.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// The request collides with what is stored (a slug taken, an approval decided already).
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The acting user may not do this to this agent.
    #[error("user {user:?} may not {operation} (agent {agent:?})")]
    Forbidden {
        /// Who tried.
        user: String,
        /// What they tried.
        operation: &'static str,
        /// On which agent (slug).
        agent: String,
    },
    /// A delegated or task token asks for more than its parent (or orchestrator) holds.
    #[error("delegation refused: {0}")]
    Delegation(#[from] DelegationError),
    /// Minting failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The backend could not be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The store's [`Backend`](crate::store::Backend) does not implement this operation (its
    /// provided method was not overridden): the name says which.
    #[error("this store does not support {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }

    /// [`InputError::Invalid`]: another field of the request is not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Input(InputError::Invalid(message.into()))
    }

    /// [`NotFound::Agent`].
    pub fn unknown_agent(agent: impl std::fmt::Display) -> Self {
        Self::NotFound(NotFound::Agent(agent.to_string()))
    }

    /// [`NotFound::Token`].
    pub fn unknown_token(agent: impl std::fmt::Display, token: impl std::fmt::Display) -> Self {
        Self::NotFound(NotFound::Token {
            agent: agent.to_string(),
            token: token.to_string(),
        })
    }
}

/// Why a request's input is not acceptable (answered `422`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The slug is not 1–64 of `[a-z0-9-]`.
    #[error("invalid agent slug {0:?}: expected 1-64 of [a-z0-9-]")]
    InvalidSlug(String),
    /// A label longer than 200 bytes or containing control, invisible or
    /// bidirectional-override characters.
    #[error(
        "invalid label: at most 200 bytes, no control, invisible or bidirectional-override characters"
    )]
    InvalidLabel,
    /// The requested lifetime is not allowed.
    #[error("invalid lifetime: {0}")]
    InvalidLifetime(String),
    /// The token asks for capabilities its agent's policy does not allow.
    #[error("capabilities outside the agent's policy: {0}")]
    CapabilitiesOutsidePolicy(String),
    /// The token asks for capabilities its agent's owner does not have: the ceiling would drop
    /// them at every request.
    #[error("capabilities outside the role of the owner {user:?}: {capabilities}")]
    CapabilitiesOutsideRole {
        /// The agent's owner.
        user: String,
        /// The patterns the owner's role does not cover.
        capabilities: String,
    },
    /// Another field of the request is not acceptable; the message says which and why.
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// What a request names and the store does not hold (answered `404`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotFound {
    /// No agent with this id or slug.
    #[error("unknown agent {0:?}")]
    Agent(String),
    /// The user does not exist in the user directory.
    #[error("unknown user {0:?}")]
    User(String),
    /// No token with this id belongs to this agent.
    #[error("agent {agent:?} has no token {token:?}")]
    Token {
        /// The agent named in the request.
        agent: String,
        /// The token named in the request.
        token: String,
    },
    /// The user has no grant on the agent.
    #[error("user {user:?} has no grant on agent {agent:?}")]
    Grant {
        /// The agent named in the request.
        agent: String,
        /// The user named in the request.
        user: String,
    },
    /// No approval with this id.
    #[error("unknown approval {0:?}")]
    Approval(String),
    /// No OAuth client with this id.
    #[error("unknown client {0:?}")]
    Client(String),
}

/// What a request collides with (answered `409`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Conflict {
    /// Another agent already has this slug.
    #[error("an agent with slug {0:?} already exists")]
    Slug(String),
    /// An imported token's hash is already stored.
    #[error("a token with this hash is already stored")]
    Token,
    /// Another OAuth client has this id.
    #[error("a client with id {0:?} already exists")]
    Client(String),
    /// The approval was decided already, or expired: a decision is made once, while it is
    /// pending.
    #[error("approval {id:?} is {status}, not pending")]
    ApprovalNotPending {
        /// The approval named.
        id: String,
        /// Where it stands (`approved`, `denied`, `used`, `expired`).
        status: &'static str,
    },
    /// The approval is not approved and usable (pending, denied, used or expired): only an
    /// approved one can be revoked.
    #[error("approval {id:?} is {status}, not approved")]
    ApprovalNotApproved {
        /// The approval named.
        id: String,
        /// Where it stands (`pending`, `denied`, `used`, `expired`).
        status: &'static str,
    },
}

/// Why a delegated token was not issued. Nothing was stored when one is returned; the message
/// names what exceeds the parent's authority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DelegationError {
    /// The parent token does not resolve now (revoked, expired, spent, its agent disabled, a
    /// link up its chain refused, …), or is not a token of this store's format.
    #[error("the parent token is not valid: {0}")]
    ParentRefused(InvalidReason),
    /// The child asks for capabilities the parent's effective ceiling does not wholly allow.
    #[error("capabilities outside the parent token's ceiling: {0}")]
    CapabilitiesExceedParent(String),
    /// The child would outlive the parent's effective expiry (the earliest up its chain).
    #[error("an expiry past the parent's effective expiry ({parent})")]
    ExpiryExceedsParent {
        /// The parent's effective expiry.
        parent: time::OffsetDateTime,
    },
    /// The child asks for more uses than the parent has left (the fewest up its chain).
    #[error("max_operations {requested} exceeds the {remaining} uses the parent has left")]
    UsesExceedParent {
        /// What the child asked for.
        requested: u64,
        /// The fewest uses left up the parent's chain.
        remaining: u64,
    },
    /// The chain would grow deeper than the store's maximum.
    #[error("delegation depth {depth} exceeds the maximum of {max}")]
    DepthExceeded {
        /// The child's depth.
        depth: u32,
        /// [`StoreConfig::max_delegation_depth`](crate::store::StoreConfig::max_delegation_depth).
        max: u32,
    },
    /// The target agent acts for another owner than the parent's.
    #[error("the agent {0:?} acts for another owner")]
    TargetOfAnotherOwner(String),
    /// The target agent is disabled or expired.
    #[error("the agent {0:?} is disabled or expired")]
    TargetInactive(String),
    /// The child of a task token names another task.
    #[error("a delegated token serves its parent's task {parent:?}, not {requested:?}")]
    OtherTask {
        /// The parent's task id.
        parent: String,
        /// The task the child named.
        requested: String,
    },
    /// The child names an environment other than its parent's.
    #[error("a delegated token runs in its parent's environment {0:?}")]
    OtherEnvironment(String),
    /// A task token asks for capabilities outside the orchestrator's policy or the delegating
    /// person's role.
    #[error("capabilities outside the orchestrator's policy or the delegating user's role: {0}")]
    CapabilitiesExceedOrchestrator(String),
    /// The agent asked to mint a task token is not an orchestrator (or not active).
    #[error("the agent {0:?} is not an active orchestrator")]
    NotOrchestrator(String),
    /// An orchestrator mints task tokens for other agents of its owner only, and a token of
    /// its task is never delegated back to it.
    #[error("an orchestrator's task tokens are for the other agents of its owner, not {0:?}")]
    NotAnotherAgent(String),
    /// The person a task token is minted for is neither the owner of its agent nor holds a
    /// grant (any role) on it: a token is minted on behalf of someone who answers for that
    /// agent, not of any user.
    #[error("the delegating user {user:?} is neither the owner of nor granted access to {agent:?}")]
    DelegatingUserUnrelated {
        /// The person named.
        user: String,
        /// The target agent (slug).
        agent: String,
    },
    /// A thread-scoped child may not be an orchestrator: its task tokens would not be bounded
    /// by its parent (returned when creating the agent).
    #[error("the thread-scoped child {0:?} cannot be an orchestrator")]
    OrchestratorIsChild(String),
    /// The person a task token is minted for is not (or no longer) an active user.
    #[error("the delegating user {0:?} is unknown or inactive")]
    DelegatingUserInactive(String),
    /// The child names a resource other than the one its parent is bound to (RFC 8707): a
    /// delegation never moves a token's audience.
    #[error("a delegated token is bound to its parent's resource {0:?}")]
    OtherResource(String),
    /// The child names a resource its parent is not bound to: a token bound to none works
    /// only where no audience is required, and a child bound to a resource that requires one
    /// would be admitted where its parent is refused.
    #[error("a token bound to no resource cannot delegate one bound to {0:?}")]
    ResourceWithoutAudience(String),
}

/// Why the audit trail could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The sink's backend failed.
    #[error("audit sink unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

impl From<StoreError> for AuditError {
    fn from(error: StoreError) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

/// Why a SQL store's change feed could not be read, or a subscription broke.
#[cfg(feature = "sql")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeFeedError {
    /// The database failed.
    #[error("change feed: {0}")]
    Database(#[source] sqlx::Error),
    /// The listening connection was lost: notices sent meanwhile are gone. The subscription
    /// stays broken; subscribe again and catch up with `changes_since`.
    #[error("change feed: the listening connection was lost; notices may have been missed")]
    ConnectionLost,
    /// A notice or logged change without a usable epoch (written by hand, or by another
    /// program on the channel).
    #[error("change feed: malformed change {0:?}")]
    Malformed(String),
}

#[cfg(test)]
mod tests;
