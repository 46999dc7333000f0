//! The audit trail in `agent_auth_audit_events`: batches written by the backend's fastest
//! insert, events read back by filter.

use super::Core;
use super::audit_row::{AUDIT_COLUMNS, AuditRow};
use super::dialect::{Driver, sql};
use super::rows::audit_event;
use crate::audit::{AuditError, AuditEvent, AuditFilter};
use crate::store::validate::micros;

impl<B: Driver> Core<B> {
    pub(crate) async fn write_audit_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = events.iter().map(AuditRow::of).collect();
        B::insert_audit_rows(&self.audit_pool, rows)
            .await
            .map_err(|e| AuditError::Unavailable(Box::new(e)))
    }

    pub(crate) async fn audit_events(
        &self,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEvent>, AuditError> {
        let mut statement = sql("SELECT ");
        statement.push(AUDIT_COLUMNS);
        // The newest `last` are picked in reverse, then put back in order.
        if filter.last.is_some() {
            statement.push(" FROM (SELECT seq, ").push(AUDIT_COLUMNS);
        }
        statement.push(" FROM agent_auth_audit_events WHERE 1 = 1");
        if !filter.agents.is_empty() {
            let mut columns = vec!["agent_id"];
            if filter.with_children {
                columns.push("parent_agent_id");
            }
            statement.push(" AND (");
            for (n, column) in columns.iter().enumerate() {
                statement
                    .push(if n > 0 { " OR " } else { "" })
                    .push(column)
                    .push(" IN (");
                for (i, id) in filter.agents.iter().enumerate() {
                    statement
                        .push(if i > 0 { ", " } else { "" })
                        .push_bind(id.as_str());
                }
                statement.push(")");
            }
            statement.push(")");
        }
        if let Some(token) = &filter.token {
            statement.push(" AND token_id = ").push_bind(token.as_str());
        }
        if let Some(since) = filter.since {
            statement.push(" AND at >= ").push_bind(micros(since));
        }
        if let Some(until) = filter.until {
            statement.push(" AND at < ").push_bind(micros(until));
        }
        if let Some(action) = filter.action {
            statement.push(" AND action IN (");
            for (i, name) in action.stored_names().into_iter().enumerate() {
                statement
                    .push(if i > 0 { ", " } else { "" })
                    .push_bind(name);
            }
            statement.push(")");
        }
        if let Some(outcome) = filter.outcome {
            statement
                .push(" AND outcome = ")
                .push_bind(outcome.as_str());
        }
        // By time; events of one instant in the order they were recorded.
        match filter.last {
            None => statement.push(" ORDER BY at, seq"),
            Some(n) => statement
                .push(" ORDER BY at DESC, seq DESC LIMIT ")
                .push_bind(i64::try_from(n).unwrap_or(i64::MAX))
                .push(") AS newest ORDER BY at, seq"),
        };
        let rows = statement
            .fetch_all(&self.pool)
            .await
            .map_err(|e| AuditError::Unavailable(Box::new(e)))?;
        rows.iter()
            .map(|row| audit_event::<B>(row).map_err(|e| AuditError::Unavailable(e.into())))
            .collect()
    }
}
