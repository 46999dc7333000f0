//! Delegation and task scope seen by one user.

use super::{Managed, named};
use crate::audit::{AuditAction, AuditEvent, Outcome};
use crate::error::StoreError;
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::access::Operation;
use crate::store::backend::Backend;
use crate::store::domain::Store;
use crate::store::model::{IssuedToken, NewToken};

/// Delegation and task scope, seen by one user. The rules, as for the calls above:
///
/// | call | needs |
/// |---|---|
/// | [`revoke_token_tree`](Managed::revoke_token_tree) | [`Operation::RevokeToken`] on the token's agent (owner or admin); the delegated tokens below it go with it, whoever's agents they are (they are the owner's) |
/// | [`issue_task_token`](Managed::issue_task_token) | [`Operation::IssueToken`] on the target and on the orchestrator (minting in the orchestrator's name lends its authority) |
/// | [`complete_task`](Managed::complete_task) | nothing more: it ends the tasks of the actor's own agents only |
///
/// A task belongs to the owner whose agents serve it: task ids are the owner's namespace, and
/// completing one ends its tokens on every agent of that owner (and those delegated from
/// them). An admin grant on one agent is not authority over its owner's whole task, so it does
/// not let the grantee complete it; the grantee ends that agent's part with
/// [`revoke_token_tree`](Managed::revoke_token_tree) or
/// [`revoke_all_tokens`](Managed::revoke_all_tokens).
impl<B: Backend> Managed<'_, Store<B>> {
    /// Revokes the token `token` of `agent` and every token delegated from it (below and below
    /// that): owner or admin of `agent`. Returns how many were revoked now. Recorded as
    /// `token_revoked` of the token, the detail with the count and how many of them were
    /// delegated tokens.
    pub async fn revoke_token_tree(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<usize, StoreError> {
        let record = self
            .check(agent, Operation::RevokeToken, AuditAction::TokenRevoked)
            .await?;
        let before = self.store.token(agent, token).await?;
        let revoked = self
            .store
            .revoke_token_tree(agent, token)
            .await
            .map_err(named(&record))?;
        let was = before
            .as_ref()
            .map(|t| t.status_at(self.store.clock().now()));
        let root_was_live = before.is_some_and(|t| t.revoked_at.is_none());
        let delegated = if root_was_live {
            revoked.saturating_sub(1)
        } else {
            revoked
        };
        let detail = format!(
            "revoked the tree: {} ({}, with {delegated} delegated tokens)",
            if revoked == 1 {
                "1 token".to_owned()
            } else {
                format!("{revoked} tokens")
            },
            match was {
                Some(status) if root_was_live => format!("status: {status} -> revoked"),
                _ => "this one already revoked".to_owned(),
            }
        );
        self.record(
            self.event(AuditAction::TokenRevoked, &record)
                .token(token.clone())
                .detail(detail),
        )
        .await;
        Ok(revoked)
    }

    /// Mints a task token for `target` as the orchestrator `orchestrator`, on behalf of the
    /// person `delegated_by` (see
    /// [`Store::issue_task_token`]
    /// for what is checked): owner or admin of both agents. The token records the actor as its
    /// creator and `delegated_by` as the person it acts for (their role bounds it at every
    /// request). Recorded as `token_issued` of the target with the task id, the detail naming
    /// the orchestrator and the person.
    pub async fn issue_task_token(
        &self,
        orchestrator: &AgentId,
        target: &AgentId,
        delegated_by: &UserId,
        new: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        let record = self
            .check(target, Operation::IssueToken, AuditAction::TokenIssued)
            .await?;
        let conductor = self
            .check(
                orchestrator,
                Operation::IssueToken,
                AuditAction::TokenIssued,
            )
            .await?;
        let result = self
            .store
            .issue_task_token(
                orchestrator,
                target,
                delegated_by,
                new.created_by(self.actor.clone()),
            )
            .await
            .map_err(named(&record))
            .map_err(named(&conductor));
        let issued = match result {
            Ok(issued) => issued,
            Err(error @ StoreError::Delegation(_)) => {
                let mut event = self
                    .event(AuditAction::TokenIssued, &record)
                    .detail(format!("denied: {error}"));
                event.outcome = Outcome::Denied;
                self.record(event).await;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let detail = format!(
            "issued {:?} as orchestrator {} on behalf of {delegated_by}",
            issued.info.label, conductor.slug
        );
        self.record(
            self.event(AuditAction::TokenIssued, &record)
                .token(issued.info.id.clone())
                .task_id(issued.info.task_id.clone())
                .detail(detail),
        )
        .await;
        Ok(issued)
    }

    /// Completes the task `task_id` of the actor's own agents: every live token of theirs
    /// minted for it, and every token delegated from one, ends (refused as `expired` from now
    /// on). Returns how many ended. Recorded as `task_completed` once per agent that held a
    /// live token of the task (or once, without an agent, when none did), the detail with the
    /// count.
    pub async fn complete_task(&self, task_id: &str) -> Result<usize, StoreError> {
        let now = self.store.clock().now();
        let mut serving = Vec::new();
        for agent in self.store.agents_owned_by(&self.actor).await? {
            let tokens = self.store.list_tokens(&agent.id).await?;
            // Delegated tokens count: an agent that holds only children of the task's tokens
            // served it too (their task id is inherited).
            if tokens
                .iter()
                .any(|t| t.task_id.as_deref() == Some(task_id) && t.is_live_at(now))
            {
                serving.push(agent);
            }
        }
        let ended = self.store.complete_task(&self.actor, task_id).await?;
        let detail = format!(
            "completed task {task_id:?}: {} ended",
            if ended == 1 {
                "1 token".to_owned()
            } else {
                format!("{ended} tokens")
            }
        );
        let task = Some(task_id.to_owned());
        if serving.is_empty() {
            let event = AuditEvent::new(now, AuditAction::TaskCompleted, Outcome::Success)
                .task_id(task.clone())
                .detail(detail.clone());
            self.record(event).await;
        }
        for agent in &serving {
            self.record(
                self.event(AuditAction::TaskCompleted, agent)
                    .task_id(task.clone())
                    .detail(detail.clone()),
            )
            .await;
        }
        Ok(ended)
    }
}
