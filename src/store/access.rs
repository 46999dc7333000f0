//! Who may manage an agent's credentials: access grants and the rule that checks them.
//!
//! The owner of an agent may do everything. Other users need a grant on the agent:
//!
//! | operation | needs |
//! |---|---|
//! | see the identity and its approvals | viewer (or above) |
//! | list credentials and grants; read the audit trail | operator (or admin) |
//! | issue, rotate, revoke credentials; manage grants; disable, enable, delete the identity; create its thread-scoped children; approve or deny its approvals | admin |
//!
//! Creating a top-level agent is for its owner only. A thread-scoped child shares its parent's
//! owner, and grants on the parent apply to it.
//!
//! The rule lives here, in the library, and [`Managed`](super::Managed) applies it to every
//! management call, so the HTTP API, the CLI and any other surface enforce the same thing.
//!
//! ```
//! use tower_agent_auth::store::{AccessRole, AgentStore, GrantStore, Managed, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, StoreError, UserRecord};
//! use tower_agent_auth::token::TokenFormat;
//! use tower_agent_auth::ceiling::Policy;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = MemoryUserDirectory::new();
//! for user in ["alice", "olga"] {
//!     users.insert(UserRecord::new(user, Policy::unrestricted()));
//! }
//! let store = MemoryStore::new(TokenFormat::new("acme")?, users);
//! let agent = store.create_agent(NewAgent::new("writer", "alice")).await?;
//! store.grant(&agent.id, &"olga".into(), AccessRole::Operator).await?;
//!
//! let as_olga = Managed::new(&store, "olga");
//! assert!(as_olga.list_tokens(&agent.id).await.is_ok());          // operators may list
//! let issue = as_olga.create_token(&agent.id, NewToken::new("x")).await;
//! assert!(matches!(issue, Err(StoreError::Forbidden { .. })));      // but not issue
//! # Ok(()) }
//! ```

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
