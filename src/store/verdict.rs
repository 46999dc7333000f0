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
        assert_eq!(check_token(&token(), &agent(), "bot", nanos(99)), Ok(()));
    }

    #[test]
    fn expiry_is_inclusive() {
        assert_eq!(
            check_token(&token(), &agent(), "bot", nanos(100)),
            Err(InvalidReason::Expired)
        );
    }

    #[test]
    fn revocation_is_reported_before_expiry() {
        let mut t = token();
        t.revoked_at = Some(at(50));
        assert_eq!(
            check_token(&t, &agent(), "bot", nanos(200)),
            Err(InvalidReason::Revoked)
        );
    }

    #[test]
    fn a_slug_that_does_not_name_the_agent_is_refused() {
        assert_eq!(
            check_token(&token(), &agent(), "other", nanos(1)),
            Err(InvalidReason::AgentMismatch)
        );
    }

    #[test]
    fn a_token_stored_for_another_agent_is_refused() {
        let mut t = token();
        t.agent_id = AgentId::from("agt_2");
        assert_eq!(
            check_token(&t, &agent(), "bot", nanos(1)),
            Err(InvalidReason::AgentMismatch)
        );
    }

    #[test]
    fn an_expired_agent_is_refused() {
        let mut a = agent();
        a.expires_at = Some(at(10));
        assert_eq!(
            check_token(&token(), &a, "bot", nanos(10)),
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
