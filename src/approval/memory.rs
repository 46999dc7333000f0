//! Approvals held in memory, for [`MemoryStore`](crate::store::MemoryStore).

use std::sync::Mutex;

use time::OffsetDateTime;

use super::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalStatus, Decision, NewApproval,
    Requested, standing, too_many,
};
use crate::principal::UserId;
use crate::store::StoreError;

/// Every approval, oldest first, behind one lock: each operation, consuming included, is
/// atomic.
#[derive(Default)]
pub(crate) struct MemoryApprovals {
    approvals: Mutex<Vec<Approval>>,
}

impl MemoryApprovals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Approval>> {
        self.approvals.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn create(
        &self,
        new: NewApproval,
        now: OffsetDateTime,
    ) -> Result<Approval, StoreError> {
        new.validate()?;
        let approval = new.into_pending(ApprovalId::random()?, now)?;
        self.lock().push(approval.clone());
        Ok(approval)
    }

    /// A use of an approved approval of `new`'s binding spent, what stands for it, or `new`
    /// kept: under the lock, so one of many identical requests creates, and none creates
    /// while an approved one stands.
    pub(crate) fn request(
        &self,
        new: NewApproval,
        now: OffsetDateTime,
    ) -> Result<Requested, StoreError> {
        new.validate()?;
        let mut approvals = self.lock();
        if let Some(used) = consume_in(&mut approvals, &new.binding, now) {
            return Ok(Requested::Approved(used));
        }
        let of_binding = approvals.iter().filter(|a| a.binding == new.binding);
        if let Some(requested) = standing(of_binding, now) {
            return Ok(requested);
        }
        let pending = approvals
            .iter()
            .filter(|a| a.agent_id == new.agent_id && a.status_at(now) == ApprovalStatus::Pending)
            .map(|a| a.expires_at);
        if let Some(refused) = too_many(new.max_pending, pending, now) {
            return Ok(refused);
        }
        let approval = new.into_pending(ApprovalId::random()?, now)?;
        approvals.push(approval.clone());
        Ok(Requested::Created(approval))
    }

    /// Deletes those that expired before `cutoff` (Unix microseconds); how many.
    pub(crate) fn purge(&self, cutoff: i64) -> usize {
        let mut approvals = self.lock();
        let before = approvals.len();
        approvals.retain(|a| crate::store::prepare::micros(a.expires_at) >= cutoff);
        before - approvals.len()
    }

    pub(crate) fn get(&self, id: &ApprovalId) -> Option<Approval> {
        self.lock().iter().find(|a| a.id == *id).cloned()
    }

    pub(crate) fn list(&self, filter: &ApprovalFilter, now: OffsetDateTime) -> Vec<Approval> {
        let mut listed: Vec<Approval> = self
            .lock()
            .iter()
            .filter(|a| filter.matches(a, now))
            .cloned()
            .collect();
        listed.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        if let Some(last) = filter.last {
            listed.truncate(last);
        }
        listed
    }

    pub(crate) fn decide(
        &self,
        id: &ApprovalId,
        by: &UserId,
        decision: Decision,
        now: OffsetDateTime,
    ) -> Result<Approval, StoreError> {
        let mut approvals = self.lock();
        let approval = approvals
            .iter_mut()
            .find(|a| a.id == *id)
            .ok_or_else(|| StoreError::UnknownApproval(id.to_string()))?;
        // Decided on a copy, so that a refused decision changes nothing.
        let mut decided = approval.clone();
        decision.apply(&mut decided, by, now)?;
        *approval = decided.clone();
        Ok(decided)
    }

    pub(crate) fn consume(
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
    // The oldest usable one, as the SQL stores pick it.
    let approval = approvals
        .iter_mut()
        .filter(|a| {
            a.binding == *binding
                && a.status_at(now) == ApprovalStatus::Approved
                && a.uses_remaining.is_some_and(|n| n > 0)
        })
        .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))?;
    let left = approval.uses_remaining.unwrap_or(1) - 1;
    approval.uses_remaining = Some(left);
    if left == 0 {
        approval.status = ApprovalStatus::Used;
    }
    Some(approval.clone())
}
