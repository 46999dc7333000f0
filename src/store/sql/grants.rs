//! Access grants: a user's role on an agent.

use super::Core;
use super::dialect::{Driver, sql};
use super::error::{is_foreign_key_violation, store_error};
use crate::error::StoreError;
use crate::principal::{AgentId, UserId};
use crate::store::backend::GrantFilter;
use crate::store::validate::{from_micros, micros};
use crate::store::{AccessGrant, AccessRole};

/// Grants the user `$2` the role `$3` on the agent `$1` at `$4`, replacing any role they had.
const UPSERT_GRANT: &str = "INSERT INTO agent_auth_grants (agent_id, user_id, role, granted_at) \
    VALUES ($1, $2, $3, $4) ON CONFLICT (agent_id, user_id) \
    DO UPDATE SET role = excluded.role, granted_at = excluded.granted_at";

/// Takes back the role of the user `$2` on the agent `$1`.
const DELETE_GRANT: &str = "DELETE FROM agent_auth_grants WHERE agent_id = $1 AND user_id = $2";

/// The grants on the agent `$1`.
const GRANTS_ON_AGENT: &str = "SELECT agent_id, user_id, role, granted_at \
    FROM agent_auth_grants WHERE agent_id = $1 ORDER BY user_id";

/// The grants of the user `$1`.
const GRANTS_OF_USER: &str = "SELECT agent_id, user_id, role, granted_at \
    FROM agent_auth_grants WHERE user_id = $1 ORDER BY agent_id";

/// The grant of the user `$2` on the agent `$1`.
const GRANT_OF_USER_ON_AGENT: &str = "SELECT agent_id, user_id, role, granted_at \
    FROM agent_auth_grants WHERE agent_id = $1 AND user_id = $2";

fn role(text: &str) -> Result<AccessRole, StoreError> {
    AccessRole::parse(text).ok_or_else(|| StoreError::unavailable("stored role is not valid"))
}

impl<B: Driver> Core<B> {
    pub(crate) async fn put_grant(&self, grant: &AccessGrant) -> Result<(), StoreError> {
        let result = sql(UPSERT_GRANT)
            .bind(grant.agent_id.as_str())
            .bind(grant.user_id.as_str())
            .bind(grant.role.as_str())
            .bind(micros(grant.granted_at))
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            // The agent was deleted meanwhile.
            Err(e) if is_foreign_key_violation(&e) => {
                Err(StoreError::unknown_agent(&grant.agent_id))
            }
            Err(e) => Err(store_error(e)),
        }
    }

    pub(crate) async fn delete_grant(
        &self,
        agent: &AgentId,
        user: &UserId,
    ) -> Result<bool, StoreError> {
        let deleted = sql(DELETE_GRANT)
            .bind(agent.as_str())
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(deleted > 0)
    }

    pub(crate) async fn grants(
        &self,
        filter: &GrantFilter,
    ) -> Result<Vec<AccessGrant>, StoreError> {
        let statement = match filter {
            GrantFilter::Agent(agent) => sql(GRANTS_ON_AGENT).bind(agent.as_str()),
            GrantFilter::User(user) => sql(GRANTS_OF_USER).bind(user.as_str()),
            GrantFilter::One(agent, user) => sql(GRANT_OF_USER_ON_AGENT)
                .bind(agent.as_str())
                .bind(user.as_str()),
        };
        let rows = statement.fetch_all(&self.pool).await.map_err(store_error)?;
        rows.iter()
            .map(|row| {
                Ok(AccessGrant {
                    agent_id: B::text(row, "agent_id").map_err(store_error)?.into(),
                    user_id: B::text(row, "user_id").map_err(store_error)?.into(),
                    role: role(&B::text(row, "role").map_err(store_error)?)?,
                    granted_at: from_micros(B::int(row, "granted_at").map_err(store_error)?),
                })
            })
            .collect()
    }
}
