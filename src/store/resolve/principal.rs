//! The principal of an admitted token: its ceiling up the chain, its scopes and modes, its task,
//! and the first expiry the verdict depends on.

use std::sync::Arc;

use super::check::links;
use crate::ceiling::{CapabilityCeiling, LayerSource};
use crate::principal::{AgentRef, DelegationLink, ExecutionPrincipal, Principal, TaskScope};
use crate::store::backend::StoredToken;
use crate::store::directory::UserRecord;
use crate::store::model::{Agent, AgentType};

/// Two optional name sets as one: `None` allows every name.
pub(super) fn intersect(
    a: Option<&Arc<std::collections::BTreeSet<String>>>,
    b: Option<&Arc<std::collections::BTreeSet<String>>>,
) -> Option<Arc<std::collections::BTreeSet<String>>> {
    match (a, b) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one.clone()),
        (Some(a), Some(b)) => Some(Arc::new(a.intersection(b).cloned().collect())),
    }
}

/// The type a principal's agent acts as: its own, but [`AgentType::Supervised`] when it is a
/// thread-scoped child of a supervised agent, so that
/// [`is_supervised`](crate::ExecutionPrincipal::is_supervised) holds for a child however it
/// was stored (a child created before children inherited supervision included).
pub(super) fn effective_type(agent: &Agent, parent: Option<&Agent>) -> AgentType {
    match parent {
        Some(parent) if parent.agent_type == AgentType::Supervised => AgentType::Supervised,
        _ => agent.agent_type,
    }
}

/// The principal of an agent token: owner role ∩ (for a task token) the delegating person's
/// role ∩ the orchestrator's policy ∩ for each link up the chain, root first, its agent's
/// parent policy, agent policy and token capabilities ∩ parent policy (for a child) ∩ agent
/// policy ∩ token capabilities.
pub(super) fn agent_principal<R: StoredToken>(
    owner: &UserRecord,
    delegating: Option<&UserRecord>,
    candidate: &Candidate<R>,
) -> Principal {
    let Candidate {
        record,
        agent,
        parent,
        orchestrator,
        ..
    } = candidate;
    let token = record.info();
    let mut ceiling = CapabilityCeiling::new(owner.role().clone());
    if let Some(person) = delegating {
        ceiling = ceiling.narrowed_by(LayerSource::DelegatingUserRole, person.role().clone());
    }
    if let Some(orchestrator) = orchestrator {
        ceiling = ceiling.narrowed_by(LayerSource::OrchestratorPolicy, orchestrator.policy.clone());
    }
    let mut chain = Vec::new();
    let (mut scopes, mut modes) = (agent.scopes.clone(), agent.modes.clone());
    for link in links(record) {
        let link_agent = link.agent();
        let link_parent = link_agent.parent.as_ref().and_then(|_| link.parent());
        if let Some(link_parent) = &link_parent {
            ceiling = ceiling.narrowed_by(
                LayerSource::DelegatorParentAgentPolicy,
                link_parent.policy.clone(),
            );
        }
        ceiling = ceiling.narrowed_by(LayerSource::DelegatorAgentPolicy, link_agent.policy.clone());
        if let Some(policy) = link.capabilities() {
            ceiling = ceiling.narrowed_by(LayerSource::DelegatorToken, policy);
        }
        scopes = intersect(scopes.as_ref(), link_agent.scopes.as_ref());
        modes = intersect(modes.as_ref(), link_agent.modes.as_ref());
        let link_ref = AgentRef::new(link_agent.id.clone(), link_agent.slug.clone())
            .with_type(effective_type(&link_agent, link_parent.as_deref()))
            .with_parent(link_agent.parent.clone())
            .with_scopes(link_agent.scopes.clone())
            .with_modes(link_agent.modes.clone());
        chain.push(DelegationLink::new(link_ref, link.info().id.clone()));
    }
    if let Some(parent) = parent {
        ceiling = ceiling.narrowed_by(LayerSource::ParentAgentPolicy, parent.policy.clone());
    }
    ceiling = ceiling.narrowed_by(LayerSource::AgentPolicy, agent.policy.clone());
    if let Some(policy) = record.capabilities() {
        ceiling = ceiling.narrowed_by(LayerSource::Token, policy);
    }
    let agent_ref = AgentRef::new(agent.id.clone(), agent.slug.clone())
        .with_type(effective_type(agent, parent.as_deref()))
        .with_parent(agent.parent.clone())
        .with_scopes(scopes)
        .with_modes(modes);
    let mut principal =
        ExecutionPrincipal::agent(agent.owner.clone(), agent_ref, token.id.clone(), ceiling)
            .with_delegation_chain(chain);
    let task = TaskScope {
        task_id: token.task_id.as_deref().map(Arc::from),
        intent: token.intent.as_deref().map(Arc::from),
        orchestrator: token.orchestrator.clone(),
        environment: token.environment.as_deref().map(Arc::from),
        expires_on_completion: token.expires_on_completion,
        max_operations: token.max_operations,
        delegated_by: token.delegated_by.clone(),
    };
    if !task.is_empty() {
        principal = principal.with_task(task);
    }
    if let Some(orchestrator) = orchestrator {
        // An orchestrator is never a thread-scoped child (check_chain_agents): its own type.
        let orchestrator_ref = AgentRef::new(orchestrator.id.clone(), orchestrator.slug.clone())
            .with_type(effective_type(orchestrator, None))
            .with_scopes(orchestrator.scopes.clone())
            .with_modes(orchestrator.modes.clone());
        principal = principal.with_orchestrator(orchestrator_ref);
    }
    if let Some(max) = use_limit(record) {
        principal = principal.with_max_operations(max);
    }
    if let Some(at) = verdict_expiry(candidate) {
        principal = principal.with_expires_at(at);
    }
    // A delegated token without an audience of its own keeps its nearest delegator's: a
    // delegation never widens where a token may be used.
    let audience = token.resource.as_deref().or_else(|| {
        links(record)
            .filter_map(|link| link.info().resource.as_deref())
            .last()
    });
    if let Some(audience) = audience {
        principal = principal.with_audience(audience);
    }
    if let Some(client) = &token.client_id {
        principal = principal.with_client_id(client.as_str());
    }
    principal.into()
}

/// The first expiry a verdict depends on: the token's, its agent's, the agent's parent's, the
/// orchestrator's, and each link's up the chain (its token, its agent, that agent's parent).
pub(super) fn verdict_expiry<R: StoredToken>(
    candidate: &Candidate<R>,
) -> Option<time::OffsetDateTime> {
    let Candidate {
        record,
        agent,
        parent,
        orchestrator,
        ..
    } = candidate;
    // Chained, not collected: a direct token's expiry costs no allocation.
    let chain = links(record).flat_map(|link| {
        let link_agent = link.agent();
        let link_parent = link_agent.parent.as_ref().and_then(|_| link.parent());
        [
            link.info().expires_at,
            link_agent.expires_at,
            link_parent.and_then(|p| p.expires_at),
        ]
    });
    [
        record.info().expires_at,
        agent.expires_at,
        parent.as_ref().and_then(|p| p.expires_at),
        orchestrator.as_ref().and_then(|o| o.expires_at),
    ]
    .into_iter()
    .chain(chain)
    .flatten()
    .min()
}

/// One link's use limit, exactly when it has uses to reserve.
pub(super) fn own_limit(record: &(impl StoredToken + ?Sized)) -> Option<u64> {
    let uses = record.uses()?;
    Some(
        record
            .info()
            .max_operations
            .unwrap_or(uses.remaining.saturating_add(uses.in_flight)),
    )
}

/// The use limit the principal shows, exactly when some link of the chain has uses to reserve
/// (the token's own, else the least up its chain): the layer settles what the principal says,
/// so the two must agree.
pub(super) fn use_limit(record: &impl StoredToken) -> Option<u64> {
    own_limit(record).or_else(|| links(record).filter_map(own_limit).min())
}

/// Whether a request under `record` reserves a use: of the token, or of a link up its chain.
pub(super) fn limited(record: &impl StoredToken) -> bool {
    record.uses().is_some() || links(record).any(|link| link.uses().is_some())
}

/// A token that passed steps 1–4 and waits for its owner.
pub(super) struct Candidate<R> {
    pub(super) record: R,
    pub(super) agent: Arc<Agent>,
    pub(super) parent: Option<Arc<Agent>>,
    pub(super) orchestrator: Option<Arc<Agent>>,
    /// The person a task token was minted for, to be looked up with the owner.
    pub(super) delegated_by: Option<crate::principal::UserId>,
}
