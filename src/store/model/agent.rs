//! Agents as the store keeps them, and what to create one with.

use std::collections::BTreeSet;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::ceiling::Policy;
use crate::principal::{AgentId, AgentType, UserId};

/// Whether an agent may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentStatus {
    /// Its tokens resolve.
    Active,
    /// Every token of the agent is refused until it is enabled again.
    Disabled,
}

impl AgentStatus {
    /// `active` or `disabled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }

    /// Parses [`AgentStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// An agent: a machine identity acting for its owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Agent {
    /// Stable id.
    pub id: AgentId,
    /// Unique slug, embedded in its tokens.
    pub slug: Arc<str>,
    /// The user it acts for.
    pub owner: UserId,
    /// How it runs.
    pub agent_type: AgentType,
    /// Active or disabled.
    pub status: AgentStatus,
    /// The agent's own layer of the capability ceiling.
    pub policy: Arc<Policy>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// After this instant none of its tokens resolve.
    pub expires_at: Option<OffsetDateTime>,
    /// The agent this one is a thread-scoped child of. A child is never wider than its parent:
    /// the parent's policy is part of its ceiling, its scopes and modes lie within the parent's,
    /// and disabling, expiring or deleting the parent stops it too.
    pub parent: Option<AgentId>,
    /// The resources (workspaces, boards, … as the host application names them) the agent may
    /// act on; `None` for no restriction. Handlers check it through
    /// [`AgentRef::allows_scope`](crate::principal::AgentRef::allows_scope).
    pub scopes: Option<Arc<BTreeSet<String>>>,
    /// The modes the agent may run in (e.g. `chat`, `pipeline`); `None` for any. The actions
    /// it may take are its [`policy`](Agent::policy).
    pub modes: Option<Arc<BTreeSet<String>>>,
    /// When one of its credentials was last used (coalesced like the credentials' own).
    pub last_used_at: Option<OffsetDateTime>,
    /// When one of its credentials was last rotated.
    pub last_rotated_at: Option<OffsetDateTime>,
    /// Whether the agent may mint task tokens for the other agents of its owner (see
    /// [`Store::issue_task_token`](crate::store::Store::issue_task_token)).
    pub is_orchestrator: bool,
}

impl Agent {
    /// An active autonomous agent with no policy of its own, no parent, scopes, modes or
    /// expiry, never used nor rotated: for a backend that reads records from its own rows (set
    /// the other fields on the result; the store builds the records it hands a backend).
    pub fn new(
        id: impl Into<AgentId>,
        slug: impl Into<Arc<str>>,
        owner: impl Into<UserId>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: id.into(),
            slug: slug.into(),
            owner: owner.into(),
            agent_type: AgentType::default(),
            status: AgentStatus::Active,
            policy: Arc::new(Policy::unrestricted()),
            created_at,
            expires_at: None,
            parent: None,
            scopes: None,
            modes: None,
            last_used_at: None,
            last_rotated_at: None,
            is_orchestrator: false,
        }
    }
}

/// What to create an agent with.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub(crate) slug: String,
    pub(crate) owner: Option<UserId>,
    pub(crate) agent_type: AgentType,
    pub(crate) policy: Policy,
    pub(crate) expires_at: Option<OffsetDateTime>,
    pub(crate) expires_in: Option<std::time::Duration>,
    pub(crate) parent: Option<AgentId>,
    pub(crate) scopes: Option<BTreeSet<String>>,
    pub(crate) modes: Option<BTreeSet<String>>,
    pub(crate) orchestrator: bool,
}

impl NewAgent {
    /// An active autonomous agent with no policy of its own (bounded by its owner's role only).
    pub fn new(slug: impl Into<String>, owner: impl Into<UserId>) -> Self {
        Self {
            slug: slug.into(),
            owner: Some(owner.into()),
            agent_type: AgentType::default(),
            policy: Policy::unrestricted(),
            expires_at: None,
            expires_in: None,
            parent: None,
            scopes: None,
            modes: None,
            orchestrator: false,
        }
    }

    /// A thread-scoped child of `parent` (e.g. `codex-<thread-id>`), acting for the parent's
    /// owner. It starts with the parent's scopes and modes and no policy of its own (the
    /// parent's policy always bounds it); narrow it further with the other setters. Its expiry
    /// may not pass the parent's, and a child cannot have children of its own.
    pub fn child(slug: impl Into<String>, parent: impl Into<AgentId>) -> Self {
        Self {
            slug: slug.into(),
            owner: None,
            agent_type: AgentType::Ephemeral,
            policy: Policy::unrestricted(),
            expires_at: None,
            expires_in: None,
            parent: Some(parent.into()),
            scopes: None,
            modes: None,
            orchestrator: false,
        }
    }

    /// The resources the agent may act on (names the host application defines).
    pub fn with_scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The modes the agent may run in.
    pub fn with_modes<I, T>(mut self, modes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.modes = Some(modes.into_iter().map(Into::into).collect());
        self
    }

    /// How the agent runs (sets its tokens' default and maximum lifetime).
    pub fn with_type(mut self, agent_type: AgentType) -> Self {
        self.agent_type = agent_type;
        self
    }

    /// Lets the agent mint task tokens for the other agents of its owner, on behalf of a person
    /// (see [`Store::issue_task_token`](crate::store::Store::issue_task_token)).
    /// A thread-scoped child cannot be one
    /// ([`DelegationError::OrchestratorIsChild`](crate::delegation::DelegationError::OrchestratorIsChild)).
    pub fn orchestrator(mut self) -> Self {
        self.orchestrator = true;
        self
    }

    /// The agent's policy (its layer of the ceiling).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// An instant after which none of the agent's tokens resolve.
    pub fn with_expires_at(mut self, expires_at: OffsetDateTime) -> Self {
        self.expires_at = Some(expires_at);
        self.expires_in = None;
        self
    }

    /// The agent expires this long after it is created, by the store's clock.
    pub fn expires_in(mut self, ttl: std::time::Duration) -> Self {
        self.expires_in = Some(ttl);
        self.expires_at = None;
        self
    }
}

/// What a [`NewAgent`] asks for, as the store reads it.
impl NewAgent {
    /// The slug asked for.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// The owner named; `None` for a child, which acts for its parent's owner.
    pub fn owner(&self) -> Option<&UserId> {
        self.owner.as_ref()
    }

    /// The parent, for a thread-scoped child.
    pub fn parent(&self) -> Option<&AgentId> {
        self.parent.as_ref()
    }

    /// How the agent runs.
    pub fn agent_type(&self) -> AgentType {
        self.agent_type
    }

    /// Its policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The expiry asked for as an instant.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }

    /// The expiry asked for as a lifetime from creation.
    pub fn lifetime(&self) -> Option<std::time::Duration> {
        self.expires_in
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> Option<&BTreeSet<String>> {
        self.scopes.as_ref()
    }

    /// The modes asked for.
    pub fn modes(&self) -> Option<&BTreeSet<String>> {
        self.modes.as_ref()
    }

    /// Whether it is to be an orchestrator.
    pub fn is_orchestrator(&self) -> bool {
        self.orchestrator
    }
}
