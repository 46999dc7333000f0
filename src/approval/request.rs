//! Asking for an approval: the rule a backend applies inside its one atomic step
//! ([`Backend::request_approval`](crate::store::Backend::request_approval)(crate::store::Backend::request_approval)).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::binding::ApprovalBinding;
use super::model::{Approval, ApprovalId, ApprovalStatus, NewApproval, Requested};
use crate::clock::Clock;
use crate::error::StoreError;

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

/// Asking for an approval, as [`Backend::request_approval`](crate::store::Backend::request_approval) carries it out in one step: the
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
    /// A request to keep `new` under `id` if nothing stands for its binding, at `clock`'s time.
    pub(crate) fn new(new: NewApproval, id: ApprovalId, clock: Arc<dyn Clock>) -> Self {
        Self { new, id, clock }
    }

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
