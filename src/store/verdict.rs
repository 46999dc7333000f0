//! The checks every store applies, so that all backends refuse and admit alike.

use std::sync::Arc;

use time::OffsetDateTime;

use super::directory::UserRecord;
use super::model::{Agent, AgentStatus, TokenInfo};
use crate::ceiling::{CapabilityCeiling, LayerSource, Policy};
use crate::principal::{AgentRef, ExecutionPrincipal};
use crate::resolver::{InvalidReason, RefusedCredential, ResolveError};

/// Checks a stored token and its agent, in the order: revoked, expired, agent binding, agent
/// status, agent expiry, then the same of the parent identity for a child. The owner is checked
/// by [`active_owner`].
pub(crate) fn check_token(
    token: &TokenInfo,
    agent: &Agent,
    parent: Option<&Agent>,
    presented_slug: &str,
    now_nanos: i128,
) -> Result<(), InvalidReason> {
    let passed =
        |at: Option<OffsetDateTime>| at.is_some_and(|at| at.unix_timestamp_nanos() <= now_nanos);
    if token.revoked_at.is_some() {
        return Err(InvalidReason::Revoked);
    }
    if passed(token.expires_at) {
        return Err(InvalidReason::Expired);
    }
    if *agent.slug != *presented_slug || token.agent_id != agent.id {
        return Err(InvalidReason::AgentMismatch);
    }
    if agent.status == AgentStatus::Disabled {
        return Err(InvalidReason::AgentDisabled);
    }
    if passed(agent.expires_at) {
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
        (Some(_), Some(parent)) if passed(parent.expires_at) => Err(InvalidReason::AgentExpired),
        (Some(_), Some(_)) => Ok(()),
    }
}

/// A refusal of a token whose record was found: who it belongs to goes with the reason, so the
/// refusal can be audited.
pub(crate) fn refused(reason: InvalidReason, token: &TokenInfo, agent: &Agent) -> ResolveError {
    ResolveError::Refused(Box::new(RefusedCredential {
        reason,
        agent_id: agent.id.clone(),
        parent: agent.parent.clone(),
        token_id: token.id.clone(),
        user_id: agent.owner.clone(),
        task_id: token.task_id.clone(),
    }))
}

/// The owner, if they exist and are active.
pub(crate) fn active_owner(owner: Option<UserRecord>) -> Result<UserRecord, InvalidReason> {
    let owner = owner.ok_or(InvalidReason::OwnerMissing)?;
    if !owner.is_active() {
        return Err(InvalidReason::OwnerInactive);
    }
    Ok(owner)
}

/// The principal of an agent token: owner role ∩ parent policy (for a child) ∩ agent policy ∩
/// token capabilities.
pub(crate) fn agent_principal(
    owner: &UserRecord,
    agent: &Agent,
    parent: Option<&Agent>,
    token: &TokenInfo,
    token_policy: Option<&Arc<Policy>>,
) -> ExecutionPrincipal {
    let mut ceiling = CapabilityCeiling::new(owner.role().clone());
    if let Some(parent) = parent {
        ceiling = ceiling.narrowed_by(LayerSource::ParentAgentPolicy, parent.policy.clone());
    }
    ceiling = ceiling.narrowed_by(LayerSource::AgentPolicy, agent.policy.clone());
    if let Some(policy) = token_policy {
        ceiling = ceiling.narrowed_by(LayerSource::Token, policy.clone());
    }
    let agent_ref = AgentRef::new(agent.id.clone(), agent.slug.clone())
        .with_parent(agent.parent.clone())
        .with_scopes(agent.scopes.clone())
        .with_modes(agent.modes.clone());
    let principal =
        ExecutionPrincipal::agent(agent.owner.clone(), agent_ref, token.id.clone(), ceiling);
    match &token.task_id {
        Some(task) => principal.with_task_id(task.as_str()),
        None => principal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::{AgentId, TokenId, UserId};

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(seconds).unwrap()
    }

    fn nanos(seconds: i64) -> i128 {
        at(seconds).unix_timestamp_nanos()
    }

    fn agent() -> Agent {
        Agent {
            id: AgentId::from("agt_1"),
            slug: "bot".into(),
            owner: UserId::from("alice"),
            agent_type: crate::store::AgentType::Autonomous,
            status: AgentStatus::Active,
            policy: Arc::new(Policy::unrestricted()),
            created_at: at(0),
            expires_at: None,
            parent: None,
            scopes: None,
            modes: None,
            last_used_at: None,
            last_rotated_at: None,
        }
    }

    fn token() -> TokenInfo {
        TokenInfo {
            id: TokenId::from("tok_1"),
            agent_id: AgentId::from("agt_1"),
            display_prefix: "acme_bot_00000000…".into(),
            label: String::new(),
            capabilities: None,
            created_at: at(0),
            created_by: None,
            expires_at: Some(at(100)),
            last_used_at: None,
            revoked_at: None,
            max_operations: None,
            operations_remaining: None,
            expires_on_completion: false,
            task_id: None,
            intent: None,
        }
    }

    #[test]
    fn a_live_token_passes() {
        assert_eq!(
            check_token(&token(), &agent(), None, "bot", nanos(99)),
            Ok(())
        );
    }

    #[test]
    fn expiry_is_inclusive() {
        assert_eq!(
            check_token(&token(), &agent(), None, "bot", nanos(100)),
            Err(InvalidReason::Expired)
        );
    }

    #[test]
    fn revocation_is_reported_before_expiry() {
        let mut t = token();
        t.revoked_at = Some(at(50));
        assert_eq!(
            check_token(&t, &agent(), None, "bot", nanos(200)),
            Err(InvalidReason::Revoked)
        );
    }

    #[test]
    fn a_slug_that_does_not_name_the_agent_is_refused() {
        assert_eq!(
            check_token(&token(), &agent(), None, "other", nanos(1)),
            Err(InvalidReason::AgentMismatch)
        );
    }

    #[test]
    fn a_token_stored_for_another_agent_is_refused() {
        let mut t = token();
        t.agent_id = AgentId::from("agt_2");
        assert_eq!(
            check_token(&t, &agent(), None, "bot", nanos(1)),
            Err(InvalidReason::AgentMismatch)
        );
    }

    #[test]
    fn an_expired_agent_is_refused() {
        let mut a = agent();
        a.expires_at = Some(at(10));
        assert_eq!(
            check_token(&token(), &a, None, "bot", nanos(10)),
            Err(InvalidReason::AgentExpired)
        );
    }

    #[test]
    fn a_child_is_refused_with_its_parent() {
        let parent = agent();
        let mut child = agent();
        child.id = AgentId::from("agt_2");
        child.parent = Some(parent.id.clone());
        let mut t = token();
        t.agent_id = child.id.clone();
        assert_eq!(
            check_token(&t, &child, Some(&parent), "bot", nanos(1)),
            Ok(())
        );
        assert_eq!(
            check_token(&t, &child, None, "bot", nanos(1)),
            Err(InvalidReason::AgentDisabled)
        );
        let mut disabled = parent.clone();
        disabled.status = AgentStatus::Disabled;
        assert_eq!(
            check_token(&t, &child, Some(&disabled), "bot", nanos(1)),
            Err(InvalidReason::AgentDisabled)
        );
        let mut expired = parent;
        expired.expires_at = Some(at(1));
        assert_eq!(
            check_token(&t, &child, Some(&expired), "bot", nanos(1)),
            Err(InvalidReason::AgentExpired)
        );
    }

    #[test]
    fn owners_must_exist_and_be_active() {
        assert_eq!(active_owner(None).unwrap_err(), InvalidReason::OwnerMissing);
        let inactive = UserRecord::new("alice", Policy::unrestricted()).with_active(false);
        assert_eq!(
            active_owner(Some(inactive)).unwrap_err(),
            InvalidReason::OwnerInactive
        );
    }
}
