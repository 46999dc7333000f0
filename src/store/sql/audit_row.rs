//! An audit event as one row of `agent_auth_audit_events`: its columns, and the values the
//! dialects' batched inserts bind. It names no database (reading a row by column name is
//! [`rows`](super::rows)'), so that the dialects and the row readers both build on it.

use serde_json::Value;

use crate::audit::AuditEvent;
use crate::principal::AgentId;
use crate::store::validate::{from_micros, micros};

/// The columns of `agent_auth_audit_events` an event is stored in, in [`AuditRow`]'s order.
pub(crate) const AUDIT_COLUMNS: &str = "at, agent_id, parent_agent_id, token_id, actor, \
    delegation_chain, action, outcome, reason, method, path, status, task_id, detail, occurrences";

/// How many columns an event is stored in.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) const AUDIT_COLUMN_COUNT: usize = 15;

/// An audit event as stored, its fields in [`AUDIT_COLUMNS`] order.
pub(crate) struct AuditRow {
    pub(crate) at: i64,
    pub(crate) agent_id: Option<String>,
    pub(crate) parent_agent_id: Option<String>,
    pub(crate) token_id: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) delegation_chain: String,
    pub(crate) action: String,
    pub(crate) outcome: String,
    pub(crate) reason: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) status: Option<i32>,
    pub(crate) task_id: Option<String>,
    pub(crate) detail: Option<String>,
    pub(crate) occurrences: i64,
}

fn corrupt(what: &str) -> String {
    format!("stored {what} is not valid")
}

impl AuditRow {
    /// The row of `event`.
    pub(crate) fn of(event: &AuditEvent) -> Self {
        let id = |id: &Option<AgentId>| id.as_ref().map(ToString::to_string);
        let request = event.request.as_ref();
        Self {
            at: micros(event.at),
            agent_id: id(&event.agent),
            parent_agent_id: id(&event.parent),
            token_id: event.token.as_ref().map(ToString::to_string),
            actor: event.actor.as_ref().map(ToString::to_string),
            delegation_chain: Value::from(
                event
                    .delegation_chain
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>(),
            )
            .to_string(),
            action: event.action.as_str().to_owned(),
            outcome: event.outcome.as_str().to_owned(),
            reason: event.outcome.reason().map(|r| r.as_str().to_owned()),
            method: request.map(|r| r.method.clone()),
            path: request.map(|r| r.path.clone()),
            status: request.map(|r| i32::from(r.status)),
            task_id: event.task_id.clone(),
            detail: event.detail.clone(),
            occurrences: i64::try_from(event.occurrences).unwrap_or(i64::MAX),
        }
    }

    /// The event this row stores; a row this build cannot read is an error, not a guess.
    pub(crate) fn into_event(self) -> Result<AuditEvent, String> {
        use crate::audit::{AuditAction, Outcome, RequestSummary};
        let action = AuditAction::parse(&self.action).ok_or_else(|| corrupt("audit action"))?;
        let outcome = Outcome::parse(&self.outcome, self.reason.as_deref())
            .ok_or_else(|| corrupt("audit outcome"))?;
        let chain: Vec<String> = serde_json::from_str(&self.delegation_chain)
            .map_err(|_| corrupt("delegation chain"))?;
        let mut event = AuditEvent::new(from_micros(self.at), action, outcome)
            .parent(self.parent_agent_id.map(Into::into))
            .delegation_chain(chain.into_iter().map(Into::into).collect())
            .task_id(self.task_id);
        event.agent = self.agent_id.map(Into::into);
        event.token = self.token_id.map(Into::into);
        event.actor = self.actor.map(Into::into);
        event.detail = self.detail;
        event.occurrences = u64::try_from(self.occurrences)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| corrupt("occurrences"))?;
        if let (Some(method), Some(path), Some(status)) = (self.method, self.path, self.status) {
            event.request = Some(RequestSummary {
                method,
                path,
                status: u16::try_from(status).map_err(|_| corrupt("status"))?,
            });
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_has_one_value_per_column() {
        assert_eq!(AUDIT_COLUMNS.split(", ").count(), AUDIT_COLUMN_COUNT);
    }
}
