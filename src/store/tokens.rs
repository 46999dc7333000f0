//! Tokens: mint, import, list (metadata only), revoke, rotate, purge.

use std::time::Duration;

use super::Store;
use super::backend::{Backend, OneTask, Rotated, Rotation};
use super::model::{ImportedToken, IssuedToken, NewToken, TokenInfo};
use super::validate;
use crate::error::StoreError;
use crate::principal::{AgentId, TokenId};

/// How often a rotation reads the token again after a use was reserved under it.
const ROTATION_ATTEMPTS: usize = 5;

impl<B: Backend> Store<B> {
    /// Mints a token for `agent`; the raw token is in the result and nowhere else. Refuses a
    /// bad label, task id, intent or environment, capabilities outside the agent's policy (its
    /// parent's, for a child) or its owner's role, a lifetime its agent type does not allow,
    /// and for a single-task agent a token of another task while one is live.
    pub async fn create_token(
        &self,
        agent: &AgentId,
        new: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        let agent = self.agent_required(agent).await?;
        let parent = self.parent_of(&agent).await?;
        let prepared = validate::prepare_token(self.config(), &agent, parent.as_ref(), new)?;
        validate::within_owner_role(self.config(), &agent, prepared.info.capabilities.as_ref())
            .await?;
        let one_task = self
            .config()
            .lifetimes
            .single_task(agent.agent_type)
            .then(|| OneTask {
                task: prepared.info.task_id.clone(),
                now: self.now(),
                agent_slug: agent.slug.clone(),
                agent_type: agent.agent_type.as_str(),
            });
        self.backend()
            .insert_token(&prepared.hash, &prepared.info, one_task.as_ref())
            .await?;
        Ok(IssuedToken {
            token: prepared.raw,
            info: prepared.info,
        })
    }

    /// Metadata of the agent's tokens, oldest first; never a hash or a secret.
    pub async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        self.agent_required(agent).await?;
        self.backend().tokens(agent).await
    }

    /// One token of `agent`, metadata only.
    pub async fn token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<Option<TokenInfo>, StoreError> {
        self.agent_required(agent).await?;
        self.backend().token(agent, token).await
    }

    /// Revokes one token of `agent`. A token of another agent is
    /// [`NotFound::Token`](crate::error::NotFound::Token): no token can be revoked through the
    /// wrong agent. Revoking twice keeps the first time.
    pub async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<TokenInfo, StoreError> {
        self.agent_required(agent).await?;
        self.backend()
            .revoke_token(agent, token, self.now())
            .await?
            .ok_or_else(|| StoreError::unknown_token(agent, token))
    }

    /// Revokes every live token of `agent`; returns how many.
    pub async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize, StoreError> {
        self.agent_required(agent).await?;
        self.backend().revoke_agent_tokens(agent, self.now()).await
    }

    /// Stores a token known only by its hash (imported from another system).
    pub async fn import_token(
        &self,
        agent: &AgentId,
        token: ImportedToken,
    ) -> Result<TokenInfo, StoreError> {
        let agent = self.agent_required(agent).await?;
        let parent = self.parent_of(&agent).await?;
        let (hash, info) = validate::prepare_import(self.config(), &agent, parent.as_ref(), token)?;
        validate::within_owner_role(self.config(), &agent, info.capabilities.as_ref()).await?;
        self.backend().insert_token(&hash, &info, None).await?;
        Ok(info)
    }

    /// Replaces a live token with a new one that keeps its label, capabilities, expiry and task.
    /// The old token keeps working for `grace` (never past its own expiry); a zero grace revokes
    /// it at once. A use-limited token's uses left move to the new one: from then on the old
    /// token is refused as exhausted (a use it has in flight still settles), so rotating never
    /// adds uses. Tokens delegated from the old token stay its children: they end with its
    /// grace, or at once for a use-limited token (see [`crate::delegation`]). Returns the new
    /// token, shown once.
    pub async fn rotate_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        grace: Duration,
    ) -> Result<IssuedToken, StoreError> {
        let agent_record = self.agent_required(agent).await?;
        let unknown = || StoreError::unknown_token(agent, token);
        // A use reserved between reading the token and retiring it makes the retirement miss
        // (its uses changed): read again. Rotations are rare and reservations short.
        for _ in 0..ROTATION_ATTEMPTS {
            let old = self
                .backend()
                .token(agent, token)
                .await?
                .ok_or_else(unknown)?;
            let prepared = validate::prepare_rotation(self.config(), &agent_record, &old, grace)?;
            let rotation = Rotation {
                agent: agent.clone(),
                old: token.clone(),
                uses_read: old.operations_remaining,
                old_expires_at: prepared.old_expires_at,
                old_revoked_at: prepared.old_revoked_at,
                now: prepared.new.info.created_at,
                new_hash: prepared.new.hash,
                new: prepared.new.info.clone(),
            };
            match self.backend().rotate_token(&rotation).await? {
                Rotated::Done => {
                    return Ok(IssuedToken {
                        token: prepared.new.raw,
                        info: prepared.new.info,
                    });
                }
                Rotated::Changed => {
                    let now = self
                        .backend()
                        .token(agent, token)
                        .await?
                        .ok_or_else(unknown)?;
                    if now.operations_remaining != old.operations_remaining
                        && now.revoked_at.is_none()
                    {
                        continue;
                    }
                    return Err(StoreError::invalid("only a live token can be rotated"));
                }
            }
        }
        Err(StoreError::invalid(
            "the token is in use: its uses kept changing while it was rotated; try again",
        ))
    }

    /// Deletes tokens revoked, expired or completed more than `older_than` ago (and the tokens
    /// delegated from them); returns how many tokens were deleted, the delegated ones included.
    pub async fn purge(&self, older_than: Duration) -> Result<usize, StoreError> {
        match validate::purge_cutoff(self.now(), older_than) {
            Some(before) => self.backend().purge_tokens(before).await,
            // Longer ago than time itself: nothing is that old.
            None => Ok(0),
        }
    }
}
