//! Steps 2–5: each check of a stored token, its chain, its agents and its people, and the
//! refusals they answer with.

use crate::error::{InvalidReason, RefusedCredential, ResolveError};
use crate::principal::TokenId;
use crate::store::backend::StoredToken;
use crate::store::directory::UserRecord;
use crate::store::model::{Agent, AgentStatus, TokenInfo};

pub(super) fn passed(at: Option<time::OffsetDateTime>, now_nanos: i128) -> bool {
    at.is_some_and(|at| at.unix_timestamp_nanos() <= now_nanos)
}

/// Step 2: the token's own state.
pub(super) fn check_token(
    record: &(impl StoredToken + ?Sized),
    now_nanos: i128,
) -> Result<(), InvalidReason> {
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
pub(super) fn depth(record: &(impl StoredToken + ?Sized)) -> usize {
    usize::try_from(record.info().delegation_depth).unwrap_or(usize::MAX)
}

/// The links of a record's chain, root first, as far as they are present.
pub(super) fn links<R: StoredToken + ?Sized>(record: &R) -> impl Iterator<Item = &dyn StoredToken> {
    (0..depth(record)).map_while(|step| record.delegator(step))
}

/// The token a chain starts at: the root delegator, or the token itself when minted directly.
pub(super) fn root<R: StoredToken>(record: &R) -> &dyn StoredToken {
    record.delegator(0).unwrap_or(record)
}

/// Which token up the chain refused, for the audit: `None` for one that is gone, or when the
/// orchestrator or the delegating person refused.
pub(super) type ChainRefusal = Option<TokenId>;

/// Step 2 for every token up the chain: each must be present and neither revoked, expired nor spent.
pub(super) fn check_chain_tokens(
    record: &impl StoredToken,
    now_nanos: i128,
) -> Result<(), ChainRefusal> {
    for step in 0..depth(record) {
        let link = record.delegator(step).ok_or(None)?;
        check_token(link, now_nanos).map_err(|_| Some(link.info().id.clone()))?;
    }
    Ok(())
}

/// Steps 3–4 for every token up the chain, and the orchestrator of a task token: each link
/// names the next, each agent is active, unexpired and the leaf agent owner's.
pub(super) fn check_chain_agents(
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
pub(super) fn check_agent(
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
pub(super) fn check_owner(owner: Option<UserRecord>) -> Result<UserRecord, InvalidReason> {
    let owner = owner.ok_or(InvalidReason::OwnerMissing)?;
    if !owner.is_active() {
        return Err(InvalidReason::OwnerInactive);
    }
    Ok(owner)
}

/// A refusal of a token whose record was found: whose it is goes with the reason, for the audit.
pub(super) fn refused(
    reason: InvalidReason,
    record: &impl StoredToken,
    agent: &Agent,
) -> ResolveError {
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
pub(super) fn refused_by_chain(
    at: ChainRefusal,
    record: &impl StoredToken,
    agent: &Agent,
) -> ResolveError {
    match refused(InvalidReason::DelegatorRefused, record, agent) {
        ResolveError::Refused(mut refusal) => {
            refusal.delegator = at;
            ResolveError::Refused(refusal)
        }
        other => other,
    }
}

/// The person a task token was minted for: they must exist and be active.
pub(super) fn check_delegating(
    person: Option<Result<Option<UserRecord>, crate::error::BoxError>>,
) -> Result<Option<UserRecord>, Option<ResolveError>> {
    match person {
        None => Ok(None),
        Some(Err(error)) => Err(Some(ResolveError::Unavailable(error))),
        Some(Ok(Some(person))) if person.is_active() => Ok(Some(person)),
        Some(Ok(_)) => Err(None),
    }
}
