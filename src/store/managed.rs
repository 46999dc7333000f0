//! [`Managed`]: a store seen by one user, every call checked by the [access rule](super::authorize)
//! and, optionally, audited.

use super::access::{AccessGrant, AccessRole, Operation, authorize};
use super::backend::Backend;
use super::domain::Store;
use super::model::{Agent, AgentStatus, IssuedToken, NewAgent, NewToken, TokenInfo};
#[cfg(feature = "approval")]
use crate::approval::{Approval, ApprovalBounds, ApprovalFilter, ApprovalId, Decision};
use crate::audit::{AuditAction, AuditEvent, AuditFilter, AuditQuery, AuditRecorder, Outcome};
use crate::ceiling::Policy;
use crate::error::{NotFound, StoreError};
use crate::principal::{AgentId, TokenId, UserId};

/// An error of a call on `agent` as a person reads it: the agent by its slug, which they typed,
/// not by its internal id.
fn named(agent: &Agent) -> impl Fn(StoreError) -> StoreError + '_ {
    move |error| {
        let slug = || agent.slug.to_string();
        let is_it = |named: &str| named == agent.id.as_str();
        match error {
            StoreError::NotFound(NotFound::Agent(id)) if is_it(&id) => {
                StoreError::NotFound(NotFound::Agent(slug()))
            }
            StoreError::NotFound(NotFound::Token { agent: id, token }) if is_it(&id) => {
                StoreError::NotFound(NotFound::Token {
                    agent: slug(),
                    token,
                })
            }
            StoreError::NotFound(NotFound::Grant { agent: id, user }) if is_it(&id) => {
                StoreError::NotFound(NotFound::Grant {
                    agent: slug(),
                    user,
                })
            }
            other => other,
        }
    }
}

/// A policy in a few words: `allow posts:*, comments:read; deny posts:delete`.
fn describe(policy: &Policy) -> String {
    let allow = policy.allowed().map_or_else(
        || "everything".to_owned(),
        |set| set.to_strings().join(", "),
    );
    let deny = policy.denied().to_strings();
    if deny.is_empty() {
        format!("allow {allow}")
    } else {
        format!("allow {allow}; deny {}", deny.join(", "))
    }
}

/// A store seen by one user: every management call is authorized first and, with
/// [`Managed::with_audit`], recorded — changes with before/after, refusals as
/// [`Outcome::Denied`].
pub struct Managed<'a, S> {
    store: &'a S,
    actor: UserId,
    audit: Option<&'a dyn AuditRecorder>,
}

impl<S> std::fmt::Debug for Managed<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("actor", &self.actor)
            .field("audit", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, B: Backend> Managed<'a, Store<B>> {
    /// `store` as `actor` sees it.
    pub fn new(store: &'a Store<B>, actor: impl Into<UserId>) -> Self {
        Self {
            store,
            actor: actor.into(),
            audit: None,
        }
    }

    /// Records every change made, and every refused attempt, through `recorder`.
    pub fn with_audit(mut self, recorder: &'a dyn AuditRecorder) -> Self {
        self.audit = Some(recorder);
        self
    }

    /// The acting user.
    pub fn actor(&self) -> &UserId {
        &self.actor
    }

    async fn record(&self, event: AuditEvent) {
        if let Some(recorder) = self.audit {
            crate::audit::record(recorder, event.actor(self.actor.clone())).await;
        }
    }

    fn event(&self, action: AuditAction, agent: &Agent) -> AuditEvent {
        AuditEvent::new(self.store.clock().now(), action, Outcome::Success)
            .agent(agent.id.clone())
            .parent(agent.parent.clone())
    }

    /// Authorizes `operation` on `agent`; a refusal is recorded as `action` denied.
    async fn check(
        &self,
        agent: &AgentId,
        operation: Operation,
        action: AuditAction,
    ) -> Result<Agent, StoreError> {
        self.check_about(agent, operation, action, None).await
    }

    /// [`Managed::check`] of an operation on `approval` of the agent: a refusal is recorded
    /// naming the approval attempted, and answered [`NotFound::Approval`](crate::error::NotFound::Approval) when the
    /// actor may not even see the agent, so that an approval id tells a stranger nothing (not
    /// the agent's slug, not that it exists).
    #[cfg(feature = "approval")]
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

    async fn check_about(
        &self,
        agent: &AgentId,
        operation: Operation,
        action: AuditAction,
        about: Option<&str>,
    ) -> Result<Agent, StoreError> {
        let record = self
            .store
            .agent(agent)
            .await?
            .ok_or_else(|| StoreError::unknown_agent(agent))?;
        let mut role = self.store.role_of(agent, &self.actor).await?;
        // A thread-scoped child is managed by whoever manages its parent.
        if let Some(parent) = &record.parent {
            role = role.max(self.store.role_of(parent, &self.actor).await?);
        }
        if let Err(denied) = authorize(&self.actor, &record, role, operation) {
            let detail = match about {
                Some(about) => format!("denied: may not {} ({about})", operation.as_str()),
                None => format!("denied: may not {}", operation.as_str()),
            };
            let mut event = self.event(action, &record).detail(detail);
            event.outcome = Outcome::Denied;
            self.record(event).await;
            return Err(denied);
        }
        Ok(record)
    }

    /// The identity: any role.
    pub async fn agent(&self, agent: &AgentId) -> Result<Agent, StoreError> {
        self.check(agent, Operation::ViewAgent, AuditAction::Read)
            .await
    }

    /// Creates an agent. A top-level agent only for oneself (the actor becomes its owner); a
    /// thread-scoped child ([`NewAgent::child`]) needs owner or admin on the parent.
    pub async fn create_agent(&self, new: NewAgent) -> Result<Agent, StoreError> {
        match &new.parent {
            Some(parent) => {
                self.check(parent, Operation::ManageAgent, AuditAction::AgentCreated)
                    .await?;
            }
            None if new.owner.as_ref() != Some(&self.actor) => {
                let event = AuditEvent::new(
                    self.store.clock().now(),
                    AuditAction::AgentCreated,
                    Outcome::Denied,
                )
                .detail(format!("denied: create {} for another user", new.slug));
                self.record(event).await;
                return Err(StoreError::Forbidden {
                    user: self.actor.to_string(),
                    operation: "create agents for another user",
                    agent: new.slug,
                });
            }
            None => {}
        }
        let agent = self.store.create_agent(new).await?;
        let detail = format!("created {} for {}", agent.slug, agent.owner);
        self.record(self.event(AuditAction::AgentCreated, &agent).detail(detail))
            .await;
        Ok(agent)
    }

    /// Disables or enables the identity: owner or admin.
    pub async fn set_agent_status(
        &self,
        agent: &AgentId,
        status: AgentStatus,
    ) -> Result<Agent, StoreError> {
        let action = match status {
            AgentStatus::Active => AuditAction::AgentEnabled,
            AgentStatus::Disabled => AuditAction::AgentDisabled,
        };
        let before = self.check(agent, Operation::ManageAgent, action).await?;
        let after = self
            .store
            .set_agent_status(agent, status)
            .await
            .map_err(named(&before))?;
        let detail = format!(
            "status: {} -> {}",
            before.status.as_str(),
            after.status.as_str()
        );
        self.record(self.event(action, &after).detail(detail)).await;
        Ok(after)
    }

    /// Replaces the agent's policy: owner or admin. It applies to the agent's (and its
    /// children's) next request; recorded with before and after.
    pub async fn set_agent_policy(
        &self,
        agent: &AgentId,
        policy: Policy,
    ) -> Result<Agent, StoreError> {
        let before = self
            .check(
                agent,
                Operation::ManageAgent,
                AuditAction::AgentPolicyChanged,
            )
            .await?;
        let after = self
            .store
            .set_agent_policy(agent, policy)
            .await
            .map_err(named(&before))?;
        let detail = format!(
            "policy: {} -> {}",
            describe(&before.policy),
            describe(&after.policy)
        );
        self.record(
            self.event(AuditAction::AgentPolicyChanged, &after)
                .detail(detail),
        )
        .await;
        Ok(after)
    }

    /// Deletes the identity with its credentials and children: owner or admin.
    pub async fn delete_agent(&self, agent: &AgentId) -> Result<(), StoreError> {
        let record = self
            .check(agent, Operation::ManageAgent, AuditAction::AgentDeleted)
            .await?;
        let children = self.store.children(agent).await?;
        self.store
            .delete_agent(agent)
            .await
            .map_err(named(&record))?;
        for child in &children {
            let detail = format!("deleted {} with its parent {}", child.slug, record.slug);
            self.record(self.event(AuditAction::AgentDeleted, child).detail(detail))
                .await;
        }
        let detail = format!("deleted {}", record.slug);
        self.record(
            self.event(AuditAction::AgentDeleted, &record)
                .detail(detail),
        )
        .await;
        Ok(())
    }

    /// Lists credentials: owner, operator or admin.
    pub async fn list_tokens(&self, agent: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
        let record = self
            .check(agent, Operation::ListTokens, AuditAction::Read)
            .await?;
        self.store.list_tokens(agent).await.map_err(named(&record))
    }

    /// Issues a credential: owner or admin. Records the actor as its creator.
    pub async fn create_token(
        &self,
        agent: &AgentId,
        new: NewToken,
    ) -> Result<IssuedToken, StoreError> {
        let record = self
            .check(agent, Operation::IssueToken, AuditAction::TokenIssued)
            .await?;
        let issued = self
            .store
            .create_token(agent, new.created_by(self.actor.clone()))
            .await
            .map_err(named(&record))?;
        let detail = format!("issued {:?}", issued.info.label);
        self.record(
            self.event(AuditAction::TokenIssued, &record)
                .token(issued.info.id.clone())
                .task_id(issued.info.task_id.clone())
                .detail(detail),
        )
        .await;
        Ok(issued)
    }

    /// Rotates a credential: owner or admin.
    pub async fn rotate_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
        grace: std::time::Duration,
    ) -> Result<IssuedToken, StoreError> {
        let record = self
            .check(agent, Operation::RotateToken, AuditAction::TokenRotated)
            .await?;
        let issued = self
            .store
            .rotate_token(agent, token, grace)
            .await
            .map_err(named(&record))?;
        let detail = format!(
            "replaced by {}; the old one stays valid for {}s",
            issued.info.id,
            grace.as_secs()
        );
        self.record(
            self.event(AuditAction::TokenRotated, &record)
                .token(token.clone())
                .detail(detail),
        )
        .await;
        Ok(issued)
    }

    /// Revokes a credential: owner or admin.
    pub async fn revoke_token(
        &self,
        agent: &AgentId,
        token: &TokenId,
    ) -> Result<TokenInfo, StoreError> {
        let record = self
            .check(agent, Operation::RevokeToken, AuditAction::TokenRevoked)
            .await?;
        let before = self.store.token(agent, token).await?;
        let revoked = self
            .store
            .revoke_token(agent, token)
            .await
            .map_err(named(&record))?;
        let detail = match before.and_then(|t| t.revoked_at) {
            Some(_) => "already revoked; unchanged",
            None => "status: live -> revoked",
        };
        self.record(
            self.event(AuditAction::TokenRevoked, &record)
                .token(token.clone())
                .detail(detail),
        )
        .await;
        Ok(revoked)
    }

    /// Revokes every credential of the identity: owner or admin.
    pub async fn revoke_all_tokens(&self, agent: &AgentId) -> Result<usize, StoreError> {
        let record = self
            .check(agent, Operation::RevokeToken, AuditAction::TokenRevoked)
            .await?;
        let revoked = self
            .store
            .revoke_all_tokens(agent)
            .await
            .map_err(named(&record))?;
        let detail = format!("revoked all {revoked} live tokens");
        self.record(
            self.event(AuditAction::TokenRevoked, &record)
                .detail(detail),
        )
        .await;
        Ok(revoked)
    }

    /// Grants access to another user: owner or admin.
    pub async fn grant(
        &self,
        agent: &AgentId,
        user: &UserId,
        role: AccessRole,
    ) -> Result<AccessGrant, StoreError> {
        let record = self
            .check(agent, Operation::ManageGrants, AuditAction::GrantChanged)
            .await?;
        let before = self.store.role_of(agent, user).await?;
        let grant = self
            .store
            .grant(agent, user, role)
            .await
            .map_err(named(&record))?;
        let detail = format!(
            "{user}: {} -> {}",
            before.map_or("none", |r| r.as_str()),
            role.as_str()
        );
        self.record(
            self.event(AuditAction::GrantChanged, &record)
                .detail(detail),
        )
        .await;
        Ok(grant)
    }

    /// Withdraws another user's access: owner or admin.
    pub async fn revoke_grant(&self, agent: &AgentId, user: &UserId) -> Result<(), StoreError> {
        let record = self
            .check(agent, Operation::ManageGrants, AuditAction::GrantChanged)
            .await?;
        let before = self.store.role_of(agent, user).await?;
        self.store
            .revoke_grant(agent, user)
            .await
            .map_err(named(&record))?;
        let detail = format!("{user}: {} -> none", before.map_or("none", |r| r.as_str()));
        self.record(
            self.event(AuditAction::GrantChanged, &record)
                .detail(detail),
        )
        .await;
        Ok(())
    }

    /// Who has a role on the identity: owner, operator or admin.
    pub async fn grants(&self, agent: &AgentId) -> Result<Vec<AccessGrant>, StoreError> {
        let record = self
            .check(agent, Operation::ListGrants, AuditAction::Read)
            .await?;
        self.store.grants(agent).await.map_err(named(&record))
    }

    /// The identity's audit trail (with its children's), oldest first: owner, operator or
    /// admin. `filter` narrows it further (its agents are replaced by `agent`).
    pub async fn audit_events(
        &self,
        agent: &AgentId,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.check(agent, Operation::ReadAudit, AuditAction::Read)
            .await?;
        let filter = AuditFilter {
            agents: vec![agent.clone()],
            ..filter
        };
        self.store
            .events(&filter)
            .await
            .map_err(|crate::error::AuditError::Unavailable(e)| StoreError::Unavailable(e))
    }

    /// The approvals passing `filter` of the agents the actor may see (any role, as for the
    /// agent itself), newest first: the newest [`ApprovalFilter::last`] of them (default
    /// [`DEFAULT_LISTED`](crate::approval::DEFAULT_LISTED), at most [`MAX_LISTED`](crate::approval::MAX_LISTED); more is
    /// [`InputError::Invalid`](crate::error::InputError::Invalid)). The agents are [`Store::agents_visible_to`]'s; the
    /// store filters by them and the status itself, at most 500 agents a query (a user who may
    /// see more is asked in several, their newest `last` kept), so a user who may see no agent
    /// reads no approval.
    #[cfg(feature = "approval")]
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
    #[cfg(feature = "approval")]
    pub async fn approval(&self, id: &ApprovalId) -> Result<Approval, StoreError> {
        let approval = self.find_approval(id).await?;
        self.check_approval(&approval, Operation::ViewAgent, AuditAction::Read)
            .await?;
        Ok(approval)
    }

    /// Approves a pending approval within `bounds`: owner or admin of its agent. Recorded as
    /// `approval_granted` with the actor, the approval's agent, token and chain.
    #[cfg(feature = "approval")]
    pub async fn approve(
        &self,
        id: &ApprovalId,
        bounds: ApprovalBounds,
    ) -> Result<Approval, StoreError> {
        self.decide(id, Decision::Approve(bounds), AuditAction::ApprovalGranted)
            .await
    }

    /// Denies a pending approval: owner or admin of its agent. Recorded as `approval_denied`.
    #[cfg(feature = "approval")]
    pub async fn deny(&self, id: &ApprovalId) -> Result<Approval, StoreError> {
        self.decide(id, Decision::Deny, AuditAction::ApprovalDenied)
            .await
    }

    /// Withdraws an approval given earlier while it is approved and unexpired: owner or admin
    /// of its agent. It admits nothing more (stored `denied`, no uses left); matching retries
    /// are refused until it expires. Recorded as `approval_revoked`.
    #[cfg(feature = "approval")]
    pub async fn revoke_approval(&self, id: &ApprovalId) -> Result<Approval, StoreError> {
        self.decide(id, Decision::Revoke, AuditAction::ApprovalRevoked)
            .await
    }

    #[cfg(feature = "approval")]
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

    #[cfg(feature = "approval")]
    async fn find_approval(&self, id: &ApprovalId) -> Result<Approval, StoreError> {
        self.store.approval(id).await?.ok_or_else(|| {
            StoreError::NotFound(NotFound::Approval(crate::store::shortened(id.as_str())))
        })
    }

    /// Whether the actor may do `operation` on `agent`, without recording a refusal (for
    /// filtering a list, where not seeing is not an attempt).
    #[cfg(feature = "approval")]
    async fn may(&self, agent: &AgentId, operation: Operation) -> Result<bool, StoreError> {
        let Some(record) = self.store.agent(agent).await? else {
            return Ok(false);
        };
        self.may_on(&record, operation).await
    }

    /// [`Managed::may`] on an agent read already.
    #[cfg(feature = "approval")]
    async fn may_on(&self, record: &Agent, operation: Operation) -> Result<bool, StoreError> {
        let agent = &record.id;
        if record.owner == self.actor {
            return Ok(true);
        }
        let mut role = self.store.role_of(agent, &self.actor).await?;
        if let Some(parent) = &record.parent {
            role = role.max(self.store.role_of(parent, &self.actor).await?);
        }
        Ok(authorize(&self.actor, record, role, operation).is_ok())
    }
}

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
                .any(|t| t.task_id.as_deref() == Some(task_id) && super::validate::is_live(t, now))
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

#[cfg(feature = "approval")]
/// How many agents one [`Store::list_approvals`](crate::store::Store::list_approvals) call of [`Managed::approvals`] names
/// at most: well under SQLite's and PostgreSQL's limits on bound parameters.
pub(crate) const AGENTS_PER_APPROVAL_QUERY: usize = 500;

#[cfg(feature = "approval")]
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

#[cfg(feature = "approval")]
/// The newest `last` of two lists each newest first (by creation, then id, the greatest first,
/// as [`Store::list_approvals`](crate::store::Store::list_approvals) orders them).
fn newest(mut listed: Vec<Approval>, more: Vec<Approval>, last: usize) -> Vec<Approval> {
    listed.extend(more);
    listed.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    listed.truncate(last);
    listed
}

#[cfg(all(test, feature = "approval"))]
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
