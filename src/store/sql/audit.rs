//! The audit trail in `agent_auth_audit_events`: batches written by the backend's fastest
//! insert, events read back by filter.

use std::fmt::Write as _;

use super::dialect::{Arg, Driver, sql};
use super::rows::{AuditRow, audit_event};
use super::{Core, queries};
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
        let mut text = format!(
            "SELECT {} FROM agent_auth_audit_events WHERE 1 = 1",
            queries::AUDIT_COLUMNS
        );
        let mut args: Vec<Arg<'_>> = Vec::new();
        // Binds `arg` as the next parameter and writes its placeholder.
        let mut param = |text: &mut String, arg: Arg<'static>| {
            args.push(arg);
            let _ = write!(text, "${}", args.len());
        };
        if !filter.agents.is_empty() {
            let mut columns = vec!["identity"];
            if filter.with_children {
                columns.push("parent_identity");
            }
            text.push_str(" AND (");
            for (n, column) in columns.iter().enumerate() {
                if n > 0 {
                    text.push_str(" OR ");
                }
                let _ = write!(text, "{column} IN (");
                for (i, id) in filter.agents.iter().enumerate() {
                    if i > 0 {
                        text.push_str(", ");
                    }
                    param(&mut text, Arg::from(id.to_string()));
                }
                text.push(')');
            }
            text.push(')');
        }
        if let Some(credential) = &filter.token {
            text.push_str(" AND credential = ");
            param(&mut text, Arg::from(credential.to_string()));
        }
        if let Some(since) = filter.since {
            text.push_str(" AND at >= ");
            param(&mut text, Arg::from(micros(since)));
        }
        if let Some(until) = filter.until {
            text.push_str(" AND at < ");
            param(&mut text, Arg::from(micros(until)));
        }
        // By time; events of one instant in the order they were recorded. The newest `last`
        // are picked in reverse and put back in order.
        match filter.last {
            None => text.push_str(" ORDER BY at, seq"),
            Some(n) => {
                text = text.replacen(
                    "SELECT ",
                    &format!("SELECT {} FROM (SELECT seq, ", queries::AUDIT_COLUMNS),
                    1,
                );
                text.push_str(" ORDER BY at DESC, seq DESC LIMIT ");
                param(&mut text, Arg::from(i64::try_from(n).unwrap_or(i64::MAX)));
                text.push_str(") AS newest ORDER BY at, seq");
            }
        }
        let statement = args.into_iter().fold(sql(&text), |st, arg| st.bind(arg));
        let rows = statement
            .fetch_all(&self.pool)
            .await
            .map_err(|e| AuditError::Unavailable(Box::new(e)))?;
        rows.iter()
            .map(|row| audit_event::<B>(row).map_err(|e| AuditError::Unavailable(e.into())))
            .collect()
    }
}
