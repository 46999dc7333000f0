//! Attenuation: what a child token may be, given what its parent holds now. One function per
//! kind of token the module issues; every refusal names what exceeds.

use time::OffsetDateTime;

use super::request::Delegation;
use crate::ceiling::{Capability, CapabilityCeiling, LayerSource};
use crate::error::DelegationError;
use crate::principal::UserId;
use crate::store::resolve::Inspection;
use crate::store::{Agent, AgentStatus, NewToken, StoreConfig, UserRecord};

fn names(patterns: &[Capability]) -> String {
    patterns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The target must be an active agent of the owner `owner`.
fn check_target(
    owner: &UserId,
    target: &Agent,
    now: OffsetDateTime,
) -> Result<(), DelegationError> {
    if target.owner != *owner {
        return Err(DelegationError::TargetOfAnotherOwner(
            target.slug.to_string(),
        ));
    }
    if target.status == AgentStatus::Disabled || target.expires_at.is_some_and(|at| at <= now) {
        return Err(DelegationError::TargetInactive(target.slug.to_string()));
    }
    Ok(())
}

/// The child of `parent` that `request` asks for, as a token request for `target`: within the
/// parent's effective ceiling, expiry and uses, one level deeper, its task and resource
/// inherited. The
/// store's own checks (the target's policy, the owner's role, lifetimes) still follow.
pub(crate) fn child_token(
    config: &StoreConfig,
    parent: &Inspection,
    target: &Agent,
    request: &Delegation,
) -> Result<NewToken, DelegationError> {
    let now = config.clock.now();
    check_target(parent.principal.user_id(), target, now)?;
    // A task token's authority never flows back to the orchestrator that minted it: that
    // would let it act under the person's role without minting for another agent.
    if parent.token.orchestrator.as_ref() == Some(&target.id) {
        return Err(DelegationError::NotAnotherAgent(target.slug.to_string()));
    }
    let depth = parent.token.delegation_depth.saturating_add(1);
    if depth > config.max_delegation_depth {
        return Err(DelegationError::DepthExceeded {
            depth,
            max: config.max_delegation_depth,
        });
    }
    if let Some(requested) = &request.capabilities {
        let outside = parent.principal.ceiling().outside(requested);
        if !outside.is_empty() {
            return Err(DelegationError::CapabilitiesExceedParent(names(&outside)));
        }
    }
    if let (Some(ttl), Some(by)) = (request.expires_in, parent.expires_at) {
        let asked = time::Duration::try_from(ttl)
            .ok()
            .and_then(|ttl| now.checked_add(ttl));
        if asked.is_none_or(|at| at > by) {
            return Err(DelegationError::ExpiryExceedsParent { parent: by });
        }
    }
    if let (Some(requested), Some(remaining)) = (request.max_operations, parent.remaining_uses) {
        if requested > remaining {
            return Err(DelegationError::UsesExceedParent {
                requested,
                remaining,
            });
        }
    }
    let task_id = inherit(&parent.token.task_id, &request.task_id).map_err(|(p, r)| {
        DelegationError::OtherTask {
            parent: p,
            requested: r,
        }
    })?;
    let environment = inherit(&parent.token.environment, &request.environment)
        .map_err(|(p, _)| DelegationError::OtherEnvironment(p))?;
    // The parent's audience is its own resource or, for a delegated parent bound to none, its
    // nearest delegator's: a child keeps it, never another, and a parent bound to none has a
    // child bound to none (binding it would open what requires an audience to it).
    let audience = parent.principal.audience().map(str::to_owned);
    if let (None, Some(named)) = (&audience, &request.resource) {
        return Err(DelegationError::ResourceWithoutAudience(named.clone()));
    }
    let resource = inherit(&audience, &request.resource)
        .map_err(|(p, _)| DelegationError::OtherResource(p))?;
    let mut token = request.new_token();
    token.task_id = task_id;
    token.environment = environment;
    token.resource = resource;
    token.intent = request
        .intent
        .clone()
        .or_else(|| parent.token.intent.clone());
    token.created_by = parent.token.created_by.clone();
    token.lineage.orchestrator = parent.token.orchestrator.clone();
    token.lineage.delegated_by = parent.token.delegated_by.clone();
    token.lineage.parent = Some(parent.token.id.clone());
    token.lineage.depth = depth;
    token.lineage.expires_by = parent.expires_at;
    Ok(token)
}

/// The parent's value, or the child's when the parent has none; a different one is refused
/// as `(parent's, child's)`.
fn inherit(
    parent: &Option<String>,
    child: &Option<String>,
) -> Result<Option<String>, (String, String)> {
    match (parent, child) {
        (Some(p), Some(c)) if p != c => Err((p.clone(), c.clone())),
        (Some(p), _) => Ok(Some(p.clone())),
        (None, c) => Ok(c.clone()),
    }
}

/// The person a task token is minted on behalf of.
pub(crate) struct Person<'a> {
    pub(crate) id: &'a UserId,
    /// Their directory record, if they are in it.
    pub(crate) record: Option<&'a UserRecord>,
    /// Whether they own the target agent or hold a grant on it.
    pub(crate) related: bool,
}

/// A task token an orchestrator mints for `target` on behalf of `person`: the orchestrator must
/// be an active orchestrator, the target another active agent of its owner, the person active
/// and the target's owner or granted on it, and the capabilities within the orchestrator's
/// policy and the person's role.
pub(crate) fn task_token(
    config: &StoreConfig,
    orchestrator: &Agent,
    target: &Agent,
    person: Person<'_>,
    mut token: NewToken,
) -> Result<NewToken, DelegationError> {
    let now = config.clock.now();
    if !orchestrator.is_orchestrator
        || orchestrator.parent.is_some()
        || orchestrator.status == AgentStatus::Disabled
        || orchestrator.expires_at.is_some_and(|at| at <= now)
    {
        return Err(DelegationError::NotOrchestrator(
            orchestrator.slug.to_string(),
        ));
    }
    if target.id == orchestrator.id {
        return Err(DelegationError::NotAnotherAgent(target.slug.to_string()));
    }
    check_target(&orchestrator.owner, target, now)?;
    let person_id = person.id;
    let record = person
        .record
        .filter(|record| record.is_active())
        .ok_or_else(|| DelegationError::DelegatingUserInactive(person_id.to_string()))?;
    if !person.related {
        return Err(DelegationError::DelegatingUserUnrelated {
            user: person_id.to_string(),
            agent: target.slug.to_string(),
        });
    }
    if let Some(requested) = &token.capabilities {
        let bound = CapabilityCeiling::new(record.role().clone())
            .narrowed_by(LayerSource::OrchestratorPolicy, orchestrator.policy.clone());
        let outside = bound.outside(requested);
        if !outside.is_empty() {
            return Err(DelegationError::CapabilitiesExceedOrchestrator(names(
                &outside,
            )));
        }
    }
    token.lineage.orchestrator = Some(orchestrator.id.clone());
    token.lineage.delegated_by = Some(person_id.clone());
    if token.created_by.is_none() {
        token.created_by = Some(person_id.clone());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceiling::CapabilitySet;

    #[test]
    fn a_child_inherits_the_parents_value_and_may_not_name_another() {
        let parent = Some("t-1".to_owned());
        assert_eq!(inherit(&parent, &None), Ok(parent.clone()));
        assert_eq!(inherit(&parent, &parent), Ok(parent.clone()));
        assert_eq!(
            inherit(&parent, &Some("t-2".into())),
            Err(("t-1".into(), "t-2".into()))
        );
        assert_eq!(inherit(&None, &Some("t-2".into())), Ok(Some("t-2".into())));
    }

    #[test]
    fn names_lists_the_patterns_that_exceed() {
        let set = CapabilitySet::parse(["posts:*", "comments:read"]).unwrap();
        let listed: Vec<Capability> = set.iter().collect();
        assert_eq!(names(&listed), "posts:*, comments:read");
    }
}
