//! JSON views of the store's records, shared by the management API and the CLI's `--json`.
//! Metadata only: no hash, no secret (a raw token appears only in [`issued`]).

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::approval::Approval;
use crate::audit::AuditEvent;
use crate::store::{AccessGrant, Agent, IssuedToken, TokenInfo};

/// RFC 3339, or `null`.
pub fn time(at: Option<OffsetDateTime>) -> Value {
    at.and_then(|at| at.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// An agent (machine identity).
pub fn agent(agent: &Agent) -> Value {
    json!({
        "id": agent.id.as_str(),
        "slug": &*agent.slug,
        "owner": agent.owner.as_str(),
        "type": agent.agent_type.as_str(),
        "status": agent.status.as_str(),
        "parent": agent.parent.as_ref().map(|p| p.as_str()),
        "policy": {
            "allow": agent.policy.allowed().map(|set| set.to_strings()),
            "deny": agent.policy.denied().to_strings(),
        },
        "scopes": agent.scopes.as_deref(),
        "modes": agent.modes.as_deref(),
        "created_at": time(Some(agent.created_at)),
        "expires_at": time(agent.expires_at),
        "last_used_at": time(agent.last_used_at),
        "last_rotated_at": time(agent.last_rotated_at),
        "is_orchestrator": agent.is_orchestrator,
    })
}

/// A token's metadata.
pub fn token(info: &TokenInfo) -> Value {
    json!({
        "id": info.id.as_str(),
        "agent_id": info.agent_id.as_str(),
        "display_prefix": info.display_prefix,
        "label": info.label,
        "capabilities": info.capabilities.as_ref().map(|c| c.to_strings()),
        "created_at": time(Some(info.created_at)),
        "created_by": info.created_by.as_ref().map(|u| u.as_str()),
        "expires_at": time(info.expires_at),
        "last_used_at": time(info.last_used_at),
        "revoked_at": time(info.revoked_at),
        "task_completed_at": time(info.task_completed_at),
        "max_operations": info.max_operations,
        "operations_remaining": info.operations_remaining,
        "expires_on_completion": info.expires_on_completion,
        "task_id": info.task_id,
        "intent": info.intent,
        "environment": info.environment,
        "orchestrator": info.orchestrator.as_ref().map(|a| a.as_str()),
        "delegated_by": info.delegated_by.as_ref().map(|u| u.as_str()),
        "delegation_parent": info.delegation_parent.as_ref().map(|t| t.as_str()),
        "delegation_depth": info.delegation_depth,
    })
}

/// A freshly issued token: the secret, shown this once, and its metadata.
pub fn issued(issued: &IssuedToken) -> Value {
    json!({
        "token": issued.token.expose_secret(),
        "info": token(&issued.info),
    })
}

/// An access grant.
pub fn grant(grant: &AccessGrant) -> Value {
    json!({
        "agent_id": grant.agent_id.as_str(),
        "user": grant.user_id.as_str(),
        "role": grant.role.as_str(),
        "granted_at": time(Some(grant.granted_at)),
    })
}

/// An audit event.
pub fn event(event: &AuditEvent) -> Value {
    json!({
        "at": time(Some(event.at)),
        "action": event.action.as_str(),
        "outcome": event.outcome.as_str(),
        "reason": event.outcome.reason().map(|r| r.as_str()),
        "agent_id": event.agent.as_ref().map(|i| i.as_str()),
        "parent": event.parent.as_ref().map(|i| i.as_str()),
        "token_id": event.token.as_ref().map(|c| c.as_str()),
        "actor": event.actor.as_ref().map(|a| a.as_str()),
        "delegation_chain": event.delegation_chain.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "request": event.request.as_ref().map(|r| json!({
            "method": r.method, "path": r.path, "status": r.status,
        })),
        "task_id": event.task_id,
        "detail": event.detail,
        "occurrences": event.occurrences,
    })
}

/// An approval, its status as of `now` (an approval past its expiry is `expired`).
pub fn approval(approval: &Approval, now: OffsetDateTime) -> Value {
    json!({
        "id": approval.id.as_str(),
        "status": approval.status_at(now).as_str(),
        "agent_id": approval.agent_id.as_str(),
        "owner": approval.owner.as_str(),
        "token_id": approval.token_id.as_str(),
        "delegation_chain": approval.delegation_chain.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "task_id": approval.task_id,
        "orchestrator": approval.orchestrator.as_ref().map(|o| o.as_str()),
        "method": approval.method,
        "path": approval.path,
        "capability": approval.capability,
        "details": approval.details,
        "binding_message": approval.binding_message,
        "created_at": time(Some(approval.created_at)),
        "expires_at": time(Some(approval.expires_at)),
        "decided_by": approval.decided_by.as_ref().map(|u| u.as_str()),
        "decided_at": time(approval.decided_at),
        "uses": approval.uses,
        "uses_remaining": approval.uses_remaining,
    })
}

/// A provider token kept by the callback receiver (feature `callback`): who connected which
/// agent (named by `slug`) to which provider, when, for which scopes and until when. Never the
/// token: whether a refresh token is kept, and nothing of either.
#[cfg(feature = "callback")]
pub fn provider_token(token: &crate::oauth::callback::ProviderToken, slug: &str) -> Value {
    json!({
        "id": token.id,
        "provider": token.provider,
        "agent": slug,
        "agent_id": token.agent.as_str(),
        "connected_by": token.connected_by.as_str(),
        "connected_at": time(Some(token.created_at)),
        "scopes": token.scopes,
        "token_type": token.token_type,
        "expires_at": time(token.expires_at),
        "refreshable": token.refresh.is_some(),
    })
}
