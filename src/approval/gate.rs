//! Approvals kept by a [`Store`]: asked for, decided once, spent a use at a time.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::binding::ApprovalBinding;
use super::model::{
    Approval, ApprovalFilter, ApprovalId, ApprovalStatus, Decision, NewApproval, Requested,
};
use crate::clock::Clock;
use crate::error::{Conflict, NotFound, StoreError};
use crate::principal::UserId;
use crate::store::{Backend, Store};

/// What a store answers when `pending` approvals of the agent (their expiries) stand and at
/// most `max` may: [`Requested::TooMany`] with the wait until the soonest expires, or `None`.
fn too_many(
    max: Option<u32>,
    pending: impl IntoIterator<Item = OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<Requested> {
    let max = usize::try_from(max?).unwrap_or(usize::MAX);
    let expiries: Vec<OffsetDateTime> = pending.into_iter().collect();
    if expiries.len() < max {
        return None;
    }
    let soonest = expiries.into_iter().min().unwrap_or(now);
    let wait = (soonest - now).whole_seconds().max(1);
    Some(Requested::TooMany {
        retry_after: Duration::from_secs(u64::try_from(wait).unwrap_or(1)),
    })
}

/// What stands for a request among the approvals of its binding (any order), at `now`: the
/// newest pending or unexpired denied one decides (a denial after an expired pending one, a
/// new ask after an expired denial); `None` when a new approval is to be asked for.
fn standing<'a>(
    approvals: impl IntoIterator<Item = &'a Approval>,
    now: OffsetDateTime,
) -> Option<Requested> {
    approvals
        .into_iter()
        .filter(|a| {
            matches!(
                a.status_at(now),
                ApprovalStatus::Pending | ApprovalStatus::Denied
            )
        })
        .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
        .map(|a| match a.status_at(now) {
            ApprovalStatus::Pending => Requested::Pending(a.clone()),
            _ => Requested::Denied(a.clone()),
        })
}

/// Asking for an approval, as [`Backend::request_approval`] carries it out in one step: the
/// approval to keep if nothing stands for its binding, and the rule that says what stands.
pub struct ApprovalRequest {
    new: NewApproval,
    id: ApprovalId,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ApprovalRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalRequest")
            .field("id", &self.id)
            .field("agent", &self.new.agent_id)
            .field("binding", &self.new.binding)
            .finish_non_exhaustive()
    }
}

impl ApprovalRequest {
    /// The binding asked for.
    pub fn binding(&self) -> &ApprovalBinding {
        &self.new.binding
    }

    /// The asking agent: the backend's lock is this agent's, so one agent's requests take turns.
    pub fn agent(&self) -> &crate::principal::AgentId {
        &self.new.agent_id
    }

    /// Now, by the store's clock, to the microsecond: read it once the lock is held, so that
    /// what expired while waiting counts.
    pub fn now(&self) -> OffsetDateTime {
        crate::store::validate::truncate(self.clock.now())
    }

    /// Whether [`ApprovalRequest::decide`] needs the expiries of the agent's pending approvals
    /// (it bounds how many may be pending).
    pub fn counts_pending(&self) -> bool {
        self.new.max_pending.is_some()
    }

    /// What stands for the request at `now`, given the approvals of its binding (any order, any
    /// status: those that do not stand are passed over) and the expiries of the agent's pending
    /// approvals: the newest pending or unexpired denied approval of the binding
    /// ([`Requested::Pending`], [`Requested::Denied`]); else [`Requested::TooMany`] when the
    /// agent has its most pending; else [`Requested::Created`] with the new approval, which the
    /// backend stores before it answers.
    pub fn decide(
        &self,
        of_binding: &[Approval],
        pending: &[OffsetDateTime],
        now: OffsetDateTime,
    ) -> Result<Requested, StoreError> {
        if let Some(requested) = standing(of_binding, now)
            .or_else(|| too_many(self.new.max_pending, pending.iter().copied(), now))
        {
            return Ok(requested);
        }
        let approval = self.new.clone().into_pending(self.id.clone(), now)?;
        Ok(Requested::Created(approval))
    }
}

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
        let request = ApprovalRequest {
            new,
            id: ApprovalId::random()?,
            clock: self.config().clock.clone(),
        };
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
