//! Agents: create, look up, list, enable/disable, delete (with their children).

use super::backend::{Driver, sql};
use super::rows::{agent_row, names_to_json, policy_to_json};
use super::{Core, is_foreign_key_violation, is_unique_violation, queries, store_error};
use crate::ceiling::Policy;
use crate::principal::{AgentId, UserId};
use crate::store::prepare::{self, micros};
use crate::store::{Agent, AgentStatus, NewAgent, StoreError};

impl<B: Driver> Core<B> {
    pub(crate) async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
        let parent = match &new.parent {
            Some(id) => Some(self.agent_required(id).await?),
            None => None,
        };
        let agent = prepare::prepare_agent(&self.config, new, parent.as_ref())?;
        prepare::existing_user(&self.config, &agent.owner).await?;
        let result = sql(queries::INSERT_AGENT)
            .bind(agent.id.as_str())
            .bind(&*agent.slug)
            .bind(agent.owner.as_str())
            .bind(agent.agent_type.as_str())
            .bind(agent.status.as_str())
            .bind(policy_to_json(&agent.policy))
            .bind(micros(agent.created_at))
            .bind(agent.expires_at.map(micros))
            .bind(agent.parent.as_ref().map(|p| p.to_string()))
            .bind(agent.scopes.as_deref().map(names_to_json))
            .bind(agent.modes.as_deref().map(names_to_json))
            .bind(agent.last_used_at.map(micros))
            .bind(agent.last_rotated_at.map(micros))
            .bind(agent.is_orchestrator)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(agent),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::DuplicateSlug(agent.slug.to_string()))
            }
            // The parent was deleted meanwhile.
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::UnknownAgent(
                agent.parent.map(|p| p.to_string()).unwrap_or_default(),
            )),
            Err(e) => Err(store_error(e)),
        }
    }

    pub(crate) async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        let row = sql(queries::AGENT_BY_ID)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(agent_row::<B>).transpose()
    }

    pub(crate) async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        let row = sql(queries::AGENT_BY_SLUG)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(agent_row::<B>).transpose()
    }

    pub(crate) async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        let rows = sql(queries::LIST_AGENTS)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(agent_row::<B>).collect()
    }

    pub(crate) async fn agents_owned_by(&self, owner: &UserId) -> Result<Vec<Agent>, StoreError> {
        let rows = sql(queries::AGENTS_OWNED_BY)
            .bind(owner.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(agent_row::<B>).collect()
    }

    pub(crate) async fn children(&self, parent: &AgentId) -> Result<Vec<Agent>, StoreError> {
        let rows = sql(queries::CHILDREN)
            .bind(parent.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(agent_row::<B>).collect()
    }

    pub(crate) async fn set_agent_status(
        &self,
        id: &AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        self.update_agent(queries::SET_AGENT_STATUS, status.as_str().to_owned(), id)
            .await
    }

    /// Runs `statement` (`UPDATE … SET column = $1 WHERE id = $2 RETURNING …`): the agent
    /// as it is now.
    async fn update_agent(
        &self,
        statement: &'static str,
        value: String,
        id: &AgentId,
    ) -> Result<Agent, StoreError> {
        let row = sql(statement)
            .bind(value)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref()
            .map(agent_row::<B>)
            .transpose()?
            .ok_or_else(|| StoreError::UnknownAgent(id.to_string()))
    }

    pub(crate) async fn set_agent_policy(
        &self,
        id: &AgentId,
        policy: Policy,
    ) -> Result<Agent, StoreError> {
        let agent = self.agent_required(id).await?;
        let parent = self.parent_of(&agent).await?;
        prepare::check_new_policy(&policy, parent.as_ref())?;
        self.update_agent(queries::SET_AGENT_POLICY, policy_to_json(&policy), id)
            .await
    }

    pub(crate) async fn delete_agent(&self, id: &AgentId) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let mut deleted = 0;
        // The last statement deletes the agent itself.
        for statement in queries::DELETE_AGENT {
            deleted = sql(statement)
                .bind(id.as_str())
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
        }
        if deleted == 0 {
            return Err(StoreError::UnknownAgent(id.to_string()));
        }
        tx.commit().await.map_err(store_error)
    }

    /// The agent `id`, or [`StoreError::UnknownAgent`].
    pub(crate) async fn agent_required(&self, id: &AgentId) -> Result<Agent, StoreError> {
        self.agent(id)
            .await?
            .ok_or_else(|| StoreError::UnknownAgent(id.to_string()))
    }

    /// The parent of `agent`, for a thread-scoped child.
    pub(crate) async fn parent_of(&self, agent: &Agent) -> Result<Option<Agent>, StoreError> {
        match &agent.parent {
            Some(parent) => self.agent(parent).await,
            None => Ok(None),
        }
    }
}
