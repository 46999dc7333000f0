//! Agents: create, look up, list, enable and disable, change the policy, delete.

use super::Store;
use super::backend::{AgentChange, AgentFilter, Backend};
use super::model::{Agent, AgentStatus, NewAgent};
use super::validate;
use crate::ceiling::Policy;
use crate::error::StoreError;
use crate::principal::{AgentId, UserId};

impl<B: Backend> Store<B> {
    /// Creates an agent. Refuses an invalid or duplicate slug, an unknown owner, and for a
    /// thread-scoped child ([`NewAgent::child`]) a parent that is unknown, disabled, expired or
    /// a child itself, and scopes, modes, policy or expiry beyond the parent's.
    pub async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
        let parent = match new.parent() {
            Some(id) => Some(self.agent_required(id).await?),
            None => None,
        };
        let agent = validate::prepare_agent(self.config(), new, parent.as_ref())?;
        validate::existing_user(self.config(), &agent.owner).await?;
        self.backend().insert_agent(&agent).await?;
        Ok(agent)
    }

    /// The agent with this id.
    pub async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        self.backend().agent(id).await
    }

    /// The agent with this slug.
    pub async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        self.backend().agent_by_slug(slug).await
    }

    /// Every agent, by slug.
    pub async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        self.backend().agents(&AgentFilter::All).await
    }

    /// The thread-scoped children of `parent`, by slug.
    pub async fn children(&self, parent: &AgentId) -> Result<Vec<Agent>, StoreError> {
        let children = AgentFilter::ChildrenOf(vec![parent.clone()]);
        self.backend().agents(&children).await
    }

    /// The agents `owner` owns, by slug.
    pub async fn agents_owned_by(&self, owner: &UserId) -> Result<Vec<Agent>, StoreError> {
        let owned = AgentFilter::OwnedBy(owner.clone());
        self.backend().agents(&owned).await
    }

    /// Enables or disables an agent; a disabled agent's tokens (and its children's) are
    /// refused at once.
    pub async fn set_agent_status(
        &self,
        id: &AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        let change = AgentChange::Status(status);
        self.backend()
            .update_agent(id, &change)
            .await?
            .ok_or_else(|| StoreError::unknown_agent(id))
    }

    /// Replaces an agent's policy. It applies to the agent's next request (and its children's:
    /// the parent's policy is a layer of theirs); a child's must lie within its parent's, and
    /// the lists are bounded as at creation.
    pub async fn set_agent_policy(
        &self,
        id: &AgentId,
        policy: Policy,
    ) -> Result<Agent, StoreError> {
        let agent = self.agent_required(id).await?;
        let parent = self.parent_of(&agent).await?;
        validate::check_new_policy(&policy, parent.as_ref())?;
        self.backend()
            .update_agent(id, &AgentChange::Policy(policy))
            .await?
            .ok_or_else(|| StoreError::unknown_agent(id))
    }

    /// Deletes an agent, its thread-scoped children, and every token and grant of either: a
    /// token never outlives its agent.
    pub async fn delete_agent(&self, id: &AgentId) -> Result<(), StoreError> {
        if self.backend().delete_agent(id).await? {
            Ok(())
        } else {
            Err(StoreError::unknown_agent(id))
        }
    }

    /// The agent `id`, or [`NotFound::Agent`](crate::error::NotFound::Agent).
    pub(crate) async fn agent_required(&self, id: &AgentId) -> Result<Agent, StoreError> {
        self.backend()
            .agent(id)
            .await?
            .ok_or_else(|| StoreError::unknown_agent(id))
    }

    /// The parent of `agent`, for a thread-scoped child.
    pub(crate) async fn parent_of(&self, agent: &Agent) -> Result<Option<Agent>, StoreError> {
        match &agent.parent {
            Some(parent) => self.backend().agent(parent).await,
            None => Ok(None),
        }
    }
}
