//! Delegation with a record: the entry point a surface (an HTTP route, a token-exchange grant)
//! calls for a token holder.

use super::{Delegation, DelegationError};
use crate::audit::{AuditAction, AuditEvent, AuditRecorder, Outcome};
use crate::error::InvalidReason;
use crate::error::StoreError;
use crate::principal::{AgentId, ExecutionPrincipal, TokenId, UserId};
use crate::store::resolve::Inspection;
use crate::store::{Backend, IssuedToken, Store};

/// [`Store::delegate`] with its issuance audited.
///
/// Delegating is not a user's management call (the caller is the holder of the parent token,
/// not a signed-in person), so it is not [`Managed`](crate::store::Managed)'s; but every child
/// issued is recorded as `token_issued` of the child's agent and token, with the actor (the
/// parent's user), the task id, the delegation chain the child will carry (root first, the
/// parent's agent last: what [`ExecutionPrincipal::delegation_chain`] will show for it) and a
/// detail naming the parent token. A refusal is recorded with the outcome `denied` and the
/// [`DelegationError`] in the detail, on the actor's side: under the parent token's agent, the
/// target named only when it is the same owner's (a target of another owner is "unknown", so
/// nothing is written into another owner's trail, nor learnt of it). Neither record holds a
/// secret.
///
/// To name the parent's chain it peeks at the parent token once more (no use is spent).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # #[cfg(feature = "audit")] {
/// use std::sync::Arc;
/// use tower_agent_auth::audit::{AuditFilter, AuditQuery, AuditWriter, MemoryAuditSink, WriterOptions};
/// use tower_agent_auth::ceiling::Policy;
/// use tower_agent_auth::delegation::{Delegation, Delegator};
/// use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
/// use tower_agent_auth::token::TokenFormat;
///
/// let users = MemoryUserDirectory::new();
/// users.insert(UserRecord::new("alice", Policy::unrestricted()));
/// let store = MemoryStore::new(TokenFormat::new("acme")?, users);
/// let planner = store.create_agent(NewAgent::new("planner", "alice")).await?;
/// let writer = store.create_agent(NewAgent::new("writer", "alice")).await?;
/// let parent = store.create_token(&planner.id, NewToken::new("plan")).await?;
///
/// let sink = Arc::new(MemoryAuditSink::default());
/// let recorder = AuditWriter::spawn(sink.clone(), WriterOptions::default());
/// let child = Delegator::new(&store)
///     .with_audit(&recorder)
///     .delegate(parent.token.expose_secret(), Delegation::to(writer.id.clone(), "draft"))
///     .await?;
/// recorder.shutdown().await;
/// let events = sink.events(&AuditFilter::token(child.info.id.clone())).await?;
/// assert_eq!(events[0].action.as_str(), "token_issued");
/// assert_eq!(events[0].delegation_chain, vec![planner.id.clone()]);
/// # }
/// # Ok(()) }
/// ```
pub struct Delegator<'a, S> {
    store: &'a S,
    audit: Option<&'a dyn AuditRecorder>,
    presented: Option<TokenId>,
}

impl<S> std::fmt::Debug for Delegator<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegator")
            .field("presented", &self.presented)
            .finish_non_exhaustive()
    }
}

impl<'a, B: Backend> Delegator<'a, Store<B>> {
    /// Delegates through `store` (recording nothing until [`Delegator::with_audit`]).
    pub fn new(store: &'a Store<B>) -> Self {
        Self {
            store,
            audit: None,
            presented: None,
        }
    }

    /// Records every delegation issued, and every one refused, through `recorder`.
    pub fn with_audit(mut self, recorder: &'a dyn AuditRecorder) -> Self {
        self.audit = Some(recorder);
        self
    }

    async fn record(&self, event: AuditEvent) {
        if let Some(recorder) = self.audit {
            crate::audit::record(recorder, event).await;
        }
    }

    /// Refuses a parent token other than the one `principal` was resolved from (a route behind
    /// the [layer](crate::AgentAuthLayer) passes its principal and the raw bearer token: the
    /// token the layer admitted is then the one delegated from). A principal without a token
    /// (a session) refuses every delegation.
    pub fn presented_by(mut self, principal: &ExecutionPrincipal) -> Self {
        self.presented = Some(
            principal
                .token_id()
                .cloned()
                .unwrap_or_else(|| TokenId::from("")),
        );
        self
    }

    /// Issues the child `request` asks for, as [`Store::delegate`] does, and records
    /// it (or the refusal).
    pub async fn delegate(
        &self,
        parent_token: &str,
        request: Delegation,
    ) -> Result<IssuedToken, StoreError> {
        let target = request.target().clone();
        // One inspection serves both the checks and the audit event.
        let inspection = match super::inspect_parent(self.store, parent_token).await {
            Ok(inspection) => inspection,
            Err(error) => {
                self.refused(&target, None, &error).await;
                return Err(error);
            }
        };
        self.delegate_inspected(&inspection, request).await
    }

    /// [`Delegator::delegate`] from a parent token inspected already (by a caller that checked
    /// it first, such as token exchange): issued and recorded alike.
    pub(crate) async fn delegate_inspected(
        &self,
        inspection: &Inspection,
        request: Delegation,
    ) -> Result<IssuedToken, StoreError> {
        let target = request.target().clone();
        let parent = link_of(inspection);
        if self
            .presented
            .as_ref()
            .is_some_and(|expected| *expected != parent.1)
        {
            let refused =
                StoreError::Delegation(DelegationError::ParentRefused(InvalidReason::Malformed));
            self.refused(&target, Some(&parent), &refused).await;
            return Err(refused);
        }
        let label = request.label.clone();
        match super::issue_child(self.store, inspection, request).await {
            Ok(issued) => {
                let (chain, parent_id, actor) = parent;
                let agent_parent = self
                    .store
                    .agent(&issued.info.agent_id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|agent| agent.parent);
                let mut event = AuditEvent::new(
                    self.store.clock().now(),
                    AuditAction::TokenIssued,
                    Outcome::Success,
                )
                .agent(issued.info.agent_id.clone())
                .parent(agent_parent)
                .token(issued.info.id.clone())
                .task_id(issued.info.task_id.clone())
                .delegation_chain(chain)
                .detail(format!(
                    "delegated {label:?} from token {parent_id} (depth {})",
                    issued.info.delegation_depth
                ));
                if let Some(actor) = actor {
                    event = event.actor(actor);
                }
                self.record(event).await;
                Ok(issued)
            }
            Err(error) => {
                self.refused(&target, Some(&parent), &error).await;
                Err(error)
            }
        }
    }

    /// Records a refusal on the actor's side: under the parent token's agent (none when the
    /// parent does not resolve), never under the target's, whose trail is another owner's when
    /// the target is not the parent's owner's. The target is named only when it is an agent of
    /// the same owner; another owner's reads as unknown, as the HTTP answer does.
    async fn refused(
        &self,
        target: &AgentId,
        parent: Option<&(Vec<AgentId>, TokenId, Option<UserId>)>,
        error: &StoreError,
    ) {
        let mut event = AuditEvent::new(
            self.store.clock().now(),
            AuditAction::TokenIssued,
            Outcome::Denied,
        );
        let actor = parent.and_then(|(_, _, actor)| actor.as_ref());
        let target = match actor {
            Some(actor) => self
                .store
                .agent(target)
                .await
                .ok()
                .flatten()
                .filter(|agent| agent.owner == *actor),
            None => None,
        };
        let another_owner = matches!(
            error,
            StoreError::Delegation(DelegationError::TargetOfAnotherOwner(_))
        );
        let mut detail = if another_owner {
            "delegation refused: unknown target agent".to_owned()
        } else {
            // `StoreError::Delegation` already reads "delegation refused: …".
            error.to_string()
        };
        if let (false, Some(agent)) = (another_owner, &target) {
            detail.push_str(&format!(" (target {})", agent.slug));
        }
        if let Some((chain, id, actor)) = parent {
            if let Some(agent) = chain.last() {
                event = event.agent(agent.clone());
            }
            event = event.delegation_chain(chain.clone());
            detail.push_str(&format!(" (parent token {id})"));
            if let Some(actor) = actor {
                event = event.actor(actor.clone());
            }
        }
        self.record(event.detail(detail)).await;
    }
}

/// The chain a child of the inspected token carries (root first, the parent's agent last), the
/// parent token's id and its user.
fn link_of(inspection: &Inspection) -> (Vec<AgentId>, TokenId, Option<UserId>) {
    let principal = &inspection.principal;
    let mut chain: Vec<AgentId> = principal
        .delegation_chain()
        .iter()
        .map(|link| link.agent().id().clone())
        .collect();
    chain.push(inspection.token.agent_id.clone());
    (
        chain,
        inspection.token.id.clone(),
        Some(principal.user_id().clone()),
    )
}
