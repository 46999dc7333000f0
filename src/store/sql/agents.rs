//! Agents: stored, read, listed, changed, deleted (with their children).

use super::Core;
use super::dialect::{Driver, sql};
use super::error::{is_foreign_key_violation, is_unique_violation, store_error};
use super::rows::{agent_row, names_to_json, policy_to_json};
use crate::error::{Conflict, StoreError};
use crate::principal::AgentId;
use crate::store::Agent;
use crate::store::backend::{AgentChange, AgentFilter};
use crate::store::validate::micros;

/// The columns of `agent_auth_agents` an agent is read from (by name, see
/// [`rows::agent`](super::rows::agent)), in [`INSERT_AGENT`]'s order.
const AGENT_COLUMNS: &str = "id, slug, owner, agent_type, status, policy, created_at, \
    expires_at, parent_id, scopes, modes, last_used_at, last_rotated_at, orchestrator";

const INSERT_AGENT: &str = "INSERT INTO agent_auth_agents (id, slug, owner, agent_type, status, \
    policy, created_at, expires_at, parent_id, scopes, modes, last_used_at, last_rotated_at, \
    orchestrator) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// The agent with the id `$1`.
const AGENT_BY_ID: &str = "SELECT id, slug, owner, agent_type, status, policy, created_at, \
    expires_at, parent_id, scopes, modes, last_used_at, last_rotated_at, orchestrator \
    FROM agent_auth_agents WHERE id = $1";

/// The agent with the slug `$1`.
const AGENT_BY_SLUG: &str = "SELECT id, slug, owner, agent_type, status, policy, created_at, \
    expires_at, parent_id, scopes, modes, last_used_at, last_rotated_at, orchestrator \
    FROM agent_auth_agents WHERE slug = $1";

/// Sets the status `$1` of the agent `$2`: the agent as changed.
const SET_AGENT_STATUS: &str = "UPDATE agent_auth_agents SET status = $1 WHERE id = $2 \
    RETURNING id, slug, owner, agent_type, status, policy, created_at, expires_at, parent_id, \
    scopes, modes, last_used_at, last_rotated_at, orchestrator";

/// Sets the policy `$1` (JSON) of the agent `$2`: the agent as changed.
const SET_AGENT_POLICY: &str = "UPDATE agent_auth_agents SET policy = $1 WHERE id = $2 \
    RETURNING id, slug, owner, agent_type, status, policy, created_at, expires_at, parent_id, \
    scopes, modes, last_used_at, last_rotated_at, orchestrator";

/// An agent's children go with it, grants and tokens first: none may outlive the parent that
/// bounds it. Each statement takes the agent's id; the last deletes the agent itself.
const DELETE_AGENT: [&str; 6] = [
    "DELETE FROM agent_auth_grants WHERE agent_id IN \
     (SELECT id FROM agent_auth_agents WHERE parent_id = $1)",
    "DELETE FROM agent_auth_tokens WHERE agent_id IN \
     (SELECT id FROM agent_auth_agents WHERE parent_id = $1)",
    "DELETE FROM agent_auth_agents WHERE parent_id = $1",
    "DELETE FROM agent_auth_grants WHERE agent_id = $1",
    "DELETE FROM agent_auth_tokens WHERE agent_id = $1",
    "DELETE FROM agent_auth_agents WHERE id = $1",
];

impl<B: Driver> Core<B> {
    pub(crate) async fn insert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
        let result = sql(INSERT_AGENT)
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
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(Conflict::Slug(agent.slug.to_string()).into()),
            // The parent was deleted meanwhile.
            Err(e) if is_foreign_key_violation(&e) => Err(StoreError::unknown_agent(
                agent
                    .parent
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            )),
            Err(e) => Err(store_error(e)),
        }
    }

    pub(crate) async fn agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        let row = sql(AGENT_BY_ID)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(agent_row::<B>).transpose()
    }

    pub(crate) async fn agent_by_slug(&self, slug: &str) -> Result<Option<Agent>, StoreError> {
        let row = sql(AGENT_BY_SLUG)
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(agent_row::<B>).transpose()
    }

    pub(crate) async fn agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, StoreError> {
        let (column, ids) = match filter {
            AgentFilter::OwnedBy(owner) => ("owner", vec![owner.as_str()]),
            AgentFilter::Ids(ids) => ("id", ids.iter().map(AgentId::as_str).collect()),
            AgentFilter::ChildrenOf(parents) => {
                ("parent_id", parents.iter().map(AgentId::as_str).collect())
            }
            _ => ("", Vec::new()),
        };
        let mut statement = sql("SELECT ");
        statement
            .push(AGENT_COLUMNS)
            .push(" FROM agent_auth_agents");
        if !column.is_empty() {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            statement.push(" WHERE ").push(column).push(" IN (");
            for (i, id) in ids.into_iter().enumerate() {
                statement.push(if i > 0 { ", " } else { "" }).push_bind(id);
            }
            statement.push(")");
        }
        statement.push(" ORDER BY slug");
        let rows = statement.fetch_all(&self.pool).await.map_err(store_error)?;
        rows.iter().map(agent_row::<B>).collect()
    }

    pub(crate) async fn update_agent(
        &self,
        id: &AgentId,
        change: &AgentChange,
    ) -> Result<Option<Agent>, StoreError> {
        let (statement, value) = match change {
            AgentChange::Status(status) => (SET_AGENT_STATUS, status.as_str().to_owned()),
            AgentChange::Policy(policy) => (SET_AGENT_POLICY, policy_to_json(policy)),
        };
        let row = sql(statement)
            .bind(value)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(agent_row::<B>).transpose()
    }

    pub(crate) async fn delete_agent(&self, id: &AgentId) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let mut deleted = 0;
        for statement in DELETE_AGENT {
            deleted = sql(statement)
                .bind(id.as_str())
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
        }
        if deleted == 0 {
            return Ok(false);
        }
        tx.commit().await.map_err(store_error)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_reads_every_column() {
        assert_eq!(AGENT_COLUMNS.split(", ").count(), 14);
        assert!(INSERT_AGENT.contains(&format!("({AGENT_COLUMNS}) VALUES")));
        assert!(INSERT_AGENT.ends_with("$13, $14)"));
        for statement in [
            AGENT_BY_ID,
            AGENT_BY_SLUG,
            SET_AGENT_STATUS,
            SET_AGENT_POLICY,
        ] {
            assert!(statement.contains(AGENT_COLUMNS), "{statement}");
        }
    }
}
