//! Tokens: stored, listed, revoked, rotated, purged.

use time::OffsetDateTime;

use super::Core;
use super::dialect::{Driver, On, sql};
use super::error::{is_foreign_key_violation, is_unique_violation, store_error};
use super::rows::{capabilities_to_json, token_row};
use crate::error::{Conflict, StoreError};
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::TokenInfo;
use crate::store::backend::{OneTask, Rotated, Rotation};
use crate::store::validate::micros;
use crate::token::TokenHash;

/// The columns of `agent_auth_tokens` a [`TokenInfo`] is read from (by name, see
/// [`rows::token`](super::rows::token)).
#[cfg(test)]
const TOKEN_COLUMNS: &str = "id, agent_id, display_prefix, label, capabilities, created_at, \
    created_by, expires_at, last_used_at, revoked_at, max_operations, operations_remaining, \
    expires_on_completion, task_id, intent, orchestrator, environment, delegated_by, \
    delegation_parent, delegation_depth, completed_at, resource, client_id";

const INSERT_TOKEN: &str = "INSERT INTO agent_auth_tokens (hash, id, agent_id, display_prefix, \
    label, capabilities, created_at, created_by, expires_at, last_used_at, revoked_at, \
    max_operations, operations_remaining, expires_on_completion, task_id, intent, orchestrator, \
    environment, delegated_by, delegation_parent, delegation_depth, completed_at, resource, \
    client_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
    $17, $18, $19, $20, $21, $22, $23, $24)";

/// The tokens of agent `$1`, oldest first.
const LIST_TOKENS: &str = "SELECT id, agent_id, display_prefix, label, capabilities, \
    created_at, created_by, expires_at, last_used_at, revoked_at, max_operations, \
    operations_remaining, expires_on_completion, task_id, intent, orchestrator, environment, \
    delegated_by, delegation_parent, delegation_depth, completed_at, resource, client_id \
    FROM agent_auth_tokens WHERE agent_id = $1 ORDER BY created_at, id";

/// The token `$2` of agent `$1`.
const GET_TOKEN: &str = "SELECT id, agent_id, display_prefix, label, capabilities, \
    created_at, created_by, expires_at, last_used_at, revoked_at, max_operations, \
    operations_remaining, expires_on_completion, task_id, intent, orchestrator, environment, \
    delegated_by, delegation_parent, delegation_depth, completed_at, resource, client_id \
    FROM agent_auth_tokens WHERE agent_id = $1 AND id = $2";

/// Revokes, at `$1` unless revoked before, the token `$3` of agent `$2`: the token as changed.
const REVOKE_TOKEN: &str = "UPDATE agent_auth_tokens SET revoked_at = COALESCE(revoked_at, $1) \
    WHERE agent_id = $2 AND id = $3 \
    RETURNING id, agent_id, display_prefix, label, capabilities, created_at, created_by, \
    expires_at, last_used_at, revoked_at, max_operations, operations_remaining, \
    expires_on_completion, task_id, intent, orchestrator, environment, delegated_by, \
    delegation_parent, delegation_depth, completed_at, resource, client_id";

/// Revokes, at `$1`, every live token of agent `$2`.
const REVOKE_ALL_TOKENS: &str = "UPDATE agent_auth_tokens SET revoked_at = $1 \
    WHERE agent_id = $2 AND revoked_at IS NULL";

/// Revokes, at `$1`, the token `$3` of agent `$2` and every token delegated from it, below and
/// below that.
const REVOKE_TREE: &str = "UPDATE agent_auth_tokens SET revoked_at = $1 \
    WHERE revoked_at IS NULL AND id IN ( \
        WITH RECURSIVE tree(id) AS ( \
            SELECT CAST($3 AS TEXT) \
            UNION SELECT d.id FROM agent_auth_tokens d JOIN tree ON d.delegation_parent = tree.id) \
        SELECT id FROM tree) \
    AND EXISTS (SELECT 1 FROM agent_auth_tokens r WHERE r.id = $3 AND r.agent_id = $2)";

/// Ends, at `$1`, every live token of the owner `$2`'s agents with the task id `$3` and every
/// token delegated from one.
const COMPLETE_TASK: &str = "WITH RECURSIVE tree(id) AS ( \
        SELECT t.id FROM agent_auth_tokens t JOIN agent_auth_agents a ON a.id = t.agent_id \
        WHERE a.owner = $2 AND t.task_id = $3 \
        UNION SELECT d.id FROM agent_auth_tokens d JOIN tree ON d.delegation_parent = tree.id) \
    UPDATE agent_auth_tokens SET completed_at = $1 WHERE id IN (SELECT id FROM tree) \
    AND revoked_at IS NULL AND completed_at IS NULL AND (expires_at IS NULL OR expires_at > $1)";

/// Locks the agent `$1`'s row until the transaction ends (changes nothing): what serializes
/// the single-task check of concurrent mints for one agent.
const LOCK_AGENT: &str = "UPDATE agent_auth_agents SET status = status WHERE id = $1";

/// The task ids of the live tokens of agent `$1` at `$2`.
const LIVE_TASKS: &str = "SELECT DISTINCT task_id FROM agent_auth_tokens \
    WHERE agent_id = $1 AND task_id IS NOT NULL AND revoked_at IS NULL \
    AND completed_at IS NULL AND (expires_at IS NULL OR expires_at > $2)";

/// Retires the rotated token `$4` of agent `$3` (expiry `$1`, revocation `$2`), only if still
/// live at `$5` and only if no use was reserved since its uses were read (`$6`, -1 for a token
/// without a limit): the uses left move to the new token, counted on one side only. Two
/// concurrent rotations of one token cannot both succeed.
const RETIRE_ROTATED: &str = "UPDATE agent_auth_tokens SET expires_at = $1, revoked_at = $2, \
    operations_remaining = CASE WHEN operations_remaining IS NULL THEN NULL ELSE 0 END \
    WHERE agent_id = $3 AND id = $4 AND revoked_at IS NULL AND completed_at IS NULL \
    AND (expires_at IS NULL OR expires_at > $5) \
    AND COALESCE(operations_remaining, -1) = $6";

/// Records that agent `$2` had a token rotated at `$1`.
const MARK_ROTATED: &str = "UPDATE agent_auth_agents SET last_rotated_at = $1 WHERE id = $2";

/// How many tokens [`PURGE`] removes at `$1`, the delegated ones included (`n`): the foreign
/// key's `ON DELETE CASCADE` deletes those, which the database does not count.
const PURGEABLE_TREE: &str = "WITH RECURSIVE tree(id) AS ( \
        SELECT id FROM agent_auth_tokens \
        WHERE (revoked_at IS NOT NULL AND revoked_at < $1) \
        OR (completed_at IS NOT NULL AND completed_at < $1) \
        OR (expires_at IS NOT NULL AND expires_at < $1) \
        UNION SELECT d.id FROM agent_auth_tokens d JOIN tree ON d.delegation_parent = tree.id) \
    SELECT COUNT(*) AS n FROM tree";

/// Deletes the tokens dead before `$1`, and so by the foreign key the tokens delegated from
/// them.
const PURGE: &str = "DELETE FROM agent_auth_tokens \
    WHERE (revoked_at IS NOT NULL AND revoked_at < $1) \
    OR (completed_at IS NOT NULL AND completed_at < $1) \
    OR (expires_at IS NOT NULL AND expires_at < $1)";

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
    let result = sql(INSERT_TOKEN)
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
        .bind(info.resource.as_deref())
        .bind(info.client_id.as_deref())
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
        let locked = sql(LOCK_AGENT)
            .bind(info.agent_id.as_str())
            .execute(&mut tx)
            .await
            .map_err(store_error)?;
        if locked == 0 {
            return Err(StoreError::unknown_agent(&info.agent_id));
        }
        let rows = sql(LIVE_TASKS)
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
        let rows = sql(LIST_TOKENS)
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
        let row = sql(GET_TOKEN)
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
        let row = sql(REVOKE_TOKEN)
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
        let revoked = sql(REVOKE_ALL_TOKENS)
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
        let revoked = sql(REVOKE_TREE)
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
        let ended = sql(COMPLETE_TASK)
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
        let retired = sql(RETIRE_ROTATED)
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
        sql(MARK_ROTATED)
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
        let purged = match sql(PURGEABLE_TREE)
            .bind(cutoff)
            .fetch_optional(&mut tx)
            .await
            .map_err(store_error)?
        {
            Some(row) => B::int(&row, "n").map_err(store_error)?,
            None => 0,
        };
        sql(PURGE)
            .bind(cutoff)
            .execute(&mut tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(usize::try_from(purged).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_reads_every_column() {
        assert_eq!(TOKEN_COLUMNS.split(", ").count(), 23);
        assert!(INSERT_TOKEN.contains(&format!("(hash, {TOKEN_COLUMNS}) VALUES")));
        assert!(INSERT_TOKEN.ends_with("$23, $24)"));
        for statement in [LIST_TOKENS, GET_TOKEN, REVOKE_TOKEN] {
            assert!(statement.contains(TOKEN_COLUMNS), "{statement}");
        }
    }

    #[test]
    fn a_purge_counts_what_it_deletes() {
        // The condition on a token row, up to the tree's recursive step.
        let condition = |statement: &'static str| {
            let from = statement.find("WHERE (revoked_at").unwrap();
            statement[from..].split(" UNION").next().unwrap().to_owned()
        };
        assert_eq!(condition(PURGEABLE_TREE), condition(PURGE));
    }
}
