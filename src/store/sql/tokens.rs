//! Tokens: stored, listed, revoked, rotated, purged.

use time::OffsetDateTime;

use super::dialect::{Driver, On, sql};
use super::rows::{capabilities_to_json, token_row};
use super::{Core, is_foreign_key_violation, is_unique_violation, queries, store_error};
use crate::error::{Conflict, StoreError};
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::TokenInfo;
use crate::store::backend::{OneTask, Rotated, Rotation};
use crate::store::validate::micros;
use crate::token::TokenHash;

fn as_i64(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Stores a token, on the pool or in a transaction.
async fn insert<'a, E: On<'a>>(
    on: E,
    hash: &'a TokenHash,
    info: &'a TokenInfo,
) -> Result<(), StoreError> {
    let result = sql(queries::INSERT_TOKEN)
        .bind(hash.as_bytes().as_slice())
        .bind(info.id.as_str())
        .bind(info.agent_id.as_str())
        .bind(info.display_prefix.as_str())
        .bind(info.label.as_str())
        .bind(info.capabilities.as_ref().map(capabilities_to_json))
        .bind(micros(info.created_at))
        .bind(info.created_by.as_ref().map(|u| u.to_string()))
        .bind(info.expires_at.map(micros))
        .bind(info.last_used_at.map(micros))
        .bind(info.revoked_at.map(micros))
        .bind(as_i64(info.max_operations))
        .bind(as_i64(info.operations_remaining))
        .bind(info.expires_on_completion)
        .bind(info.task_id.as_deref())
        .bind(info.intent.as_deref())
        .bind(info.orchestrator.as_ref().map(|a| a.as_str()))
        .bind(info.environment.as_deref())
        .bind(info.delegated_by.as_ref().map(|u| u.as_str()))
        .bind(info.delegation_parent.as_ref().map(|t| t.as_str()))
        .bind(i64::from(info.delegation_depth))
        .bind(info.task_completed_at.map(micros))
        .execute(on)
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(Conflict::Token.into()),
        // The agent was deleted meanwhile: the foreign key refuses the row.
        Err(e) if is_foreign_key_violation(&e) => Err(StoreError::unknown_agent(&info.agent_id)),
        Err(e) => Err(store_error(e)),
    }
}

impl<B: Driver> Core<B> {
    pub(crate) async fn insert_token(
        &self,
        hash: &TokenHash,
        info: &TokenInfo,
        one_task: Option<&OneTask>,
    ) -> Result<(), StoreError> {
        let Some(one_task) = one_task else {
            return insert(&self.pool, hash, info).await;
        };
        // One task at a time, atomically: the agent's row is locked (a no-op update) before its
        // live tasks are read, so concurrent mints for the agent take turns and the second sees
        // the first's token. On SQLite the update takes the database's write lock at once; on
        // PostgreSQL, the row's lock until the commit.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let locked = sql(queries::LOCK_AGENT)
            .bind(info.agent_id.as_str())
            .execute(&mut tx)
            .await
            .map_err(store_error)?;
        if locked == 0 {
            return Err(StoreError::unknown_agent(&info.agent_id));
        }
        let rows = sql(queries::LIVE_TASKS)
            .bind(info.agent_id.as_str())
            .bind(micros(one_task.now()))
            .fetch_all(&mut tx)
            .await
            .map_err(store_error)?;
        let live = rows
            .iter()
            .map(|row| B::text(row, "task_id"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(store_error)?;
        one_task.check(live.iter().map(String::as_str))?;
        insert(&mut tx, hash, info).await?;
        tx.commit().await.map_err(store_error)
    }

    pub(crate) async fn tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sql(queries::LIST_TOKENS)
            .bind(agent.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(token_row::<B>).collect()
    }

    pub(crate) async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let row = sql(queries::GET_TOKEN)
            .bind(agent.as_str())
            .bind(token.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(token_row::<B>).transpose()
    }

    pub(crate) async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        at: OffsetDateTime,
    ) -> Result<Option<TokenInfo>, StoreError> {
        let row = sql(queries::REVOKE_TOKEN)
            .bind(micros(at))
            .bind(agent.as_str())
            .bind(token.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(token_row::<B>).transpose()
    }

    pub(crate) async fn revoke_agent_tokens(
        &self,
        agent: &AgentId,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let revoked = sql(queries::REVOKE_ALL_TOKENS)
            .bind(micros(at))
            .bind(agent.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(count(revoked))
    }

    pub(crate) async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let revoked = sql(queries::REVOKE_TREE)
            .bind(micros(at))
            .bind(agent.as_str())
            .bind(token.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(count(revoked))
    }

    pub(crate) async fn complete_task(
        &self,
        owner: &UserId,
        task: &str,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let ended = sql(queries::COMPLETE_TASK)
            .bind(micros(at))
            .bind(owner.as_str())
            .bind(task)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(count(ended))
    }

    pub(crate) async fn rotate_token(&self, rotation: &Rotation) -> Result<Rotated, StoreError> {
        let uses_read = rotation
            .uses_read
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let retired = sql(queries::RETIRE_ROTATED)
            .bind(rotation.old_expires_at.map(micros))
            .bind(rotation.old_revoked_at.map(micros))
            .bind(rotation.agent.as_str())
            .bind(rotation.old.as_str())
            .bind(micros(rotation.now))
            .bind(uses_read)
            .execute(&mut tx)
            .await
            .map_err(store_error)?;
        if retired == 0 {
            return Ok(Rotated::Changed);
        }
        insert(&mut tx, &rotation.new_hash, &rotation.new).await?;
        sql(queries::MARK_ROTATED)
            .bind(micros(rotation.new.created_at))
            .bind(rotation.agent.as_str())
            .execute(&mut tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(Rotated::Done)
    }

    pub(crate) async fn purge_tokens(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        let cutoff = micros(before);
        // The count is of the whole tree: the rows the foreign key's cascade deletes are not in
        // `rows_affected`.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        let purged = match sql(queries::PURGEABLE_TREE)
            .bind(cutoff)
            .fetch_optional(&mut tx)
            .await
            .map_err(store_error)?
        {
            Some(row) => B::int(&row, "n").map_err(store_error)?,
            None => 0,
        };
        sql(queries::PURGE)
            .bind(cutoff)
            .execute(&mut tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }
}
