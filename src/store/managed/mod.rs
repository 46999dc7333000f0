//! [`Managed`]: a store seen by one user, every call checked by the [access rule](super::authorize)
//! and, optionally, audited.

#[cfg(feature = "approval")]
mod approvals;
mod tasks;

#[cfg(feature = "testing")]
pub(crate) use approvals::AGENTS_PER_APPROVAL_QUERY;

use super::access::{AccessGrant, AccessRole, Operation, authorize};
use super::backend::Backend;
use super::domain::Store;
use super::model::{Agent, AgentStatus, IssuedToken, NewAgent, NewToken, TokenInfo};
use crate::audit::{AuditAction, AuditEvent, AuditFilter, AuditQuery, AuditRecorder, Outcome};
use crate::ceiling::Policy;
use crate::error::{NotFound, StoreError};
use crate::principal::{AgentId, TokenId, UserId};

/// How many agents one audit query of [`Managed::audit_trail`] names at most: well under
/// SQLite's and PostgreSQL's limits on bound parameters (each is bound twice, for the agent
/// and for the parent).
pub(crate) const AGENTS_PER_AUDIT_QUERY: usize = 400;

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
        let role = self.role(&record).await?;
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

    /// Whether the actor may do `operation` on `agent` (read already), by the same rule as
    /// every call here, without recording anything: for a page that shows only what its
    /// reader may do (a refused attempt is recorded when it is made).
    pub async fn allows(&self, agent: &Agent, operation: Operation) -> Result<bool, StoreError> {
        if agent.owner == self.actor {
            return Ok(true);
        }
        let role = self.role(agent).await?;
        Ok(authorize(&self.actor, agent, role, operation).is_ok())
    }

    /// The actor's role on `agent` (read from the store, `agent` as [`Managed::agent`] or a
    /// listing returned it): their grant on it or, for a thread-scoped child, on its parent,
    /// whichever is higher; `None` without either (an owner needs none). With
    /// [`authorize`](crate::store::authorize) it tells what the actor may do, to show only
    /// that: each call still checks.
    pub async fn role(&self, agent: &Agent) -> Result<Option<AccessRole>, StoreError> {
        let mut role = self.store.role_of(&agent.id, &self.actor).await?;
        // A thread-scoped child is managed by whoever manages its parent.
        if let Some(parent) = &agent.parent {
            role = role.max(self.store.role_of(parent, &self.actor).await?);
        }
        Ok(role)
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

    /// The trail across agents: the events passing `filter` of every agent the actor may
    /// read the trail of (owner, operator or admin) with their children's, oldest first, the
    /// newest [`AuditFilter::last`] of them. `filter`'s agents, if any, narrow it to those of
    /// them the actor may read (none: nothing; asking is not an attempt, nothing is
    /// recorded); otherwise every agent they may see is asked for. The store is asked
    /// a few hundred agents a query at most, within every database's limit on bound
    /// parameters.
    pub async fn audit_trail(&self, filter: AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        let asked = if filter.agents.is_empty() {
            self.store.agents_visible_to(&self.actor).await?
        } else {
            filter.agents.clone()
        };
        let mut readable = Vec::new();
        for id in &asked {
            let Some(agent) = self.store.agent(id).await? else {
                continue;
            };
            if self.allows(&agent, Operation::ReadAudit).await? {
                readable.push(agent);
            }
        }
        // A child's events are found through its parent: asking for both would find them
        // twice when they fall in different queries.
        let ids: std::collections::HashSet<AgentId> =
            readable.iter().map(|agent| agent.id.clone()).collect();
        let agents: Vec<AgentId> = readable
            .iter()
            .filter(|agent| agent.parent.as_ref().is_none_or(|p| !ids.contains(p)))
            .map(|agent| agent.id.clone())
            .collect();
        let mut found: Vec<AuditEvent> = Vec::new();
        for chunk in agents.chunks(AGENTS_PER_AUDIT_QUERY) {
            let query = AuditFilter {
                agents: chunk.to_vec(),
                with_children: true,
                ..filter.clone()
            };
            let events =
                self.store.events(&query).await.map_err(
                    |crate::error::AuditError::Unavailable(e)| StoreError::Unavailable(e),
                )?;
            found.extend(events);
        }
        // One query's events are in order already; a stable sort merges them.
        found.sort_by_key(|event| event.at);
        filter.keep_last(&mut found);
        Ok(found)
    }
}
