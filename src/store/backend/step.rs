//! What the store hands its backend: which records to list, what to change, and the atomic
//! steps' rules.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::ceiling::Policy;
use crate::error::StoreError;
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::access::AccessGrant;
use crate::store::model::{Agent, AgentStatus, TokenInfo};
use crate::token::TokenHash;

/// Which agents [`Backend::agents`](super::Backend::agents) lists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentFilter {
    /// Every agent.
    All,
    /// The agents this user owns (a thread-scoped child's owner is its parent's).
    OwnedBy(UserId),
    /// These agents (those that exist).
    Ids(Vec<AgentId>),
    /// The thread-scoped children of these agents.
    ChildrenOf(Vec<AgentId>),
}

impl AgentFilter {
    /// Those of `agents` that pass, by slug: for a backend that keeps agents in memory.
    pub fn select<'a>(&self, agents: impl IntoIterator<Item = &'a Agent>) -> Vec<Agent> {
        let mut selected: Vec<Agent> = agents
            .into_iter()
            .filter(|agent| self.matches(agent))
            .cloned()
            .collect();
        selected.sort_by(|a, b| a.slug.cmp(&b.slug));
        selected
    }

    /// Whether `agent` passes: for a backend that filters in memory.
    pub fn matches(&self, agent: &Agent) -> bool {
        match self {
            Self::All => true,
            Self::OwnedBy(owner) => agent.owner == *owner,
            Self::Ids(ids) => ids.contains(&agent.id),
            Self::ChildrenOf(parents) => agent.parent.as_ref().is_some_and(|p| parents.contains(p)),
        }
    }
}

/// What [`Backend::update_agent`](super::Backend::update_agent) changes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AgentChange {
    /// Enable or disable.
    Status(AgentStatus),
    /// Replace the policy.
    Policy(Policy),
}

impl AgentChange {
    /// Applies the change to `agent`: for a backend that keeps whole records.
    pub fn apply(&self, agent: &mut Agent) {
        match self {
            Self::Status(status) => agent.status = *status,
            Self::Policy(policy) => agent.policy = Arc::new(policy.clone()),
        }
    }
}

/// The rule of a single-task agent, checked by [`Backend::insert_token`](super::Backend::insert_token) in the same atomic
/// step as the insert: once a live token of the agent carries a task id, a token for another
/// task (or for none) is refused.
#[derive(Debug, Clone)]
pub struct OneTask {
    pub(crate) task: Option<String>,
    pub(crate) now: OffsetDateTime,
    pub(crate) agent_slug: Arc<str>,
    pub(crate) agent_type: &'static str,
}

impl OneTask {
    /// The instant "live" is judged at.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Whether `token` counts as live: not revoked, not completed, not expired at
    /// [`OneTask::now`].
    pub fn is_live(&self, token: &TokenInfo) -> bool {
        token.is_live_at(self.now)
    }

    /// [`OneTask::check`] over the agent's tokens, those live at [`OneTask::now`]: for a
    /// backend that reads whole records.
    pub fn check_tokens<'a>(
        &self,
        tokens: impl IntoIterator<Item = &'a TokenInfo>,
    ) -> Result<(), StoreError> {
        let live = tokens.into_iter().filter(|token| self.is_live(token));
        self.check(live.filter_map(|token| token.task_id.as_deref()))
    }

    /// Refuses the insert if one of `live_tasks` (the task ids of the agent's live tokens)
    /// differs from the new token's.
    pub fn check<'a>(
        &self,
        live_tasks: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        match live_tasks
            .into_iter()
            .find(|live| Some(*live) != self.task.as_deref())
        {
            Some(live) => Err(StoreError::invalid(format!(
                "the {} agent {:?} serves the task {live:?}: it cannot take another until that \
                 task's tokens end",
                self.agent_type, self.agent_slug
            ))),
            None => Ok(()),
        }
    }
}

/// A rotation, as [`Backend::rotate_token`](super::Backend::rotate_token) carries it out: retire the old token and store the
/// new one, in one step.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rotation {
    /// The agent both tokens belong to.
    pub agent: AgentId,
    /// The token retired.
    pub old: TokenId,
    /// The old token's [`TokenInfo::operations_remaining`] as the store read it: the
    /// retirement happens only if it is still that (no use was reserved meanwhile), so the
    /// uses left move to the new token counted on one side only.
    pub uses_read: Option<u64>,
    /// The old token's new expiry (never later than its own).
    pub old_expires_at: Option<OffsetDateTime>,
    /// Set when the grace period is zero: the old token is revoked now.
    pub old_revoked_at: Option<OffsetDateTime>,
    /// The instant of the rotation: the old token must be live then.
    pub now: OffsetDateTime,
    /// The new token's hash.
    pub new_hash: TokenHash,
    /// The new token's record; its `created_at` is the agent's new `last_rotated_at`.
    pub new: TokenInfo,
}

/// What became of a [`Rotation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotated {
    /// The old token was retired and the new one stored.
    Done,
    /// Nothing changed: the old token is gone, not live at [`Rotation::now`], or its uses are
    /// not [`Rotation::uses_read`] any more. The store reads it again and retries or refuses.
    Changed,
}

/// Which grants [`Backend::grants`](super::Backend::grants) lists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantFilter {
    /// The grants on this agent.
    Agent(AgentId),
    /// The grants of this user.
    User(UserId),
    /// The grant of this user on this agent.
    One(AgentId, UserId),
}

impl GrantFilter {
    /// Those of `grants` that pass, by agent then user: for a backend that keeps grants in
    /// memory.
    pub fn select<'a>(
        &self,
        grants: impl IntoIterator<Item = &'a AccessGrant>,
    ) -> Vec<AccessGrant> {
        let mut selected: Vec<AccessGrant> = grants
            .into_iter()
            .filter(|grant| self.matches(grant))
            .cloned()
            .collect();
        selected.sort_by(|a, b| (&a.agent_id, &a.user_id).cmp(&(&b.agent_id, &b.user_id)));
        selected
    }

    /// Whether `grant` passes: for a backend that filters in memory.
    pub fn matches(&self, grant: &AccessGrant) -> bool {
        match self {
            Self::Agent(agent) => grant.agent_id == *agent,
            Self::User(user) => grant.user_id == *user,
            Self::One(agent, user) => grant.agent_id == *agent && grant.user_id == *user,
        }
    }
}
