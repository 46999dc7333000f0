//! Approvals kept by a [`Store`]: asked for, decided once, spent a use at a time.

use std::time::Duration;

use super::binding::ApprovalBinding;
use super::model::{
    Approval, ApprovalFilter, ApprovalId, ApprovalStatus, Decision, NewApproval, Requested,
};
use super::request::ApprovalRequest;
use crate::error::{Conflict, NotFound, StoreError};
use crate::principal::UserId;
use crate::store::{Backend, Store};

impl<B: Backend> Store<B> {
    /// Keeps a new pending approval, expiring `new.lifetime` from now, with a fresh id.
    pub async fn create_approval(&self, new: NewApproval) -> Result<Approval, StoreError> {
        new.validate()?;
        let approval = new.into_pending(ApprovalId::random()?, self.now())?;
        self.backend().insert_approval(&approval).await?;
        Ok(approval)
    }

    /// Spends a use of an approved, unexpired approval of `new`'s binding
    /// ([`Requested::Approved`]), or finds what stands for the binding, or, if nothing does,
    /// keeps `new` as a new pending approval ([`Requested::Created`]) — as one atomic step
    /// ([`Backend::request_approval`]): of many concurrent identical requests, on any number of
    /// nodes, one creates and every other is named the same approval, and none creates a second
    /// pending approval while an approved one stands (a person approving between the caller's
    /// [`Store::consume_approval`] and this call). Beyond [`NewApproval::max_pending`] pending
    /// approvals of the agent it keeps nothing ([`Requested::TooMany`]).
    pub async fn request_approval(&self, new: NewApproval) -> Result<Requested, StoreError> {
        new.validate()?;
        let request = ApprovalRequest::new(new, ApprovalId::random()?, self.config().clock.clone());
        self.backend().request_approval(&request).await
    }

    /// The approval with this id.
    pub async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError> {
        self.backend().approval(id).await
    }

    /// The approvals passing `filter`, newest first (those of one instant by id, the greatest
    /// first), at most [`ApprovalFilter::last`] of them.
    pub async fn list_approvals(
        &self,
        filter: &ApprovalFilter,
    ) -> Result<Vec<Approval>, StoreError> {
        self.backend().approvals(filter, self.now()).await
    }

    /// Approves or denies a pending, unexpired approval as `by`, now, or revokes an approved,
    /// unexpired one ([`Decision::Revoke`]; [`Conflict::ApprovalNotApproved`] otherwise).
    /// [`NotFound::Approval`] if there is none with this id, [`Conflict::ApprovalNotPending`]
    /// if it was decided already or expired: a decision is made once, and of two deciders at
    /// once one wins ([`Backend::decide_approval`] stores it only if it still stands as read).
    pub async fn decide_approval(
        &self,
        id: &ApprovalId,
        by: &UserId,
        decision: Decision,
    ) -> Result<Approval, StoreError> {
        let now = self.now();
        let mut decided = self
            .backend()
            .approval(id)
            .await?
            .ok_or_else(|| NotFound::Approval(id.to_string()))?;
        let from = match decision {
            Decision::Revoke => ApprovalStatus::Approved,
            _ => ApprovalStatus::Pending,
        };
        // The same checks on what was read; the backend checks again on what is there.
        decision.apply(&mut decided, by, now)?;
        if self.backend().decide_approval(&decided, from, now).await? {
            return Ok(decided);
        }
        // Another decision, a last use or its expiry came first: say where it stands.
        let status = self
            .backend()
            .approval(id)
            .await?
            .map_or(ApprovalStatus::Expired, |approval| approval.status_at(now))
            .as_str();
        let id = id.to_string();
        Err(match decision {
            Decision::Revoke => Conflict::ApprovalNotApproved { id, status },
            _ => Conflict::ApprovalNotPending { id, status },
        }
        .into())
    }

    /// Spends one use of an approved, unexpired approval with this binding and returns it
    /// (its uses left after this one); `None` if there is none. Atomic: of concurrent
    /// consumers of an approval with `n` uses left, at most `n` succeed, across every
    /// connection and node.
    pub async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
    ) -> Result<Option<Approval>, StoreError> {
        self.backend().consume_approval(binding, self.now()).await
    }

    /// Deletes the approvals that expired longer than `older_than` ago — pending, approved,
    /// denied and used ones alike: every approval expires at most a day after its decision, so
    /// none still usable goes — and says how many (the CLI's
    /// `agent-auth approval purge --older-than 30d`).
    pub async fn purge_approvals(&self, older_than: Duration) -> Result<usize, StoreError> {
        match crate::store::validate::purge_cutoff(self.now(), older_than) {
            Some(before) => self.backend().purge_approvals(before).await,
            None => Ok(0),
        }
    }
}
