//! Where agents and tokens live: the store traits and the in-memory store.
//!
//! A store keeps agents and token metadata, mints tokens (returning the raw secret once and
//! keeping only its SHA-256) and implements [`TokenResolver`](crate::TokenResolver), so it can be
//! handed straight to [`AgentAuthLayer`](crate::AgentAuthLayer). Users belong to the host
//! application and are reached through a [`UserDirectory`].
//!
//! Every store resolves through one pipeline, [`resolve`]: the same checks in the same order
//! (written down there), the same refusal reasons, the same ceiling — owner role ∩ parent policy
//! (for a thread-scoped child) ∩ agent policy ∩ token capabilities, and for a delegated token
//! every link up its chain (see [`crate::delegation`]).

mod config;
mod directory;
mod managed;
mod memory;
mod model;
pub(crate) mod prepare;
pub use prepare::{MAX_CAPABILITIES, MAX_NAMES};
pub mod resolve;
#[cfg(feature = "sql")]
pub(crate) mod sql;

pub use config::{
    DEFAULT_MAX_DELEGATION_DEPTH, Lifetime, LifetimePolicy, MAX_DELEGATION_DEPTH_LIMIT, StoreConfig,
};
pub use directory::{MemoryUserDirectory, UserDirectory, UserRecord};
#[cfg(feature = "testing")]
pub(crate) use managed::AGENTS_PER_APPROVAL_QUERY;
pub use managed::{AccessGrant, AccessRole, GrantStore, Managed, Operation, authorize};
pub use memory::MemoryStore;
pub use model::{
    Agent, AgentStatus, AgentType, ImportedToken, IssuedToken, NewAgent, NewToken, TokenInfo,
    TokenStatus,
};
#[cfg(feature = "sql")]
pub use sql::ChangeFeedError;
#[cfg(feature = "postgres")]
pub use sql::PgStore;
#[cfg(feature = "sql")]
pub use sql::PoolSettings;
#[cfg(feature = "sqlite")]
pub use sql::SqliteStore;

use crate::ceiling::Policy;
use crate::principal::{AgentId, TokenId};
use crate::reason::BoxError;
use crate::token::TokenError;

/// Why a management operation was refused. Nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another agent already has this slug.
    #[error("an agent with slug {0:?} already exists")]
    DuplicateSlug(String),
    /// The slug is not 1–64 of `[a-z0-9-]`.
    #[error("invalid agent slug {0:?}: expected 1-64 of [a-z0-9-]")]
    InvalidSlug(String),
    /// No agent with this id or slug.
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    /// The owner does not exist in the user directory.
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    /// No token with this id belongs to this agent.
    #[error("agent {agent:?} has no token {token:?}")]
    UnknownToken {
        /// The agent named in the request.
        agent: String,
        /// The token named in the request.
        token: String,
    },
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
    /// The requested lifetime is not allowed.
    #[error("invalid lifetime: {0}")]
    InvalidLifetime(String),
    /// A label longer than 200 bytes or containing control, invisible or
    /// bidirectional-override characters.
    #[error(
        "invalid label: at most 200 bytes, no control, invisible or bidirectional-override characters"
    )]
    InvalidLabel,
    /// Another field of the request is not acceptable; the message says which and why.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An imported token's hash is already stored.
    #[error("a token with this hash is already stored")]
    DuplicateToken,
    /// The user has no grant on the agent.
    #[error("user {user:?} has no grant on agent {agent:?}")]
    UnknownGrant {
        /// The agent named in the request.
        agent: String,
        /// The user named in the request.
        user: String,
    },
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
    /// No approval with this id.
    #[error("unknown approval {0:?}")]
    UnknownApproval(String),
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
    /// Minting failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A delegated or task token asks for more than its parent (or orchestrator) holds.
    #[error("delegation refused: {0}")]
    Delegation(#[from] crate::reason::DelegationError),
    /// The backend could not be reached or failed.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }
}

/// Agents: create, look up, list, enable/disable, delete.
#[async_trait::async_trait]
pub trait AgentStore: Send + Sync {
    /// Creates an agent. Refuses an invalid or duplicate slug and an unknown owner.
    async fn create_agent(&self, agent: NewAgent) -> Result<Agent, StoreError>;
    /// The agent with this id.
    async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError>;
    /// The agent with this slug.
    async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError>;
    /// Every agent, by slug.
    async fn list_agents(&self) -> Result<Vec<Agent>, StoreError>;
    /// The thread-scoped children of `parent`, by slug. The default filters
    /// [`AgentStore::list_agents`]; stores with an index on the parent override it.
    async fn children(&self, parent: &AgentId) -> Result<Vec<Agent>, StoreError> {
        let mut agents = self.list_agents().await?;
        agents.retain(|agent| agent.parent.as_ref() == Some(parent));
        Ok(agents)
    }
    /// The agents `owner` owns, by slug. The default filters [`AgentStore::list_agents`]; the
    /// stores of this crate ask for them alone.
    async fn agents_owned_by(
        &self,
        owner: &crate::principal::UserId,
    ) -> Result<Vec<Agent>, StoreError> {
        let mut agents = self.list_agents().await?;
        agents.retain(|agent| agent.owner == *owner);
        Ok(agents)
    }
    /// Enables or disables an agent; a disabled agent's tokens are refused at once.
    async fn set_agent_status(
        &self,
        id: &AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError>;
    /// Replaces an agent's policy. It applies to the agent's next request (and its children's:
    /// the parent's policy is a layer of theirs); a child's must lie within its parent's, and
    /// the lists are bounded as at creation.
    async fn set_agent_policy(&self, id: &AgentId, policy: Policy) -> Result<Agent, StoreError>;
    /// Deletes an agent and every token of it: a token never outlives its agent.
    async fn delete_agent(&self, id: &AgentId) -> Result<(), StoreError>;

    /// The clock the store reads (its [`StoreConfig`]'s), so that what is built around it —
    /// the times of [`Managed`]'s audit events — agrees with its records. The default is the
    /// system clock.
    fn clock(&self) -> &dyn crate::clock::Clock {
        &crate::clock::SystemClock
    }
}

/// Tokens: mint, list (metadata only), revoke.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    /// Mints a token for `agent`; the raw token is in the result and nowhere else.
    async fn create_token(
        &self,
        agent: &AgentId,
        token: NewToken,
    ) -> Result<IssuedToken, StoreError>;
    /// Metadata of the agent's tokens, oldest first; never a hash or a secret.
    async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes one token of `agent`. A token of another agent is [`StoreError::UnknownToken`]:
    /// no token can be revoked through the wrong agent. Revoking twice keeps the first time.
    async fn revoke_token(&self, agent: &AgentId, token: &TokenId)
    -> Result<TokenInfo, StoreError>;
    /// Revokes every live token of `agent`; returns how many.
    async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize, StoreError>;
    /// One token of `agent`, metadata only.
    async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError>;
    /// Stores a token known only by its hash (imported from another system).
    async fn import_token(
        &self,
        agent: &AgentId,
        token: ImportedToken,
    ) -> Result<TokenInfo, StoreError>;
    /// Deletes tokens revoked, expired or completed more than `older_than` ago (and the tokens
    /// delegated from them); returns how many tokens were deleted, the delegated ones included
    /// (every store counts the whole tree, whether it deletes the descendants itself or a
    /// foreign key's cascade does).
    async fn purge(&self, older_than: std::time::Duration) -> Result<usize, StoreError>;
    /// Replaces a live token with a new one that keeps its label, capabilities, expiry and task.
    /// The old token keeps working for `grace` (never past its own expiry); a zero grace revokes
    /// it at once. A use-limited token's uses left move to the new one: from then on the old
    /// token is refused as exhausted (a use it has in flight still settles), so rotating never
    /// adds uses. Tokens delegated from the old token stay its children: they end with its
    /// grace, or at once for a use-limited token (see [`crate::delegation`]). Returns the new
    /// token, shown once.
    async fn rotate_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        grace: std::time::Duration,
    ) -> Result<IssuedToken, StoreError>;
}

/// A fresh random id such as `tok_3f9a…` (64 bits of CSPRNG output).
pub(crate) fn random_id(kind: &str) -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| StoreError::Token(TokenError::Entropy))?;
    Ok(format!("{kind}_{}", hex::encode(bytes)))
}

/// What lists show of a token: `{prefix}_{slug}_` and the first 8 hex digits.
pub(crate) fn display_prefix(token: &str, prefix_len: usize, slug_len: usize) -> String {
    let shown = (prefix_len + slug_len + 2 + 8).min(token.len());
    format!("{}…", &token[..shown])
}

/// Characters a person reading a label, a scope or an intent cannot see for what they are:
/// controls, bidirectional overrides and isolates (which reorder what is shown), and the
/// zero-width and other invisible format characters (which hide a difference).
pub(crate) fn is_hidden_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

pub(crate) use crate::text::shortened;

pub(crate) fn validate_label(label: &str) -> Result<(), StoreError> {
    // A blank label says nothing in a list of tokens.
    if label.trim().is_empty() || label.len() > 200 || label.chars().any(is_hidden_char) {
        return Err(StoreError::InvalidLabel);
    }
    Ok(())
}
