//! The resolution pipeline: the one place that decides, in one order, whether a stored token
//! admits a request, and builds its principal.
//!
//! A [`Backend`] implements only the I/O — find a token with its agent and the agent's parent
//! by hash, reserve and settle a use, record a use — and [`Store`] answers every request through
//! this pipeline. Memory, SQLite, PostgreSQL and a store of your own all go through here, so the
//! same state gives the same verdict and the same refusal reason on every backend.
//!
//! # The order of the checks
//!
//! A token failing several checks is refused for the first one:
//!
//! 1. no stored token has the hash → `unknown`;
//! 2. the token: revoked → `revoked`; its expiry passed, its task completed with its last use,
//!    or its task completed by [`complete_task`](super::Store::complete_task)
//!    (a recorded state, whatever the clock says) → `expired`; every use spent and none in flight → `exhausted`; for a delegated
//!    token, then each token up its chain, root first: gone, revoked, expired or spent →
//!    `delegator_refused`;
//! 3. its agent: the presented slug or the stored agent id does not match → `agent_mismatch`;
//!    disabled → `agent_disabled`; expired → `agent_expired`;
//! 4. the agent's parent, for a thread-scoped child: gone or disabled → `agent_disabled`; another
//!    agent than the child names → `agent_mismatch`; expired → `agent_expired`; then, for a
//!    delegated token, each link up the chain (it names the next link, its agent is the
//!    owner's, active and unexpired, and so is that agent's parent), and for a task token the
//!    orchestrator that minted it (still an active orchestrator of the owner, and not a
//!    thread-scoped child) →
//!    `delegator_refused`;
//! 5. the owner: not in the [`UserDirectory`](super::UserDirectory) → `owner_missing`;
//!    deactivated → `owner_inactive`; for a task token, the person it was minted for
//!    ([`TokenInfo::delegated_by`]) missing or deactivated → `delegator_refused`;
//! 6. a use-limited token — or one with a use-limited link up its chain — reserves one use of
//!    every limited link, atomically and all-or-nothing (of N concurrent requests for the last
//!    use, one gets it) → `exhausted` if one is left nowhere. While every remaining use is
//!    reserved by requests still in flight, the request waits for one of them to settle and
//!    then resolves again from step 1 (so a token revoked meanwhile is refused as revoked), for
//!    at most [`IN_FLIGHT_WAIT`] in all.
//!
//! Then the principal is built — owner role ∩ (task token) the delegating person's role ∩ the
//! orchestrator's policy ∩ for each link up the chain its agent's parent policy, agent policy
//! and token capabilities ∩ parent policy ∩ agent policy ∩ token capabilities — and the use is
//! recorded (last-used, coalesced by the backend). Its scopes and modes are the intersection
//! over the chain's agents.
//!
//! # When a use is spent
//!
//! A reserved use is settled by [`TokenResolver::settle_use`], which the layer calls once the
//! application has answered: a `401`, `403`, `404`, `405` or `429` — the application refused
//! the request before acting on it (a capability check, a route that does not exist, a rate
//! limit) — or an answer marked [`NotActed`](crate::layer::NotActed) releases the use; any other answer spends it (a `400`, `409` or `422` may come after a handler
//! acted, and so may a `5xx`), and so does a request dropped before its answer. The layer
//! settles the token it resolved; the backend settles every limited link of that token's
//! chain alike, so an ancestor's count holds every operation done under its authority. So a use-limited token counts the operations the
//! application let through, and the limit stays exact under concurrency and across nodes: a
//! use is never handed to two requests, and a request is refused as `exhausted` only when every
//! use is spent.
//!
//! # Reusing a verdict
//!
//! The pipeline decides afresh on every call. Reusing verdicts is the
//! [verdict cache](crate::cache)'s job, over any resolver (the in-memory store's included):
//! every principal carries [`ExecutionPrincipal::expires_at`], the first expiry it depends
//! on, so that a cache never answers past it.
//!
//! [`inspect`] runs steps 1–5 and reserves nothing: the peek a delegation takes at its parent.

use std::sync::Arc;

use super::Store;
use super::backend::{Backend, Reservation, StoredToken};
use super::directory::UserRecord;
use super::model::{Agent, AgentStatus, AgentType, TokenInfo};
use crate::ceiling::{CapabilityCeiling, LayerSource};
use crate::error::{InvalidReason, RefusedCredential, ResolveError};
use crate::principal::{
    AgentRef, DelegationLink, ExecutionPrincipal, Principal, TaskScope, TokenId,
};
use crate::resolver::TokenLookup;

/// How long a request waits, in all, for a use in flight to come back before it is refused as
/// exhausted.
pub const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

fn passed(at: Option<time::OffsetDateTime>, now_nanos: i128) -> bool {
    at.is_some_and(|at| at.unix_timestamp_nanos() <= now_nanos)
}

/// Step 2: the token's own state.
fn check_token(record: &(impl StoredToken + ?Sized), now_nanos: i128) -> Result<(), InvalidReason> {
    let info = record.info();
    if info.revoked_at.is_some() {
        return Err(InvalidReason::Revoked);
    }
    // A completed task is state, not an instant: no clock behind it admits the token again.
    if info.task_completed_at.is_some()
        || passed(info.expires_at, now_nanos)
        || record.completed_at().is_some_and(|at| at <= now_nanos)
    {
        return Err(InvalidReason::Expired);
    }
    if record
        .uses()
        .is_some_and(|uses| uses.remaining == 0 && uses.in_flight == 0)
    {
        return Err(InvalidReason::Exhausted);
    }
    Ok(())
}

/// How many links a record's chain has: its token's delegation depth.
fn depth(record: &(impl StoredToken + ?Sized)) -> usize {
    usize::try_from(record.info().delegation_depth).unwrap_or(usize::MAX)
}

/// The links of a record's chain, root first, as far as they are present.
fn links<R: StoredToken + ?Sized>(record: &R) -> impl Iterator<Item = &dyn StoredToken> {
    (0..depth(record)).map_while(|step| record.delegator(step))
}

/// The token a chain starts at: the root delegator, or the token itself when minted directly.
fn root<R: StoredToken>(record: &R) -> &dyn StoredToken {
    record.delegator(0).unwrap_or(record)
}

/// Which token up the chain refused, for the audit: `None` for one that is gone, or when the
/// orchestrator or the delegating person refused.
type ChainRefusal = Option<TokenId>;

/// Step 2 for every token up the chain: each must be present and neither revoked, expired nor spent.
fn check_chain_tokens(record: &impl StoredToken, now_nanos: i128) -> Result<(), ChainRefusal> {
    for step in 0..depth(record) {
        let link = record.delegator(step).ok_or(None)?;
        check_token(link, now_nanos).map_err(|_| Some(link.info().id.clone()))?;
    }
    Ok(())
}

/// Steps 3–4 for every token up the chain, and the orchestrator of a task token: each link
/// names the next, each agent is active, unexpired and the leaf agent owner's.
fn check_chain_agents(
    record: &impl StoredToken,
    owner: &crate::principal::UserId,
    now_nanos: i128,
) -> Result<(), ChainRefusal> {
    let depth = depth(record);
    for step in 0..depth {
        let link = record.delegator(step).ok_or(None)?;
        let info = link.info();
        let next = match step + 1 {
            next if next < depth => record.delegator(next).ok_or(None)?.info(),
            _ => record.info(),
        };
        let refused = || Some(info.id.clone());
        if next.delegation_parent.as_ref() != Some(&info.id)
            || usize::try_from(info.delegation_depth).ok() != Some(step)
        {
            return Err(refused());
        }
        let agent = link.agent();
        if agent.owner != *owner {
            return Err(refused());
        }
        let parent = agent.parent.as_ref().and_then(|_| link.parent());
        check_agent(
            info,
            &agent,
            parent.as_deref(),
            agent.slug.as_bytes(),
            now_nanos,
        )
        .map_err(|_| refused())?;
    }
    let root = root(record);
    if let Some(id) = &root.info().orchestrator {
        let orchestrator = record.orchestrator().ok_or(None)?;
        // An orchestrator is never a thread-scoped child (one stored before that was refused
        // has no parent's bound on its task tokens): refused, not admitted unbounded.
        if orchestrator.id != *id
            || !orchestrator.is_orchestrator
            || orchestrator.parent.is_some()
            || orchestrator.owner != *owner
            || orchestrator.status == AgentStatus::Disabled
            || passed(orchestrator.expires_at, now_nanos)
        {
            return Err(None);
        }
    }
    Ok(())
}

/// Steps 3–4: the agent and, for a child, its parent.
fn check_agent(
    token: &TokenInfo,
    agent: &Agent,
    parent: Option<&Agent>,
    presented_slug: &[u8],
    now_nanos: i128,
) -> Result<(), InvalidReason> {
    if *agent.slug.as_bytes() != *presented_slug || token.agent_id != agent.id {
        return Err(InvalidReason::AgentMismatch);
    }
    if agent.status == AgentStatus::Disabled {
        return Err(InvalidReason::AgentDisabled);
    }
    if passed(agent.expires_at, now_nanos) {
        return Err(InvalidReason::AgentExpired);
    }
    match (&agent.parent, parent) {
        (None, _) => Ok(()),
        // A child whose parent is gone is refused, never admitted unbounded.
        (Some(_), None) => Err(InvalidReason::AgentDisabled),
        (Some(id), Some(parent)) if parent.id != *id => Err(InvalidReason::AgentMismatch),
        (Some(_), Some(parent)) if parent.status == AgentStatus::Disabled => {
            Err(InvalidReason::AgentDisabled)
        }
        (Some(_), Some(parent)) if passed(parent.expires_at, now_nanos) => {
            Err(InvalidReason::AgentExpired)
        }
        (Some(_), Some(_)) => Ok(()),
    }
}

/// Step 5: the owner, if they exist and are active.
fn check_owner(owner: Option<UserRecord>) -> Result<UserRecord, InvalidReason> {
    let owner = owner.ok_or(InvalidReason::OwnerMissing)?;
    if !owner.is_active() {
        return Err(InvalidReason::OwnerInactive);
    }
    Ok(owner)
}

/// A refusal of a token whose record was found: whose it is goes with the reason, for the audit.
fn refused(reason: InvalidReason, record: &impl StoredToken, agent: &Agent) -> ResolveError {
    let token = record.info();
    let chain = links(record)
        .map(|link| link.info().agent_id.clone())
        .collect();
    RefusedCredential::new(
        reason,
        agent.owner.clone(),
        agent.id.clone(),
        token.id.clone(),
    )
    .with_parent(agent.parent.clone())
    .with_task_id(token.task_id.clone())
    .with_delegation_chain(chain)
    .into()
}

/// A refusal for a link up the chain.
fn refused_by_chain(at: ChainRefusal, record: &impl StoredToken, agent: &Agent) -> ResolveError {
    match refused(InvalidReason::DelegatorRefused, record, agent) {
        ResolveError::Refused(mut refusal) => {
            refusal.delegator = at;
            ResolveError::Refused(refusal)
        }
        other => other,
    }
}

/// Two optional name sets as one: `None` allows every name.
fn intersect(
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
fn effective_type(agent: &Agent, parent: Option<&Agent>) -> AgentType {
    match parent {
        Some(parent) if parent.agent_type == AgentType::Supervised => AgentType::Supervised,
        _ => agent.agent_type,
    }
}

/// The principal of an agent token: owner role ∩ (for a task token) the delegating person's
/// role ∩ the orchestrator's policy ∩ for each link up the chain, root first, its agent's
/// parent policy, agent policy and token capabilities ∩ parent policy (for a child) ∩ agent
/// policy ∩ token capabilities.
fn agent_principal<R: StoredToken>(
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
    principal.into()
}

/// The first expiry a verdict depends on: the token's, its agent's, the agent's parent's, the
/// orchestrator's, and each link's up the chain (its token, its agent, that agent's parent).
fn verdict_expiry<R: StoredToken>(candidate: &Candidate<R>) -> Option<time::OffsetDateTime> {
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
fn own_limit(record: &(impl StoredToken + ?Sized)) -> Option<u64> {
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
fn use_limit(record: &impl StoredToken) -> Option<u64> {
    own_limit(record).or_else(|| links(record).filter_map(own_limit).min())
}

/// Whether a request under `record` reserves a use: of the token, or of a link up its chain.
fn limited(record: &impl StoredToken) -> bool {
    record.uses().is_some() || links(record).any(|link| link.uses().is_some())
}

/// A token that passed steps 1–4 and waits for its owner.
struct Candidate<R> {
    record: R,
    agent: Arc<Agent>,
    parent: Option<Arc<Agent>>,
    orchestrator: Option<Arc<Agent>>,
    /// The person a task token was minted for, to be looked up with the owner.
    delegated_by: Option<crate::principal::UserId>,
}

/// Steps 1–4: a token whose owner is to be looked up, or the refusal.
fn begin<B: Backend>(
    found: Result<Option<B::Record>, ResolveError>,
    token: &TokenLookup<'_>,
    now_nanos: i128,
) -> Result<Candidate<B::Record>, ResolveError> {
    let record = match found {
        Ok(Some(record)) => record,
        Ok(None) => return Err(InvalidReason::Unknown.into()),
        Err(error) => return Err(error),
    };
    if let Err(reason) = check_token(&record, now_nanos) {
        return Err(refused(reason, &record, &record.agent()));
    }
    if let Err(at) = check_chain_tokens(&record, now_nanos) {
        return Err(refused_by_chain(at, &record, &record.agent()));
    }
    let agent = record.agent();
    let parent = agent.parent.as_ref().and_then(|_| record.parent());
    if let Err(reason) = check_agent(
        record.info(),
        &agent,
        parent.as_deref(),
        token.slug_bytes(),
        now_nanos,
    ) {
        return Err(refused(reason, &record, &agent));
    }
    if let Err(at) = check_chain_agents(&record, &agent.owner, now_nanos) {
        return Err(refused_by_chain(at, &record, &agent));
    }
    let root = root(&record);
    let orchestrator = root
        .info()
        .orchestrator
        .as_ref()
        .and_then(|_| record.orchestrator());
    let delegated_by = root.info().delegated_by.clone();
    Ok(Candidate {
        record,
        agent,
        parent,
        orchestrator,
        delegated_by,
    })
}

/// The person a task token was minted for: they must exist and be active.
fn check_delegating(
    person: Option<Result<Option<UserRecord>, crate::error::BoxError>>,
) -> Result<Option<UserRecord>, Option<ResolveError>> {
    match person {
        None => Ok(None),
        Some(Err(error)) => Err(Some(ResolveError::Unavailable(error))),
        Some(Ok(Some(person))) if person.is_active() => Ok(Some(person)),
        Some(Ok(_)) => Err(None),
    }
}

/// Step 5 and the principal.
fn admit_owner<R: StoredToken>(
    candidate: &Candidate<R>,
    owner: Result<Option<UserRecord>, crate::error::BoxError>,
    delegating: Option<Result<Option<UserRecord>, crate::error::BoxError>>,
) -> Result<Principal, ResolveError> {
    let Candidate { record, agent, .. } = candidate;
    let owner = owner.map_err(ResolveError::Unavailable)?;
    let owner = check_owner(owner).map_err(|reason| refused(reason, record, agent))?;
    let delegating = check_delegating(delegating)
        .map_err(|error| error.unwrap_or_else(|| refused_by_chain(None, record, agent)))?;
    Ok(agent_principal(&owner, delegating.as_ref(), candidate))
}

/// Step 6's answer turned into the verdict.
fn reserved<B: Backend>(
    store: &Store<B>,
    record: &B::Record,
    reservation: Result<Reservation, ResolveError>,
    principal: Principal,
    now_nanos: i128,
) -> Result<Principal, ResolveError> {
    match reservation? {
        Reservation::Reserved => {
            store.backend().record_use(record, now_nanos);
            Ok(principal)
        }
        // The caller waits and resolves again; past its wait, the use is not coming back.
        Reservation::Exhausted | Reservation::InFlight => {
            Err(refused(InvalidReason::Exhausted, record, &record.agent()))
        }
    }
}

/// Steps 1–5 without waiting, when the record and the people are at hand; `None` when they
/// must be awaited.
fn admit_now<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
    now_nanos: i128,
) -> Option<Result<(B::Record, Principal), ResolveError>> {
    let found = store.backend().find_now(token.hash())?;
    let candidate = match begin::<B>(found, token, now_nanos) {
        Ok(candidate) => candidate,
        Err(error) => return Some(Err(error)),
    };
    let directory = &store.config().directory;
    let owner = directory.user_now(&candidate.agent.owner)?;
    let delegating = match &candidate.delegated_by {
        Some(person) => Some(directory.user_now(person)?),
        None => None,
    };
    Some(admit_owner(&candidate, owner, delegating).map(|principal| (candidate.record, principal)))
}

/// Steps 1–5, waiting for the backend and the directory as needed.
async fn admit<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
    now_nanos: i128,
) -> Result<(B::Record, Principal), ResolveError> {
    let found = match store.backend().find_now(token.hash()) {
        Some(found) => found,
        None => store.backend().find(token.hash()).await,
    };
    let candidate = begin::<B>(found, token, now_nanos)?;
    let directory = &store.config().directory;
    let owner = match directory.user_now(&candidate.agent.owner) {
        Some(owner) => owner,
        None => directory.user(&candidate.agent.owner).await,
    };
    let delegating = match &candidate.delegated_by {
        Some(person) => Some(match directory.user_now(person) {
            Some(found) => found,
            None => directory.user(person).await,
        }),
        None => None,
    };
    let principal = admit_owner(&candidate, owner, delegating)?;
    Ok((candidate.record, principal))
}

/// Resolves `token` through `store`'s backend without waiting, when everything it needs is at hand
/// (the record, the owner, the use); `None` when [`resolve`] must be awaited.
pub(crate) fn resolve_now<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
) -> Option<Result<Principal, ResolveError>> {
    let now_nanos = store.config().clock.unix_nanos();
    let (record, principal) = match admit_now(store, token, now_nanos)? {
        Ok(admitted) => admitted,
        Err(error) => return Some(Err(error)),
    };
    if !limited(&record) {
        store.backend().record_use(&record, now_nanos);
        return Some(Ok(principal));
    }
    let reservation = store.backend().reserve_now(&record)?;
    if matches!(reservation, Ok(Reservation::InFlight)) {
        return None;
    }
    Some(reserved(store, &record, reservation, principal, now_nanos))
}

/// Resolves `token` through `store`'s backend: the checks in the order of this module's docs. A request
/// that finds every use left in flight waits for one to come back and then resolves again from
/// the start — a token revoked or an agent disabled meanwhile is refused — for at most
/// [`IN_FLIGHT_WAIT`] in all.
pub(crate) async fn resolve<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
) -> Result<Principal, ResolveError> {
    let mut give_up = None;
    let mut attempt = 0;
    loop {
        let now_nanos = store.config().clock.unix_nanos();
        let (record, principal) = admit(store, token, now_nanos).await?;
        if !limited(&record) {
            store.backend().record_use(&record, now_nanos);
            return Ok(principal);
        }
        let reservation = store.backend().reserve(&record).await;
        if matches!(reservation, Ok(Reservation::InFlight)) {
            let deadline =
                *give_up.get_or_insert_with(|| std::time::Instant::now() + IN_FLIGHT_WAIT);
            if std::time::Instant::now() < deadline {
                store.backend().settled(&record, attempt).await;
                attempt = attempt.saturating_add(1);
                continue;
            }
        }
        return reserved(store, &record, reservation, principal, now_nanos);
    }
}

/// What a token stands for now, read by [`inspect`] without spending anything: what a
/// delegation from it may lend at most.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Inspection {
    /// The principal a request with the token would get now.
    pub principal: Principal,
    /// The token's record.
    pub token: TokenInfo,
    /// The earliest expiry up the chain: the token's, its agent's and its agent's parent's,
    /// and those of every link it was delegated through (and of the orchestrator).
    pub expires_at: Option<time::OffsetDateTime>,
    /// The fewest uses left up the chain (the token's own, and each limited link's); `None`
    /// when no link is limited.
    pub remaining_uses: Option<u64>,
}

/// Resolves `token` through `store`'s backend like [`resolve`] — every check, the same refusals — but
/// reserves and records no use: the peek a delegation takes at its parent token.
pub(crate) async fn inspect<B: Backend>(
    store: &Store<B>,
    token: &TokenLookup<'_>,
) -> Result<Inspection, ResolveError> {
    let now_nanos = store.config().clock.unix_nanos();
    let (record, principal) = admit(store, token, now_nanos).await?;
    let mut expiries = vec![record.info().expires_at];
    let mut agents = vec![record.agent()];
    let mut remaining = record.uses().map(|uses| uses.remaining);
    for link in links(&record) {
        expiries.push(link.info().expires_at);
        expiries.push(
            link.completed_at()
                .and_then(|at| time::OffsetDateTime::from_unix_timestamp_nanos(at).ok()),
        );
        agents.push(link.agent());
        if let Some(uses) = link.uses() {
            remaining = Some(remaining.map_or(uses.remaining, |r| r.min(uses.remaining)));
        }
        if link.agent().parent.is_some() {
            expiries.push(link.parent().and_then(|p| p.expires_at));
        }
    }
    if let Some(parent) = record.agent().parent.as_ref().and_then(|_| record.parent()) {
        expiries.push(parent.expires_at);
    }
    let root = root(&record);
    if root.info().orchestrator.is_some() {
        expiries.push(record.orchestrator().and_then(|o| o.expires_at));
    }
    expiries.extend(agents.iter().map(|agent| agent.expires_at));
    Ok(Inspection {
        principal,
        token: record.info().clone(),
        expires_at: expiries.into_iter().flatten().min(),
        remaining_uses: remaining,
    })
}

#[cfg(test)]
mod tests {
    //! Steps 2–5 on hand-built records: the edges no built-in store reaches (a record whose
    //! agent or parent is not the one it names), and the boundaries of each check.

    use std::sync::Arc;

    use super::*;
    use crate::TokenResolver;
    use crate::ceiling::Policy;
    use crate::error::StoreError;
    use crate::principal::{AgentId, TokenId, UserId};
    use crate::store::StoreConfig;
    use crate::store::backend::{AgentChange, AgentFilter, OneTask, Uses};
    use crate::token::{TokenFormat, TokenHash};

    const NOW: i128 = 1_767_225_600_000_000_000;

    fn at(nanos: i128) -> Option<time::OffsetDateTime> {
        Some(time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap())
    }

    fn agent(id: &str, parent: Option<&str>) -> Agent {
        Agent {
            id: AgentId::from(id),
            slug: id.into(),
            owner: UserId::from("alice"),
            agent_type: AgentType::Autonomous,
            status: AgentStatus::Active,
            policy: Arc::new(Policy::unrestricted()),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            expires_at: None,
            parent: parent.map(AgentId::from),
            scopes: None,
            modes: None,
            last_used_at: None,
            last_rotated_at: None,
            is_orchestrator: false,
        }
    }

    fn token(agent: &str) -> TokenInfo {
        TokenInfo {
            id: TokenId::from("tok_1"),
            agent_id: AgentId::from(agent),
            display_prefix: String::new(),
            label: String::new(),
            capabilities: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            created_by: None,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            task_completed_at: None,
            max_operations: None,
            operations_remaining: None,
            expires_on_completion: false,
            task_id: None,
            intent: None,
            orchestrator: None,
            environment: None,
            delegated_by: None,
            delegation_parent: None,
            delegation_depth: 0,
        }
    }

    fn check(
        token: &TokenInfo,
        agent: &Agent,
        parent: Option<&Agent>,
    ) -> Result<(), InvalidReason> {
        check_agent(token, agent, parent, agent.slug.as_bytes(), NOW)
    }

    #[test]
    fn a_token_stored_for_another_agent_is_a_mismatch() {
        let child = agent("child", None);
        assert_eq!(
            check(&token("other"), &child, None),
            Err(InvalidReason::AgentMismatch)
        );
        assert_eq!(check(&token("child"), &child, None), Ok(()));
    }

    #[test]
    fn a_presented_slug_of_another_agent_is_a_mismatch() {
        let writer = agent("writer", None);
        assert_eq!(
            check_agent(&token("writer"), &writer, None, b"reader", NOW),
            Err(InvalidReason::AgentMismatch)
        );
    }

    #[test]
    fn a_child_with_its_own_active_parent_is_admitted() {
        let child = agent("child", Some("parent"));
        let parent = agent("parent", None);
        assert_eq!(check(&token("child"), &child, Some(&parent)), Ok(()));
    }

    #[test]
    fn a_parent_other_than_the_one_the_child_names_is_a_mismatch() {
        let child = agent("child", Some("parent"));
        let stranger = agent("stranger", None);
        assert_eq!(
            check(&token("child"), &child, Some(&stranger)),
            Err(InvalidReason::AgentMismatch)
        );
    }

    #[test]
    fn a_child_whose_parent_is_gone_is_refused_as_disabled() {
        let child = agent("child", Some("parent"));
        assert_eq!(
            check(&token("child"), &child, None),
            Err(InvalidReason::AgentDisabled)
        );
    }

    #[test]
    fn a_disabled_parent_refuses_its_child() {
        let child = agent("child", Some("parent"));
        let mut parent = agent("parent", None);
        parent.status = AgentStatus::Disabled;
        assert_eq!(
            check(&token("child"), &child, Some(&parent)),
            Err(InvalidReason::AgentDisabled)
        );
    }

    #[test]
    fn a_parent_expires_its_child_at_its_expiry_instant() {
        let child = agent("child", Some("parent"));
        let mut parent = agent("parent", None);
        parent.expires_at = at(NOW + 1);
        assert_eq!(check(&token("child"), &child, Some(&parent)), Ok(()));
        parent.expires_at = at(NOW);
        assert_eq!(
            check(&token("child"), &child, Some(&parent)),
            Err(InvalidReason::AgentExpired)
        );
    }

    #[test]
    fn an_agent_expires_at_its_expiry_instant() {
        let mut writer = agent("writer", None);
        writer.expires_at = at(NOW + 1);
        assert_eq!(check(&token("writer"), &writer, None), Ok(()));
        writer.expires_at = at(NOW);
        assert_eq!(
            check(&token("writer"), &writer, None),
            Err(InvalidReason::AgentExpired)
        );
    }

    /// A backend whose records are whatever the test set last.
    struct Forgetful {
        agent: std::sync::Mutex<Arc<Agent>>,
        info: TokenInfo,
        /// Each settled use, as `spent`.
        settled: std::sync::Mutex<Vec<bool>>,
        orchestrator: Option<Arc<Agent>>,
    }

    struct Found {
        info: TokenInfo,
        agent: Arc<Agent>,
        orchestrator: Option<Arc<Agent>>,
    }

    impl StoredToken for Found {
        fn info(&self) -> &TokenInfo {
            &self.info
        }
        fn agent(&self) -> Arc<Agent> {
            self.agent.clone()
        }
        fn parent(&self) -> Option<Arc<Agent>> {
            None
        }
        fn uses(&self) -> Option<Uses> {
            None
        }
        fn orchestrator(&self) -> Option<Arc<Agent>> {
            self.orchestrator.clone()
        }
    }

    /// Only the request path: every management call is refused.
    #[async_trait::async_trait]
    impl Backend for Forgetful {
        type Record = Found;

        async fn insert_agent(&self, _: &Agent) -> Result<(), StoreError> {
            Err(StoreError::Unsupported("agents"))
        }
        async fn agent(&self, _: &AgentId) -> Result<Option<Agent>, StoreError> {
            Ok(None)
        }
        async fn agent_by_slug(&self, _: &str) -> Result<Option<Agent>, StoreError> {
            Ok(None)
        }
        async fn agents(&self, _: &AgentFilter) -> Result<Vec<Agent>, StoreError> {
            Ok(Vec::new())
        }
        async fn update_agent(
            &self,
            _: &AgentId,
            _: &AgentChange,
        ) -> Result<Option<Agent>, StoreError> {
            Ok(None)
        }
        async fn delete_agent(&self, _: &AgentId) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn insert_token(
            &self,
            _: &TokenHash,
            _: &TokenInfo,
            _: Option<&OneTask>,
        ) -> Result<(), StoreError> {
            Err(StoreError::Unsupported("tokens"))
        }
        async fn tokens(&self, _: &AgentId) -> Result<Vec<TokenInfo>, StoreError> {
            Ok(Vec::new())
        }
        async fn revoke_token(
            &self,
            _: &AgentId,
            _: &TokenId,
            _: time::OffsetDateTime,
        ) -> Result<Option<TokenInfo>, StoreError> {
            Ok(None)
        }

        fn find_now(&self, _: &TokenHash) -> Option<Result<Option<Found>, ResolveError>> {
            Some(Ok(Some(Found {
                info: self.info.clone(),
                agent: self.agent.lock().unwrap().clone(),
                orchestrator: self.orchestrator.clone(),
            })))
        }

        async fn find(&self, hash: &TokenHash) -> Result<Option<Found>, ResolveError> {
            self.find_now(hash).unwrap()
        }

        async fn reserve(&self, _: &Found) -> Result<Reservation, ResolveError> {
            Ok(Reservation::Reserved)
        }

        fn settle(
            &self,
            _: &TokenId,
            spent: bool,
            _: time::OffsetDateTime,
        ) -> Option<crate::resolver::SettleFuture> {
            self.settled.lock().unwrap().push(spent);
            None
        }
    }

    fn forgetful() -> Forgetful {
        Forgetful {
            agent: std::sync::Mutex::new(Arc::new(agent("writer", None))),
            info: token("writer"),
            settled: std::sync::Mutex::default(),
            orchestrator: None,
        }
    }

    /// `backend` as a store with alice as the owner.
    fn store(backend: Forgetful) -> Store<Forgetful> {
        let users = crate::store::MemoryUserDirectory::new();
        users.insert(UserRecord::new("alice", Policy::unrestricted()));
        let format = TokenFormat::new("acme").unwrap();
        Store::from_backend(backend, StoreConfig::new(format, users))
    }

    fn lookup() -> TokenLookup<'static> {
        TokenLookup::new(TokenHash::of("acme_writer_secret"), "writer", false)
    }

    #[test]
    fn a_store_answers_at_once_when_record_and_owner_are_at_hand() {
        let resolver = store(forgetful());
        let principal = resolver
            .resolve_now(&lookup())
            .expect("answered without waiting")
            .expect("admitted");
        assert_eq!(principal.agent_id(), Some(&AgentId::from("writer")));
    }

    #[test]
    fn a_store_settles_uses_through_its_backend() {
        let resolver = store(forgetful());
        assert!(resolver.settle_use(&TokenId::from("tok_1"), true).is_none());
        assert!(
            resolver
                .settle_use(&TokenId::from("tok_1"), false)
                .is_none()
        );
        assert_eq!(*resolver.backend().settled.lock().unwrap(), [true, false]);
    }

    /// A backend that knows nothing of delegation (the trait's defaults) never admits a
    /// delegated or orchestrated token: the chain it cannot show is a refusal, not a bypass.
    #[tokio::test]
    async fn a_backend_without_chains_refuses_delegated_and_task_tokens() {
        let mut delegated = forgetful();
        delegated.info.delegation_parent = Some(TokenId::from("tok_0"));
        delegated.info.delegation_depth = 1;
        let mut orchestrated = forgetful();
        orchestrated.info.orchestrator = Some(AgentId::from("conductor"));
        for backend in [delegated, orchestrated] {
            let refused = resolve(&store(backend), &lookup()).await;
            assert_eq!(
                refused.err().and_then(|error| error.reason()),
                Some(InvalidReason::DelegatorRefused)
            );
        }
    }

    /// An orchestrator stored as a thread-scoped child (before that was refused) has no
    /// parent's bound on its task tokens: they are refused, not admitted unbounded.
    #[tokio::test]
    async fn a_task_token_of_an_orchestrator_with_a_parent_is_refused() {
        let task = |parent: Option<&str>| {
            let mut backend = forgetful();
            backend.info.orchestrator = Some(AgentId::from("conductor"));
            let mut conductor = agent("conductor", parent);
            conductor.is_orchestrator = true;
            backend.orchestrator = Some(Arc::new(conductor));
            backend
        };
        assert!(resolve(&store(task(None)), &lookup()).await.is_ok());
        let refused = resolve(&store(task(Some("boss"))), &lookup()).await;
        assert_eq!(
            refused.err().and_then(|error| error.reason()),
            Some(InvalidReason::DelegatorRefused)
        );
    }

    #[tokio::test]
    async fn the_pipeline_never_reuses_a_verdict() {
        let store = store(forgetful());
        let lookup = lookup();
        resolve(&store, &lookup).await.expect("admitted");
        let mut disabled = agent("writer", None);
        disabled.status = AgentStatus::Disabled;
        *store.backend().agent.lock().unwrap() = Arc::new(disabled);
        let refused = resolve(&store, &lookup).await;
        assert_eq!(
            refused.err().and_then(|error| error.reason()),
            Some(InvalidReason::AgentDisabled),
            "the pipeline decides afresh on every call"
        );
    }
}
