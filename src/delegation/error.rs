//! Why a delegation (or an orchestrator's task token) was refused.

use crate::reason::InvalidReason;

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
