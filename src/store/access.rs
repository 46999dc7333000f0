//! Who may manage an agent's credentials: access grants and the rule that checks them.
//!
//! The owner of an agent may do everything. Other users need a grant on the agent:
//!
//! | operation | needs |
//! |---|---|
//! | list credentials | operator (or admin) |
//! | issue, rotate, revoke credentials; manage grants | admin |
//!
//! The rule lives here, in the library, and [`Managed`] applies it to every management call, so
//! the HTTP API, the CLI and any other surface enforce the same thing.
//!
//! ```
//! use tower_agent_auth::store::{AccessRole, AgentStore, GrantStore, Managed, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, StoreError, UserRecord};
//! use tower_agent_auth::{Policy, token::TokenFormat};
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

use super::model::{Agent, IssuedToken, NewToken, TokenInfo};
use super::{AgentStore, StoreError, TokenStore};
use crate::principal::{AgentId, TokenId, UserId};

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
    /// List credentials (metadata only).
    ListCredentials,
    /// Issue a credential.
    IssueCredential,
    /// Rotate a credential.
    RotateCredential,
    /// Revoke a credential.
    RevokeCredential,
    /// Grant or withdraw access to other users.
    ManageGrants,
}

impl Operation {
    /// The least role that allows it (the owner may always).
    pub fn required_role(&self) -> AccessRole {
        match self {
            Self::ListCredentials => AccessRole::Operator,
            Self::IssueCredential
            | Self::RotateCredential
            | Self::RevokeCredential
            | Self::ManageGrants => AccessRole::Admin,
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Self::ListCredentials => "list credentials",
            Self::IssueCredential => "issue credentials",
            Self::RotateCredential => "rotate credentials",
            Self::RevokeCredential => "revoke credentials",
            Self::ManageGrants => "manage grants",
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

/// Access grants: (agent, user, role).
#[async_trait::async_trait]
pub trait GrantStore: Send + Sync {
    /// Grants `role` on `agent` to `user`, replacing any earlier grant of theirs.
    async fn grant(
        &self,
        agent: &AgentId,
        user: &UserId,
        role: AccessRole,
    ) -> Result<AccessGrant, StoreError>;
    /// Withdraws the user's grant; [`StoreError::UnknownGrant`] if there is none.
    async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<(), StoreError>;
    /// The agent's grants, by user.
    async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>, StoreError>;
    /// The user's role on the agent, if any.
    async fn role_of(
        &self,
        agent: &AgentId,
        user: &UserId,
    ) -> Result<Option<AccessRole>, StoreError>;
}

/// A store seen by one user: every management call is authorized first.
#[derive(Debug)]
pub struct Managed<'a, S> {
    store: &'a S,
    actor: UserId,
}

impl<'a, S> Managed<'a, S>
where
    S: AgentStore + TokenStore + GrantStore,
{
    /// `store` as `actor` sees it.
    pub fn new(store: &'a S, actor: impl Into<UserId>) -> Self {
        Self {
            store,
            actor: actor.into(),
        }
    }

    async fn check(&self, agent: &AgentId, operation: Operation) -> Result<(), StoreError> {
        let record = self
            .store
            .agent(agent)
            .await?
            .ok_or_else(|| StoreError::UnknownAgent(agent.to_string()))?;
        let role = self.store.role_of(agent, &self.actor).await?;
        authorize(&self.actor, &record, role, operation)
    }

    /// Lists credentials: owner, operator or admin.
    pub async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        self.check(agent, Operation::ListCredentials).await?;
        self.store.list_tokens(agent).await
    }

    /// Issues a credential: owner or admin. Records the actor as its creator.
    pub async fn create_token(
        &self,
        agent: &AgentId,
        new: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        self.check(agent, Operation::IssueCredential).await?;
        self.store
            .create_token(agent, new.created_by(self.actor.clone()))
            .await
    }

    /// Rotates a credential: owner or admin.
    pub async fn rotate_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        grace: time::Duration,
    ) -> Result<IssuedToken, StoreError> {
        self.check(agent, Operation::RotateCredential).await?;
        self.store.rotate_token(agent, token, grace).await
    }

    /// Revokes a credential: owner or admin.
    pub async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<TokenInfo, StoreError> {
        self.check(agent, Operation::RevokeCredential).await?;
        self.store.revoke_token(agent, token).await
    }

    /// Grants access to another user: owner or admin.
    pub async fn grant(
        &self,
        agent: &AgentId,
        user: &UserId,
        role: AccessRole,
    ) -> Result<AccessGrant, StoreError> {
        self.check(agent, Operation::ManageGrants).await?;
        self.store.grant(agent, user, role).await
    }

    /// Withdraws another user's access: owner or admin.
    pub async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<(), StoreError> {
        self.check(agent, Operation::ManageGrants).await?;
        self.store.revoke_grant(agent, user).await
    }
}
