//! Approvals held in memory: one list behind one lock, so each step, finding or creating and
//! consuming included, is atomic.

use std::sync::Mutex;

use time::OffsetDateTime;

use crate::approval::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalRequest, ApprovalStatus,
    Requested,
};
use crate::error::StoreError;

/// Every approval, oldest first.
#[derive(Default)]
pub(super) struct MemoryApprovals {
    approvals: Mutex<Vec<Approval>>,
}

impl MemoryApprovals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Approval>> {
        self.approvals.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn insert(&self, approval: &Approval) {
        self.lock().push(approval.clone());
    }

    /// A use of an approved approval of the request's binding spent, what stands for it, or the
    /// new one kept: under the lock, so one of many identical requests creates, and none
    /// creates while an approved one stands.
    pub(super) fn request(&self, request: &ApprovalRequest) -> Result<Requested, StoreError> {
        let mut approvals = self.lock();
        let now = request.now();
        if let Some(used) = consume_in(&mut approvals, request.binding(), now) {
            return Ok(Requested::Approved(used));
        }
        let of_binding: Vec<Approval> = approvals
            .iter()
            .filter(|a| a.binding == *request.binding())
            .cloned()
            .collect();
        let pending: Vec<OffsetDateTime> = approvals
            .iter()
            .filter(|a| {
                a.agent_id == *request.agent() && a.status_at(now) == ApprovalStatus::Pending
            })
            .map(|a| a.expires_at)
            .collect();
        let requested = request.decide(&of_binding, &pending, now)?;
        if let Requested::Created(approval) = &requested {
            approvals.push(approval.clone());
        }
        Ok(requested)
    }

    /// Deletes those that expired before `before`; how many.
    pub(super) fn purge(&self, before: OffsetDateTime) -> usize {
        let mut approvals = self.lock();
        let count = approvals.len();
        approvals.retain(|a| a.expires_at >= before);
        count - approvals.len()
    }

    pub(super) fn get(&self, id: &ApprovalId) -> Option<Approval> {
        self.lock().iter().find(|a| a.id == *id).cloned()
    }

    pub(super) fn list(&self, filter: &ApprovalFilter, now: OffsetDateTime) -> Vec<Approval> {
        filter.select(self.lock().iter(), now)
    }

    /// Stores `decided` if the approval still stands as `from`, unexpired at `now`.
    pub(super) fn decide(
        &self,
        decided: &Approval,
        from: ApprovalStatus,
        now: OffsetDateTime,
    ) -> bool {
        let mut approvals = self.lock();
        match approvals.iter_mut().find(|a| a.id == decided.id) {
            Some(stored) if stored.status == from && stored.expires_at > now => {
                stored.status = decided.status;
                stored.decided_by = decided.decided_by.clone();
                stored.decided_at = decided.decided_at;
                stored.uses = decided.uses;
                stored.uses_remaining = decided.uses_remaining;
                stored.expires_at = decided.expires_at;
                true
            }
            _ => false,
        }
    }

    pub(super) fn consume(
        &self,
        binding: &ApprovalBinding,
        now: OffsetDateTime,
    ) -> Option<Approval> {
        consume_in(&mut self.lock(), binding, now)
    }
}

/// Spends a use of the oldest usable approval of `binding` among `approvals` (held locked).
fn consume_in(
    approvals: &mut [Approval],
    binding: &ApprovalBinding,
    now: OffsetDateTime,
) -> Option<Approval> {
    let approval = approvals
        .iter_mut()
        .filter(|a| a.binding == *binding && a.is_usable_at(now))
        .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))?;
    approval.spend_use();
    Some(approval.clone())
}
