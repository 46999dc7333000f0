//! Agents: stored, read, listed, changed, deleted (with their children).

use std::fmt::Write as _;

use super::dialect::{Arg, Driver, sql};
use super::rows::{agent_row, names_to_json, policy_to_json};
use super::{Core, is_foreign_key_violation, is_unique_violation, queries, store_error};
use crate::error::{Conflict, StoreError};
use crate::principal::AgentId;
use crate::store::Agent;
use crate::store::backend::{AgentChange, AgentFilter};
use crate::store::validate::micros;

impl<B: Driver> Core<B> {
    pub(crate) async fn insert_agent(&self, agent: &Agent) -> Result<(), StoreError> {
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

    pub(crate) async fn agents(&self, filter: &AgentFilter) -> Result<Vec<Agent>, StoreError> {
        let (column, ids) = match filter {
            AgentFilter::OwnedBy(owner) => ("owner", vec![owner.as_str()]),
            AgentFilter::Ids(ids) => ("id", ids.iter().map(AgentId::as_str).collect()),
            AgentFilter::ChildrenOf(parents) => {
                ("parent_id", parents.iter().map(AgentId::as_str).collect())
            }
            _ => ("", Vec::new()),
        };
        let mut text = format!("SELECT {} FROM agent_auth_agents", queries::AGENT_COLUMNS);
        let mut args: Vec<Arg<'_>> = Vec::new();
        if !column.is_empty() {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let _ = write!(text, " WHERE {column} IN (");
            for (i, id) in ids.into_iter().enumerate() {
                args.push(Arg::from(id));
                let _ = write!(text, "{}${}", if i > 0 { ", " } else { "" }, args.len());
            }
            text.push(')');
        }
        text.push_str(" ORDER BY slug");
        let statement = args.into_iter().fold(sql(&text), |st, arg| st.bind(arg));
        let rows = statement.fetch_all(&self.pool).await.map_err(store_error)?;
        rows.iter().map(agent_row::<B>).collect()
    }

    pub(crate) async fn update_agent(
        &self,
        id: &AgentId,
        change: &AgentChange,
    ) -> Result<Option<Agent>, StoreError> {
        let (statement, value) = match change {
            AgentChange::Status(status) => (queries::SET_AGENT_STATUS, status.as_str().to_owned()),
            AgentChange::Policy(policy) => (queries::SET_AGENT_POLICY, policy_to_json(policy)),
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
        // The last statement deletes the agent itself.
        for statement in queries::DELETE_AGENT {
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
