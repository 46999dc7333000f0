//! Approvals seen by one user: listed for the agents they may see, decided by owner or admin.

use super::{Managed, named};
use crate::approval::{Approval, ApprovalBounds, ApprovalFilter, ApprovalId, Decision};
use crate::audit::AuditAction;
use crate::error::{NotFound, StoreError};
use crate::principal::AgentId;
use crate::store::access::Operation;
use crate::store::backend::Backend;
use crate::store::domain::Store;
use crate::store::model::Agent;

impl<B: Backend> Managed<'_, Store<B>> {
    /// [`Managed::check`] of an operation on `approval` of the agent: a refusal is recorded
    /// naming the approval attempted, and answered [`NotFound::Approval`](crate::error::NotFound::Approval) when the
    /// actor may not even see the agent, so that an approval id tells a stranger nothing (not
    /// the agent's slug, not that it exists).
    async fn check_approval(
        &self,
        approval: &Approval,
        operation: Operation,
        action: AuditAction,
    ) -> Result<Agent, StoreError> {
        let about = format!("approval {}", approval.id);
        match self
            .check_about(&approval.agent_id, operation, action, Some(&about))
            .await
        {
            Err(StoreError::Forbidden { .. } | StoreError::NotFound(NotFound::Agent(_)))
                if !self.may(&approval.agent_id, Operation::ViewAgent).await? =>
            {
                Err(StoreError::NotFound(NotFound::Approval(
                    crate::store::shortened(approval.id.as_str()),
                )))
            }
            other => other,
        }
    }
    /// The approvals passing `filter` of the agents the actor may see (any role, as for the
    /// agent itself), newest first: the newest [`ApprovalFilter::last`] of them (default
    /// [`DEFAULT_LISTED`](crate::approval::DEFAULT_LISTED), at most [`MAX_LISTED`](crate::approval::MAX_LISTED); more is
    /// [`InputError::Invalid`](crate::error::InputError::Invalid)). The agents are [`Store::agents_visible_to`]'s; the
    /// store filters by them and the status itself, at most 500 agents a query (a user who may
    /// see more is asked in several, their newest `last` kept), so a user who may see no agent
    /// reads no approval.
    pub async fn approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        let last = filter.last.unwrap_or(crate::approval::DEFAULT_LISTED);
        if last > crate::approval::MAX_LISTED {
            return Err(StoreError::invalid(format!(
                "last: at most {}",
                crate::approval::MAX_LISTED
            )));
        }
        let mut visible = match &filter.agent {
            Some(agent) if self.may(agent, Operation::ViewAgent).await? => vec![agent.clone()],
            Some(_) => Vec::new(),
            None => self.store.agents_visible_to(&self.actor).await?,
        };
        if let Some(asked) = &filter.agents {
            let asked: std::collections::HashSet<&AgentId> = asked.iter().collect();
            visible.retain(|agent| asked.contains(agent));
        }
        // A few agents a query: a user who may see tens of thousands would otherwise bind one
        // parameter each, past SQLite's and PostgreSQL's limits. Each chunk's newest `last`
        // hold the newest `last` of them all.
        let mut listed = Vec::new();
        for filter in approval_queries(&visible, filter, last) {
            listed = newest(listed, self.store.list_approvals(&filter).await?, last);
        }
        Ok(listed)
    }
    /// One approval, if the actor may see its agent (any role). An approval of an agent they
    /// may not see is [`NotFound::Approval`](crate::error::NotFound::Approval), as for an id that names none: its id
    /// tells a stranger nothing. Deciding one likewise; a user who may see it but not decide
    /// is [`StoreError::Forbidden`].
    pub async fn approval(&self, id: &ApprovalId) -> Result<Approval, StoreError> {
        let approval = self.find_approval(id).await?;
        self.check_approval(&approval, Operation::ViewAgent, AuditAction::Read)
            .await?;
        Ok(approval)
    }
    /// Approves a pending approval within `bounds`: owner or admin of its agent. Recorded as
    /// `approval_granted` with the actor, the approval's agent, token and chain.
    pub async fn approve(
        &self,
        id: &ApprovalId,
        bounds: ApprovalBounds,
    ) -> Result<Approval, StoreError> {
        self.decide(id, Decision::Approve(bounds), AuditAction::ApprovalGranted)
            .await
    }
    /// Denies a pending approval: owner or admin of its agent. Recorded as `approval_denied`.
    pub async fn deny(&self, id: &ApprovalId) -> Result<Approval, StoreError> {
        self.decide(id, Decision::Deny, AuditAction::ApprovalDenied)
            .await
    }
    /// Withdraws an approval given earlier while it is approved and unexpired: owner or admin
    /// of its agent. It admits nothing more (stored `denied`, no uses left); matching retries
    /// are refused until it expires. Recorded as `approval_revoked`.
    pub async fn revoke_approval(&self, id: &ApprovalId) -> Result<Approval, StoreError> {
        self.decide(id, Decision::Revoke, AuditAction::ApprovalRevoked)
            .await
    }
    async fn decide(
        &self,
        id: &ApprovalId,
        decision: Decision,
        action: AuditAction,
    ) -> Result<Approval, StoreError> {
        let asked = self.find_approval(id).await?;
        let record = self
            .check_approval(&asked, Operation::DecideApproval, action)
            .await?;
        let decided = self
            .store
            .decide_approval(id, &self.actor, decision)
            .await
            .map_err(named(&record))?;
        let detail = match decision {
            Decision::Approve(bounds) => format!(
                "approval {id} granted: {} until {}; {:?}",
                if bounds.uses_value() == 1 {
                    "1 use".to_owned()
                } else {
                    format!("{} uses", bounds.uses_value())
                },
                crate::approval::rfc3339(decided.expires_at),
                decided.binding_message
            ),
            Decision::Revoke => format!(
                "approval {id} revoked ({} use(s) unspent); {:?}",
                asked.uses_remaining.unwrap_or(0),
                decided.binding_message
            ),
            _ => format!("approval {id} denied; {:?}", decided.binding_message),
        };
        let event = crate::approval::approval_event(self.store.clock().now(), action, &decided)
            .parent(record.parent.clone())
            .detail(detail);
        // `record` names the actor: who decided, not the owner the event starts with.
        self.record(event).await;
        Ok(decided)
    }
    async fn find_approval(&self, id: &ApprovalId) -> Result<Approval, StoreError> {
        self.store.approval(id).await?.ok_or_else(|| {
            StoreError::NotFound(NotFound::Approval(crate::store::shortened(id.as_str())))
        })
    }
    /// Whether the actor may do `operation` on `agent`, without recording a refusal (for
    /// filtering a list, where not seeing is not an attempt).
    async fn may(&self, agent: &AgentId, operation: Operation) -> Result<bool, StoreError> {
        let Some(record) = self.store.agent(agent).await? else {
            return Ok(false);
        };
        self.may_on(&record, operation).await
    }
    /// [`Managed::may`] on an agent read already.
    async fn may_on(&self, record: &Agent, operation: Operation) -> Result<bool, StoreError> {
        self.allows(record, operation).await
    }
}

/// How many agents one [`Store::list_approvals`](crate::store::Store::list_approvals) call of [`Managed::approvals`] names
/// at most: well under SQLite's and PostgreSQL's limits on bound parameters.
pub(crate) const AGENTS_PER_APPROVAL_QUERY: usize = 500;

/// The queries [`Managed::approvals`] asks of the store for the agents `visible`: `filter`
/// narrowed to at most [`AGENTS_PER_APPROVAL_QUERY`] of them each, the newest `last` of each.
fn approval_queries(
    visible: &[AgentId],
    filter: &ApprovalFilter,
    last: usize,
) -> Vec<ApprovalFilter> {
    visible
        .chunks(AGENTS_PER_APPROVAL_QUERY)
        .map(|agents| ApprovalFilter {
            agents: Some(agents.to_vec()),
            last: Some(last),
            ..filter.clone()
        })
        .collect()
}

/// The newest `last` of two lists each newest first (by creation, then id, the greatest first,
/// as [`Store::list_approvals`](crate::store::Store::list_approvals) orders them).
fn newest(mut listed: Vec<Approval>, more: Vec<Approval>, last: usize) -> Vec<Approval> {
    listed.extend(more);
    listed.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    listed.truncate(last);
    listed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::ApprovalStatus;

    /// A user who may see 40,000 agents: no query names more than a chunk of them (each is a
    /// bound parameter in SQL), and together they name each once.
    #[test]
    fn approval_queries_bind_a_bounded_number_of_agents() {
        let visible: Vec<AgentId> = (0..40_000).map(|n| format!("agt_{n}").into()).collect();
        let filter = ApprovalFilter::all().status(ApprovalStatus::Pending);
        let queries = approval_queries(&visible, &filter, 25);
        assert_eq!(
            queries.len(),
            40_000_usize.div_ceil(AGENTS_PER_APPROVAL_QUERY)
        );
        let mut named = Vec::new();
        for query in &queries {
            let agents = query.agents.as_ref().unwrap();
            assert!(!agents.is_empty() && agents.len() <= AGENTS_PER_APPROVAL_QUERY);
            assert_eq!(query.last, Some(25));
            assert_eq!(query.status, Some(ApprovalStatus::Pending));
            named.extend(agents.iter().cloned());
        }
        assert_eq!(named, visible);
        assert!(
            approval_queries(&[], &filter, 25).is_empty(),
            "no agent, no query"
        );
    }
}
