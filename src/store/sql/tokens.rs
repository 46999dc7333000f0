//! Tokens: issue, import, list, revoke, rotate, purge.

use super::backend::{Driver, On, sql};
use super::rows::{capabilities_to_json, token_row};
use super::{Core, is_foreign_key_violation, is_unique_violation, queries, store_error};
use crate::principal::{AgentId, TokenId};
use crate::store::prepare::{self, micros};
use crate::store::{ImportedToken, IssuedToken, NewToken, StoreError, TokenInfo};
use crate::token::TokenHash;

/// How often a rotation reads the token again after a use was reserved under it.
const ROTATION_ATTEMPTS: usize = 5;

fn as_i64(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// Stores a token, on the pool or in a transaction.
async fn insert_token<'a, E: On<'a>>(
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
        Err(e) if is_unique_violation(&e) => Err(StoreError::DuplicateToken),
        // The agent was deleted meanwhile: the foreign key refuses the row.
        Err(e) if is_foreign_key_violation(&e) => {
            Err(StoreError::UnknownAgent(info.agent_id.to_string()))
        }
        Err(e) => Err(store_error(e)),
    }
}

impl<B: Driver> Core<B> {
    pub(crate) async fn create_token(
        &self,
        agent: &AgentId,
        new: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        let agent = self.agent_required(agent).await?;
        let parent = self.parent_of(&agent).await?;
        let prepared = prepare::prepare_token(&self.config, &agent, parent.as_ref(), new)?;
        prepare::within_owner_role(&self.config, &agent, prepared.info.capabilities.as_ref())
            .await?;
        if self.config.lifetimes.single_task(agent.agent_type) {
            // One task at a time, atomically: the agent's row is locked (a no-op update) before
            // its live tasks are read, so concurrent mints for the agent take turns and the
            // second sees the first's token. On SQLite the update takes the database's write
            // lock at once; on PostgreSQL, the row's lock until the commit.
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let locked = sql(queries::LOCK_AGENT)
                .bind(agent.id.as_str())
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
            if locked == 0 {
                return Err(StoreError::UnknownAgent(agent.id.to_string()));
            }
            let rows = sql(queries::LIVE_TASKS)
                .bind(agent.id.as_str())
                .bind(micros(self.now()))
                .fetch_all(&mut tx)
                .await
                .map_err(store_error)?;
            let live = rows
                .iter()
                .map(|row| B::text(row, "task_id"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(store_error)?;
            prepare::check_single_task(
                &self.config,
                &agent,
                prepared.info.task_id.as_deref(),
                live.iter().map(String::as_str),
            )?;
            insert_token(&mut tx, &prepared.hash, &prepared.info).await?;
            tx.commit().await.map_err(store_error)?;
            return Ok(IssuedToken {
                token: prepared.raw,
                info: prepared.info,
            });
        }
        insert_token(&self.pool, &prepared.hash, &prepared.info).await?;
        Ok(IssuedToken {
            token: prepared.raw,
            info: prepared.info,
        })
    }

    pub(crate) async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        self.agent_required(agent).await?;
        let rows = sql(queries::LIST_TOKENS)
            .bind(agent.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        rows.iter().map(token_row::<B>).collect()
    }

    pub(crate) async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<TokenInfo, StoreError> {
        self.agent_required(agent).await?;
        let row = sql(queries::REVOKE_TOKEN)
            .bind(micros(self.now()))
            .bind(agent.as_str())
            .bind(token.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref()
            .map(token_row::<B>)
            .transpose()?
            .ok_or_else(|| StoreError::UnknownToken {
                agent: agent.to_string(),
                token: token.to_string(),
            })
    }

    pub(crate) async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize, StoreError> {
        self.agent_required(agent).await?;
        let revoked = sql(queries::REVOKE_ALL_TOKENS)
            .bind(micros(self.now()))
            .bind(agent.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(usize::try_from(revoked).unwrap_or(usize::MAX))
    }

    /// See [`DelegationStore::revoke_token_tree`](crate::delegation::DelegationStore::revoke_token_tree).
    pub(crate) async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<usize, StoreError> {
        self.token(agent, token)
            .await?
            .ok_or_else(|| StoreError::UnknownToken {
                agent: agent.to_string(),
                token: token.to_string(),
            })?;
        let revoked = sql(queries::REVOKE_TREE)
            .bind(micros(self.now()))
            .bind(agent.as_str())
            .bind(token.as_str())
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(usize::try_from(revoked).unwrap_or(usize::MAX))
    }

    /// See [`DelegationStore::complete_task`](crate::delegation::DelegationStore::complete_task).
    pub(crate) async fn complete_task(
        &self,
        owner: &crate::principal::UserId,
        task_id: &str,
    ) -> Result<usize, StoreError> {
        let ended = sql(queries::COMPLETE_TASK)
            .bind(micros(self.now()))
            .bind(owner.as_str())
            .bind(task_id)
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(usize::try_from(ended).unwrap_or(usize::MAX))
    }

    pub(crate) async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        self.agent_required(agent).await?;
        let row = sql(queries::GET_TOKEN)
            .bind(agent.as_str())
            .bind(token.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(token_row::<B>).transpose()
    }

    pub(crate) async fn import_token(
        &self,
        agent: &AgentId,
        token: ImportedToken,
    ) -> Result<TokenInfo, StoreError> {
        let agent = self.agent_required(agent).await?;
        let parent = self.parent_of(&agent).await?;
        let (hash, info) = prepare::prepare_import(&self.config, &agent, parent.as_ref(), token)?;
        prepare::within_owner_role(&self.config, &agent, info.capabilities.as_ref()).await?;
        insert_token(&self.pool, &hash, &info).await?;
        Ok(info)
    }

    /// Rotates a token; see [`TokenStore::rotate_token`](crate::store::TokenStore::rotate_token).
    pub(crate) async fn rotate_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        grace: std::time::Duration,
    ) -> Result<IssuedToken, StoreError> {
        let agent_record = self.agent_required(agent).await?;
        let unknown = || StoreError::UnknownToken {
            agent: agent.to_string(),
            token: token.to_string(),
        };
        // A use reserved between reading the token and retiring it makes the retirement miss
        // (its uses changed): read again. Rotations are rare and reservations short.
        for _ in 0..ROTATION_ATTEMPTS {
            let old = self.token(agent, token).await?.ok_or_else(unknown)?;
            let rotation = prepare::prepare_rotation(&self.config, &agent_record, &old, grace)?;
            let uses_read = old
                .operations_remaining
                .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            let retired = sql(queries::RETIRE_ROTATED)
                .bind(rotation.old_expires_at.map(micros))
                .bind(rotation.old_revoked_at.map(micros))
                .bind(agent.as_str())
                .bind(token.as_str())
                .bind(micros(self.now()))
                .bind(uses_read)
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
            if retired == 0 {
                drop(tx);
                let now = self.token(agent, token).await?.ok_or_else(unknown)?;
                if now.operations_remaining != old.operations_remaining && now.revoked_at.is_none()
                {
                    continue;
                }
                return Err(StoreError::InvalidInput(
                    "only a live token can be rotated".into(),
                ));
            }
            let new = rotation.new;
            insert_token(&mut tx, &new.hash, &new.info).await?;
            sql(queries::MARK_ROTATED)
                .bind(micros(new.info.created_at))
                .bind(agent.as_str())
                .execute(&mut tx)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            return Ok(IssuedToken {
                token: new.raw,
                info: new.info,
            });
        }
        Err(StoreError::InvalidInput(
            "the token is in use: its uses kept changing while it was rotated; try again".into(),
        ))
    }

    pub(crate) async fn purge(&self, older_than: std::time::Duration) -> Result<usize, StoreError> {
        let cutoff = prepare::purge_cutoff(self.now(), older_than);
        // The count is of the whole tree, as the memory store's: the rows the foreign key's
        // cascade deletes are not in `rows_affected`.
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
