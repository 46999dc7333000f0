//! Rows to records and back: agents, tokens and audit events read by column name, and the JSON
//! the stores keep capabilities, policies, scopes and modes in.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::audit_row::AuditRow;
use super::dialect::Driver;
use crate::ceiling::{CapabilitySet, Policy};
use crate::error::StoreError;
use crate::principal::{AgentId, TokenId};
use crate::store::validate::from_micros;
use crate::store::{Agent, AgentStatus, AgentType, TokenInfo};

fn corrupt(what: &str) -> String {
    format!("stored {what} is not valid")
}

/// The columns of one record in a row, named `{prefix}{column}`: no prefix for a row of one
/// table, the role's (`token_`, `agent_`, `parent_`) in the joined resolve row.
struct Columns<'r, B: Driver> {
    row: &'r B::Row,
    prefix: &'static str,
}

impl<'r, B: Driver> Columns<'r, B> {
    fn new(row: &'r B::Row, prefix: &'static str) -> Self {
        Self { row, prefix }
    }

    fn name(&self, column: &'static str) -> Cow<'static, str> {
        if self.prefix.is_empty() {
            Cow::Borrowed(column)
        } else {
            Cow::Owned(format!("{}{column}", self.prefix))
        }
    }

    fn text(&self, column: &'static str) -> Result<String, String> {
        B::text(self.row, &self.name(column)).map_err(|e| e.to_string())
    }

    fn opt_text(&self, column: &'static str) -> Result<Option<String>, String> {
        B::opt_text(self.row, &self.name(column)).map_err(|e| e.to_string())
    }

    fn int(&self, column: &'static str) -> Result<i64, String> {
        B::int(self.row, &self.name(column)).map_err(|e| e.to_string())
    }

    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, String> {
        B::opt_int(self.row, &self.name(column)).map_err(|e| e.to_string())
    }

    fn opt_time(&self, column: &'static str) -> Result<Option<OffsetDateTime>, String> {
        Ok(self.opt_int(column)?.map(from_micros))
    }

    fn count(&self, column: &'static str) -> Result<Option<u64>, String> {
        Ok(self.opt_int(column)?.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    fn names(&self, column: &'static str) -> Result<Option<Arc<BTreeSet<String>>>, String> {
        self.opt_text(column)?
            .as_deref()
            .map(|t| names_from_json(t).map(Arc::new))
            .transpose()
    }
}

/// The agent whose columns carry `prefix`.
pub(crate) fn agent<B: Driver>(row: &B::Row, prefix: &'static str) -> Result<Agent, String> {
    let c = Columns::<B>::new(row, prefix);
    Ok(Agent {
        id: AgentId::new(c.text("id")?),
        slug: c.text("slug")?.into(),
        owner: c.text("owner")?.into(),
        agent_type: AgentType::parse(&c.text("agent_type")?)
            .ok_or("stored agent type is not valid")?,
        status: AgentStatus::parse(&c.text("status")?).ok_or("stored agent status is not valid")?,
        policy: Arc::new(policy_from_json(&c.text("policy")?)?),
        created_at: from_micros(c.int("created_at")?),
        expires_at: c.opt_time("expires_at")?,
        parent: c.opt_text("parent_id")?.map(AgentId::new),
        scopes: c.names("scopes")?,
        modes: c.names("modes")?,
        last_used_at: c.opt_time("last_used_at")?,
        last_rotated_at: c.opt_time("last_rotated_at")?,
        is_orchestrator: B::flag(row, &c.name("orchestrator")).map_err(|e| e.to_string())?,
    })
}

/// The agent whose columns carry `prefix`, if the (outer-joined) row holds one.
pub(crate) fn opt_agent<B: Driver>(
    row: &B::Row,
    prefix: &'static str,
) -> Result<Option<Agent>, String> {
    match Columns::<B>::new(row, prefix).opt_text("id")? {
        Some(_) => agent::<B>(row, prefix).map(Some),
        None => Ok(None),
    }
}

/// The token whose columns carry `prefix`.
pub(crate) fn token<B: Driver>(row: &B::Row, prefix: &'static str) -> Result<TokenInfo, String> {
    let c = Columns::<B>::new(row, prefix);
    Ok(TokenInfo {
        id: TokenId::new(c.text("id")?),
        agent_id: AgentId::new(c.text("agent_id")?),
        display_prefix: c.text("display_prefix")?,
        label: c.text("label")?,
        capabilities: c
            .opt_text("capabilities")?
            .as_deref()
            .map(capabilities_from_json)
            .transpose()?,
        created_at: from_micros(c.int("created_at")?),
        created_by: c.opt_text("created_by")?.map(Into::into),
        expires_at: c.opt_time("expires_at")?,
        last_used_at: c.opt_time("last_used_at")?,
        revoked_at: c.opt_time("revoked_at")?,
        max_operations: c.count("max_operations")?,
        operations_remaining: c.count("operations_remaining")?,
        expires_on_completion: B::flag(row, &c.name("expires_on_completion"))
            .map_err(|e| e.to_string())?,
        task_id: c.opt_text("task_id")?,
        intent: c.opt_text("intent")?,
        orchestrator: c.opt_text("orchestrator")?.map(AgentId::new),
        environment: c.opt_text("environment")?,
        delegated_by: c.opt_text("delegated_by")?.map(Into::into),
        delegation_parent: c.opt_text("delegation_parent")?.map(TokenId::new),
        delegation_depth: u32::try_from(c.int("delegation_depth")?)
            .map_err(|_| corrupt("delegation depth"))?,
        task_completed_at: c.opt_time("completed_at")?,
        resource: c.opt_text("resource")?,
        client_id: c.opt_text("client_id")?,
    })
}

/// An agent row of the management API.
pub(crate) fn agent_row<B: Driver>(row: &B::Row) -> Result<Agent, StoreError> {
    agent::<B>(row, "").map_err(StoreError::unavailable)
}

/// A token row of the management API.
pub(crate) fn token_row<B: Driver>(row: &B::Row) -> Result<TokenInfo, StoreError> {
    token::<B>(row, "").map_err(StoreError::unavailable)
}

/// A row of `agent_auth_audit_events`.
pub(crate) fn audit_event<B: Driver>(row: &B::Row) -> Result<crate::audit::AuditEvent, String> {
    let c = Columns::<B>::new(row, "");
    AuditRow {
        at: c.int("at")?,
        agent_id: c.opt_text("agent_id")?,
        parent_agent_id: c.opt_text("parent_agent_id")?,
        token_id: c.opt_text("token_id")?,
        actor: c.opt_text("actor")?,
        delegation_chain: c.text("delegation_chain")?,
        action: c.text("action")?,
        outcome: c.text("outcome")?,
        reason: c.opt_text("reason")?,
        method: c.opt_text("method")?,
        path: c.opt_text("path")?,
        status: B::opt_int32(row, "status").map_err(|e| e.to_string())?,
        task_id: c.opt_text("task_id")?,
        detail: c.opt_text("detail")?,
        occurrences: c.int("occurrences")?,
    }
    .into_event()
}

/// `{"allow": [..] | null, "deny": [..]}`
pub(crate) fn policy_to_json(policy: &Policy) -> String {
    json!({
        "allow": policy.allowed().map(CapabilitySet::to_strings),
        "deny": policy.denied().to_strings(),
    })
    .to_string()
}

pub(crate) fn policy_from_json(text: &str) -> Result<Policy, String> {
    let value: Value = serde_json::from_str(text).map_err(|_| corrupt("policy"))?;
    let set = |v: &Value| -> Result<CapabilitySet, String> {
        let items = v.as_array().ok_or_else(|| corrupt("policy"))?;
        let names: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
        CapabilitySet::parse(names.ok_or_else(|| corrupt("policy"))?).map_err(|e| e.to_string())
    };
    let allow = match &value["allow"] {
        Value::Null => None,
        v => Some(set(v)?),
    };
    let deny = match &value["deny"] {
        Value::Null => CapabilitySet::empty(),
        v => set(v)?,
    };
    Ok(allow
        .map_or_else(Policy::unrestricted, Policy::allow)
        .with_deny(deny))
}

/// A scope or mode set as a JSON array.
pub(crate) fn names_to_json(names: &BTreeSet<String>) -> String {
    Value::from(names.iter().map(String::as_str).collect::<Vec<_>>()).to_string()
}

pub(crate) fn names_from_json(text: &str) -> Result<BTreeSet<String>, String> {
    serde_json::from_str(text).map_err(|_| corrupt("scopes or modes"))
}

pub(crate) fn capabilities_to_json(set: &CapabilitySet) -> String {
    Value::from(set.to_strings()).to_string()
}

pub(crate) fn capabilities_from_json(text: &str) -> Result<CapabilitySet, String> {
    let names: Vec<String> = serde_json::from_str(text).map_err(|_| corrupt("capabilities"))?;
    CapabilitySet::parse(names).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_json() {
        let policies = [
            Policy::unrestricted(),
            Policy::nothing(),
            Policy::allow(CapabilitySet::parse(["posts:*", "a"]).unwrap())
                .with_deny(CapabilitySet::parse(["posts:delete"]).unwrap()),
        ];
        for policy in policies {
            assert_eq!(policy_from_json(&policy_to_json(&policy)).unwrap(), policy);
        }
    }

    #[test]
    fn corrupt_json_is_an_error_not_a_wider_policy() {
        assert!(policy_from_json("{").is_err());
        assert!(policy_from_json(r#"{"allow": "posts:*"}"#).is_err());
        assert!(capabilities_from_json("[1]").is_err());
    }
}
