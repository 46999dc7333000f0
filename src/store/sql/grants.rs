//! Access grants: a user's role on an agent.

use super::backend::{Driver, sql};
use super::{Core, queries, store_error};
use crate::principal::{AgentId, UserId};
use crate::store::prepare::{self, from_micros, micros};
use crate::store::{AccessGrant, AccessRole, StoreError};

fn role(text: &str) -> Result<AccessRole, StoreError> {
    AccessRole::parse(text).ok_or_else(|| StoreError::unavailable("stored role is not valid"))
}

impl<B: Driver> Core<B> {
    pub(crate) async fn grant(
        &self,
        agent: &AgentId,
        user: &UserId,
        role: AccessRole,
    ) -> Result<AccessGrant, StoreError> {
        self.agent_required(agent).await?;
        prepare::existing_user(&self.config, user).await?;
        let granted_at = self.now();
        sql(queries::UPSERT_GRANT)
            .bind(agent.as_str())
            .bind(user.as_str())
            .bind(role.as_str())
            .bind(micros(granted_at))
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(AccessGrant {
            agent_id: agent.clone(),
            user_id: user.clone(),
            role,
            granted_at,
        })
    }

    pub(crate) async fn revoke_grant(
        &self,
        agent: &AgentId,
        user: &UserId,
    ) -> Result<(), StoreError> {
        self.agent_required(agent).await?;
        let deleted = sql(queries::DELETE_GRANT)
            .bind(agent.as_str())
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        if deleted == 0 {
            return Err(StoreError::UnknownGrant {
                agent: agent.to_string(),
                user: user.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>, StoreError> {
        self.agent_required(agent).await?;
        let rows = sql(queries::LIST_GRANTS)
            .bind(agent.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(AccessGrant {
                    agent_id: agent.clone(),
                    user_id: B::text(row, "user_id").map_err(store_error)?.into(),
                    role: role(&B::text(row, "role").map_err(store_error)?)?,
                    granted_at: from_micros(B::int(row, "granted_at").map_err(store_error)?),
                })
            })
            .collect()
    }

    pub(crate) async fn agents_visible_to(
        &self,
        user: &UserId,
    ) -> Result<Vec<AgentId>, StoreError> {
        let rows = sql(queries::AGENTS_VISIBLE_TO)
            .bind(user.as_str())
            .bind(user.as_str())
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| Ok(B::text(row, "id").map_err(store_error)?.into()))
            .collect()
    }

    pub(crate) async fn role_of(
        &self,
        agent: &AgentId,
        user: &UserId,
    ) -> Result<Option<AccessRole>, StoreError> {
        let row = sql(queries::ROLE_OF)
            .bind(agent.as_str())
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.map(|row| role(&B::text(&row, "role").map_err(store_error)?))
            .transpose()
    }
}
