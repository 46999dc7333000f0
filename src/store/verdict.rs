//! The checks every store applies, so that all backends refuse and admit alike.

use std::sync::Arc;

use time::OffsetDateTime;

use super::directory::UserRecord;
use super::model::{Agent, AgentStatus, TokenInfo};
use crate::ceiling::{CapabilityCeiling, LayerSource, Policy};
use crate::principal::{AgentRef, ExecutionPrincipal};
use crate::resolver::InvalidReason;

/// Checks a stored token and its agent, in the order: revoked, expired, agent binding, agent
/// status, agent expiry. The owner is checked by [`agent_principal`].
pub(crate) fn check_token(
    token: &TokenInfo,
    agent: &Agent,
    presented_slug: &str,
    now: OffsetDateTime,
) -> Result<(), InvalidReason> {
    if token.revoked_at.is_some() {
        return Err(InvalidReason::Revoked);
    }
    if token.expires_at.is_some_and(|at| at <= now) {
        return Err(InvalidReason::Expired);
    }
    if *agent.slug != *presented_slug || token.agent_id != agent.id {
        return Err(InvalidReason::AgentMismatch);
    }
    if agent.status == AgentStatus::Disabled {
        return Err(InvalidReason::AgentDisabled);
    }
    if agent.expires_at.is_some_and(|at| at <= now) {
        return Err(InvalidReason::AgentExpired);
    }
    Ok(())
}

/// The owner, if they exist and are active.
pub(crate) fn active_owner(owner: Option<UserRecord>) -> Result<UserRecord, InvalidReason> {
    let owner = owner.ok_or(InvalidReason::OwnerMissing)?;
    if !owner.is_active() {
        return Err(InvalidReason::OwnerInactive);
    }
    Ok(owner)
}

/// The principal of an agent token: owner role ∩ agent policy ∩ token capabilities.
pub(crate) fn agent_principal(
    owner: &UserRecord,
    agent: &Agent,
    token: &TokenInfo,
    token_policy: Option<&Arc<Policy>>,
) -> ExecutionPrincipal {
    let mut ceiling = CapabilityCeiling::new(owner.role().clone())
        .narrowed_by(LayerSource::AgentPolicy, agent.policy.clone());
    if let Some(policy) = token_policy {
        ceiling = ceiling.narrowed_by(LayerSource::Token, policy.clone());
    }
    ExecutionPrincipal::agent(
        agent.owner.clone(),
        AgentRef::new(agent.id.clone(), agent.slug.clone()),
        token.id.clone(),
        ceiling,
    )
}
