//! Approvals held in memory: one set of maps behind one lock, so each step, finding or creating
//! and consuming included, is atomic. Indexed by id, binding, agent and expiry, so that each
//! step costs what it touches (the approval, its binding's, its agent's, the expired ones),
//! never the number of approvals kept.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::approval::{
    Approval, ApprovalBinding, ApprovalFilter, ApprovalId, ApprovalRequest, ApprovalStatus,
    Requested,
};
use crate::error::StoreError;
use crate::principal::AgentId;

/// Every approval, and the indexes over them.
#[derive(Default)]
struct Kept {
    by_id: HashMap<ApprovalId, Approval>,
    by_binding: HashMap<ApprovalBinding, HashSet<ApprovalId>>,
    by_agent: HashMap<AgentId, HashSet<ApprovalId>>,
    /// By expiry, for the purge: every approval once, at its current `expires_at`.
    by_expiry: BTreeSet<(OffsetDateTime, ApprovalId)>,
}

impl Kept {
    fn insert(&mut self, approval: Approval) {
        // The same id again replaces the record, and what the indexes said of it.
        self.remove(&approval.id);
        let id = approval.id.clone();
        (self.by_binding.entry(approval.binding.clone()).or_default()).insert(id.clone());
        (self.by_agent.entry(approval.agent_id.clone()).or_default()).insert(id.clone());
        self.by_expiry.insert((approval.expires_at, id.clone()));
        self.by_id.insert(id, approval);
    }

    fn remove(&mut self, id: &ApprovalId) {
        let Some(approval) = self.by_id.remove(id) else {
            return;
        };
        self.by_expiry
            .remove(&(approval.expires_at, approval.id.clone()));
        if let Some(ids) = self.by_binding.get_mut(&approval.binding) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_binding.remove(&approval.binding);
            }
        }
        if let Some(ids) = self.by_agent.get_mut(&approval.agent_id) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_agent.remove(&approval.agent_id);
            }
        }
    }

    fn of_binding<'a>(&'a self, binding: &ApprovalBinding) -> impl Iterator<Item = &'a Approval> {
        let ids = self.by_binding.get(binding).into_iter().flatten();
        ids.filter_map(|id| self.by_id.get(id))
    }

    fn of_agent<'a>(&'a self, agent: &AgentId) -> impl Iterator<Item = &'a Approval> {
        let ids = self.by_agent.get(agent).into_iter().flatten();
        ids.filter_map(|id| self.by_id.get(id))
    }

    /// Changes the approval `id` by `change`, keeping the expiry index in step.
    fn update(&mut self, id: &ApprovalId, change: impl FnOnce(&mut Approval)) -> Option<Approval> {
        let stored = self.by_id.get_mut(id)?;
        let expired_at = stored.expires_at;
        change(stored);
        if stored.expires_at != expired_at {
            self.by_expiry.remove(&(expired_at, id.clone()));
            self.by_expiry.insert((stored.expires_at, id.clone()));
        }
        Some(stored.clone())
    }

    /// Those passing `filter`: through the narrowest index the filter names.
    fn select(&self, filter: &ApprovalFilter, now: OffsetDateTime) -> Vec<Approval> {
        if let Some(binding) = &filter.binding {
            return filter.select(self.of_binding(binding), now);
        }
        if let Some(agent) = &filter.agent {
            return filter.select(self.of_agent(agent), now);
        }
        if let Some(agents) = &filter.agents {
            let unique: HashSet<&AgentId> = agents.iter().collect();
            return filter.select(unique.into_iter().flat_map(|a| self.of_agent(a)), now);
        }
        filter.select(self.by_id.values(), now)
    }
}

/// Every approval, indexed.
#[derive(Default)]
pub(super) struct MemoryApprovals {
    kept: Mutex<Kept>,
}

impl MemoryApprovals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn insert(&self, approval: &Approval) {
        self.lock().insert(approval.clone());
    }

    /// A use of an approved approval of the request's binding spent, what stands for it, or the
    /// new one kept: under the lock, so one of many identical requests creates, and none
    /// creates while an approved one stands.
    pub(super) fn request(&self, request: &ApprovalRequest) -> Result<Requested, StoreError> {
        let mut kept = self.lock();
        let now = request.now();
        if let Some(used) = consume_in(&mut kept, request.binding(), now) {
            return Ok(Requested::Approved(used));
        }
        let of_binding: Vec<Approval> = kept.of_binding(request.binding()).cloned().collect();
        let pending: Vec<OffsetDateTime> = kept
            .of_agent(request.agent())
            .filter(|a| a.status_at(now) == ApprovalStatus::Pending)
            .map(|a| a.expires_at)
            .collect();
        let requested = request.decide(&of_binding, &pending, now)?;
        if let Requested::Created(approval) = &requested {
            kept.insert(approval.clone());
        }
        Ok(requested)
    }

    /// Deletes those that expired before `before`; how many.
    pub(super) fn purge(&self, before: OffsetDateTime) -> usize {
        let mut kept = self.lock();
        let expired: Vec<ApprovalId> = kept
            .by_expiry
            .iter()
            .take_while(|(expires_at, _)| *expires_at < before)
            .map(|(_, id)| id.clone())
            .collect();
        for id in &expired {
            kept.remove(id);
        }
        expired.len()
    }

    pub(super) fn get(&self, id: &ApprovalId) -> Option<Approval> {
        self.lock().by_id.get(id).cloned()
    }

    pub(super) fn list(&self, filter: &ApprovalFilter, now: OffsetDateTime) -> Vec<Approval> {
        self.lock().select(filter, now)
    }

    /// Stores `decided` if the approval still stands as `from`, unexpired at `now`.
    pub(super) fn decide(
        &self,
        decided: &Approval,
        from: ApprovalStatus,
        now: OffsetDateTime,
    ) -> bool {
        let mut kept = self.lock();
        let stands = (kept.by_id.get(&decided.id))
            .is_some_and(|stored| stored.status == from && stored.expires_at > now);
        if stands {
            kept.update(&decided.id, |stored| {
                stored.status = decided.status;
                stored.decided_by = decided.decided_by.clone();
                stored.decided_at = decided.decided_at;
                stored.uses = decided.uses;
                stored.uses_remaining = decided.uses_remaining;
                stored.expires_at = decided.expires_at;
            });
        }
        stands
    }

    pub(super) fn consume(
        &self,
        binding: &ApprovalBinding,
        now: OffsetDateTime,
    ) -> Option<Approval> {
        consume_in(&mut self.lock(), binding, now)
    }
}

/// Spends a use of the oldest usable approval of `binding` among those `kept` (held locked).
fn consume_in(kept: &mut Kept, binding: &ApprovalBinding, now: OffsetDateTime) -> Option<Approval> {
    let id = kept
        .of_binding(binding)
        .filter(|a| a.is_usable_at(now))
        .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))?
        .id
        .clone();
    kept.update(&id, Approval::spend_use)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{TokenId, UserId};

    fn approval(n: usize, agent: &str, expires_in: i64, now: OffsetDateTime) -> Approval {
        let token = TokenId::from(format!("tok_{agent}"));
        let binding = ApprovalBinding::new(&token, "pay", "POST", "/p", None, &format!("m{n}"));
        Approval {
            id: ApprovalId::new(format!("apr_{n:06}")),
            binding,
            agent_id: AgentId::from(agent.to_owned()),
            owner: UserId::from("alice".to_owned()),
            token_id: token,
            delegation_chain: Vec::new(),
            method: "POST".into(),
            path: "/p".into(),
            capability: "pay".into(),
            details: None,
            binding_message: format!("m{n}"),
            status: ApprovalStatus::Pending,
            created_at: now,
            expires_at: now + time::Duration::seconds(expires_in),
            decided_by: None,
            decided_at: None,
            uses: None,
            uses_remaining: None,
            task_id: None,
            orchestrator: None,
        }
    }

    /// The indexes agree with the records through every step that changes one: a listing by
    /// agent sees only that agent's, a decision that moves the expiry moves it in the purge's
    /// order too, and a purge leaves no index naming what it deleted.
    #[test]
    fn the_indexes_follow_every_change() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let approvals = MemoryApprovals::default();
        for n in 0..10 {
            let agent = if n % 2 == 0 { "agt_even" } else { "agt_odd" };
            approvals.insert(&approval(n, agent, 60 + n as i64, now));
        }
        let even = ApprovalFilter::all().agent("agt_even");
        assert_eq!(approvals.list(&even, now).len(), 5);
        let both = ApprovalFilter::all().agents([AgentId::from("agt_odd".to_owned())]);
        assert!(
            approvals
                .list(&both, now)
                .iter()
                .all(|a| a.agent_id.as_str() == "agt_odd")
        );

        // Approved with a window: stored with the new expiry, far past the others.
        let mut decided = approvals.get(&ApprovalId::new("apr_000000")).unwrap();
        decided.status = ApprovalStatus::Approved;
        decided.uses = Some(1);
        decided.uses_remaining = Some(1);
        decided.expires_at = now + time::Duration::hours(1);
        assert!(approvals.decide(&decided, ApprovalStatus::Pending, now));
        assert!(
            !approvals.decide(&decided, ApprovalStatus::Pending, now),
            "decided once"
        );

        // Everything but the approved one expires before `now + 2 min`.
        let purged = approvals.purge(now + time::Duration::minutes(2));
        assert_eq!(purged, 9);
        assert_eq!(approvals.list(&ApprovalFilter::all(), now).len(), 1);
        assert!(
            approvals
                .list(&ApprovalFilter::all().agent("agt_odd"), now)
                .is_empty()
        );
        let kept = approvals.lock();
        assert_eq!(
            (
                kept.by_binding.len(),
                kept.by_agent.len(),
                kept.by_expiry.len()
            ),
            (1, 1, 1)
        );
        drop(kept);

        // Its one use spent through its binding; then nothing is left to spend.
        let used = approvals.consume(&decided.binding, now).unwrap();
        assert_eq!(used.status, ApprovalStatus::Used);
        assert!(approvals.consume(&decided.binding, now).is_none());
        assert_eq!(approvals.purge(now + time::Duration::hours(2)), 1);
        assert!(approvals.lock().by_expiry.is_empty());
    }
}
