//! The agent a principal acts as, the agents it acts under, and the task it serves.

use std::sync::Arc;

use super::{AgentId, TokenId, UserId};

/// How an agent runs, which sets the default and maximum lifetime of its tokens
/// (see [`LifetimePolicy`](crate::store::LifetimePolicy)), and whether its
/// critical actions wait for a person's approval (`Supervised`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AgentType {
    /// Acts on its own for long periods.
    #[default]
    Autonomous,
    /// Acts while a person watches.
    Supervised,
    /// Lives for one task.
    Ephemeral,
}

impl AgentType {
    /// `autonomous`, `supervised` or `ephemeral`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Autonomous => "autonomous",
            Self::Supervised => "supervised",
            Self::Ephemeral => "ephemeral",
        }
    }

    /// Parses [`AgentType::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "autonomous" => Some(Self::Autonomous),
            "supervised" => Some(Self::Supervised),
            "ephemeral" => Some(Self::Ephemeral),
            _ => None,
        }
    }
}

/// Names the host application gives resources or modes (see [`AgentRef::allows_scope`]).
pub type NameSet = Arc<std::collections::BTreeSet<String>>;

/// The agent a principal acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRef {
    pub(super) id: AgentId,
    pub(super) slug: Arc<str>,
    pub(super) agent_type: AgentType,
    pub(super) parent: Option<AgentId>,
    pub(super) scopes: Option<NameSet>,
    pub(super) modes: Option<NameSet>,
}

impl AgentRef {
    /// An agent reference, with no parent and no scope or mode restriction.
    pub fn new(id: impl Into<AgentId>, slug: impl Into<Arc<str>>) -> Self {
        Self {
            id: id.into(),
            slug: slug.into(),
            agent_type: AgentType::Autonomous,
            parent: None,
            scopes: None,
            modes: None,
        }
    }

    /// How the agent runs (default [`AgentType::Autonomous`]).
    pub fn with_type(mut self, agent_type: AgentType) -> Self {
        self.agent_type = agent_type;
        self
    }

    /// How the agent runs.
    pub fn agent_type(&self) -> AgentType {
        self.agent_type
    }

    /// The agent this one is a thread-scoped child of.
    pub fn with_parent(mut self, parent: Option<AgentId>) -> Self {
        self.parent = parent;
        self
    }

    /// The resources the agent may act on (`None`: no restriction).
    pub fn with_scopes(mut self, scopes: Option<NameSet>) -> Self {
        self.scopes = scopes;
        self
    }

    /// The modes the agent may run in (`None`: any).
    pub fn with_modes(mut self, modes: Option<NameSet>) -> Self {
        self.modes = modes;
        self
    }

    /// The parent identity, for a thread-scoped child.
    pub fn parent(&self) -> Option<&AgentId> {
        self.parent.as_ref()
    }

    /// The resources the agent may act on; `None` for no restriction.
    pub fn scopes(&self) -> Option<&NameSet> {
        self.scopes.as_ref()
    }

    /// The modes the agent may run in; `None` for any.
    pub fn modes(&self) -> Option<&NameSet> {
        self.modes.as_ref()
    }

    /// Whether the agent may act on the resource `scope` (e.g. `workspace:42`).
    pub fn allows_scope(&self, scope: &str) -> bool {
        self.scopes.as_ref().is_none_or(|s| s.contains(scope))
    }

    /// Whether the agent may run in `mode`.
    pub fn allows_mode(&self, mode: &str) -> bool {
        self.modes.as_ref().is_none_or(|m| m.contains(mode))
    }

    /// The agent id.
    pub fn id(&self) -> &AgentId {
        &self.id
    }

    /// The agent slug.
    pub fn slug(&self) -> &str {
        &self.slug
    }
}

/// One delegating link of a principal's chain: an agent that handed its authority down, and the
/// token it handed it down with. Every link is a layer of the principal's ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationLink {
    pub(super) agent: AgentRef,
    pub(super) token: TokenId,
}

impl DelegationLink {
    /// A link: `agent` delegated with its token `token`.
    pub fn new(agent: AgentRef, token: impl Into<TokenId>) -> Self {
        Self {
            agent,
            token: token.into(),
        }
    }

    /// The delegating agent.
    pub fn agent(&self) -> &AgentRef {
        &self.agent
    }

    /// The token it delegated with.
    pub fn token_id(&self) -> &TokenId {
        &self.token
    }
}

/// What a token was minted for: its task and the people and agents that set it up. Read it
/// with [`ExecutionPrincipal::task`](crate::ExecutionPrincipal::task); a delegated token inherits its delegator's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskScope {
    /// The task id.
    pub task_id: Option<Arc<str>>,
    /// What the token is meant to do, in the words of whoever minted it.
    pub intent: Option<Arc<str>>,
    /// The orchestrator agent that minted the token for the task.
    pub orchestrator: Option<AgentId>,
    /// Where the task runs (e.g. `staging`).
    pub environment: Option<Arc<str>>,
    /// Whether using the token's last operation ends it.
    pub expires_on_completion: bool,
    /// The use limit this token was minted with: its own only, `None` for a token without one
    /// even when a token up its chain is limited. What bounds the token's requests is
    /// [`ExecutionPrincipal::max_operations`](crate::ExecutionPrincipal::max_operations), the least limit up the chain.
    pub max_operations: Option<u64>,
    /// The person on whose behalf an orchestrator minted the token.
    pub delegated_by: Option<UserId>,
}

impl TaskScope {
    /// Whether the scope says anything at all (a token minted with none of its fields has
    /// none).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
