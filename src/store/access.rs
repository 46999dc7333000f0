#![doc = include_str!("../../docs/grants.md")]

use time::OffsetDateTime;

use super::model::Agent;
use crate::error::StoreError;
use crate::principal::{AgentId, UserId};

/// A user's standing on an agent; `Admin > Operator > Viewer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessRole {
    /// May see the agent.
    Viewer,
    /// May also list its credentials.
    Operator,
    /// May also issue, rotate and revoke its credentials and manage its grants.
    Admin,
}

impl AccessRole {
    /// `viewer`, `operator` or `admin`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Parses [`AccessRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A grant of `role` on an agent to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessGrant {
    /// The agent.
    pub agent_id: AgentId,
    /// The user.
    pub user_id: UserId,
    /// What the user may do.
    pub role: AccessRole,
    /// When it was granted (or last changed).
    pub granted_at: OffsetDateTime,
}

/// A management operation on an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// See the agent's record.
    ViewAgent,
    /// List its tokens (metadata only).
    ListTokens,
    /// Read the agent's audit trail.
    ReadAudit,
    /// List who else has a role on the agent.
    ListGrants,
    /// Disable, enable or delete the agent, change its policy, or create a thread-scoped child
    /// under it.
    ManageAgent,
    /// Issue a token.
    IssueToken,
    /// Rotate a token.
    RotateToken,
    /// Revoke a token.
    RevokeToken,
    /// Grant or withdraw access to other users.
    ManageGrants,
    /// Approve or deny what the agent asked a person's approval for (seeing its approvals
    /// needs only [`Operation::ViewAgent`]).
    DecideApproval,
}

impl Operation {
    /// The least role that allows it (the owner may always).
    pub fn required_role(&self) -> AccessRole {
        match self {
            Self::ViewAgent => AccessRole::Viewer,
            Self::ListTokens | Self::ReadAudit | Self::ListGrants => AccessRole::Operator,
            Self::ManageAgent
            | Self::IssueToken
            | Self::RotateToken
            | Self::RevokeToken
            | Self::ManageGrants
            | Self::DecideApproval => AccessRole::Admin,
        }
    }

    /// What it is, in words: `"issue tokens"`, as in `user "x" may not issue tokens (agent "y")`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ViewAgent => "see the agent",
            Self::ListTokens => "list tokens",
            Self::ReadAudit => "read the audit trail",
            Self::ListGrants => "list grants",
            Self::ManageAgent => "manage the agent",
            Self::IssueToken => "issue tokens",
            Self::RotateToken => "rotate tokens",
            Self::RevokeToken => "revoke tokens",
            Self::ManageGrants => "manage grants",
            Self::DecideApproval => "decide approvals",
        }
    }
}

/// The rule: the owner may do anything; anyone else needs a grant of at least the operation's
/// role.
pub fn authorize(
    actor: &UserId,
    agent: &Agent,
    grant: Option<AccessRole>,
    operation: Operation,
) -> Result<(), StoreError> {
    if agent.owner == *actor || grant.is_some_and(|role| role >= operation.required_role()) {
        Ok(())
    } else {
        Err(StoreError::Forbidden {
            user: actor.to_string(),
            operation: operation.as_str(),
            agent: agent.slug.to_string(),
        })
    }
}
