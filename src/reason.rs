//! Why not: the reasons a credential is refused and the errors of a resolution.
//!
//! A leaf module: it names reasons and imports nothing of the crate but ids. Each reason has one
//! meaning everywhere — the layer's answer, the audit trail, the CLI's output:
//!
//! - [`InvalidReason`]: why a token is not valid (answered `401 invalid_token`, one body for all);
//! - [`RefusedCredential`]: a stored credential that was refused, with whose it is, for the audit;
//! - [`ResolveError`]: why a resolution produced no principal — a refusal (401), an outage (503)
//!   or the resolver's own bad data (500). A refusal is never reported as an outage, nor an
//!   outage as a refusal;
//! - [`DelegationError`]: why a delegated or task token was not issued (it lives here, beside
//!   the other refusals, so that the store's errors can carry it without the store depending on
//!   [`delegation`](crate::delegation)).

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
}

impl InvalidReason {
    const ALL: [Self; 13] = [
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_name() {
        for reason in InvalidReason::ALL {
            assert_eq!(InvalidReason::parse(reason.as_str()), Some(reason));
            assert_eq!(reason.to_string(), reason.as_str());
        }
        assert_eq!(InvalidReason::parse("nope"), None);
    }

    #[test]
    fn refusals_answer_401_outages_503_bad_data_500() {
        let refused = RefusedCredential::new(
            InvalidReason::Revoked,
            UserId::from("alice"),
            AgentId::from("agt_1"),
            TokenId::from("tok_1"),
        );
        let refused = ResolveError::from(refused);
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refused.reason(), Some(InvalidReason::Revoked));
        let invalid = ResolveError::from(InvalidReason::Checksum);
        assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(invalid.reason(), Some(InvalidReason::Checksum));
        let down = ResolveError::unavailable("timeout");
        assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(down.reason(), None);
        let corrupt = ResolveError::corrupt("bad policy");
        assert_eq!(corrupt.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(corrupt.reason(), None);
    }
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
}
