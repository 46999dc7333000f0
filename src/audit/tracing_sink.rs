use super::{AuditError, AuditEvent, AuditSink};

/// Logs each event through `tracing` (target `tower_agent_auth::audit`, level INFO), as fields
/// a log pipeline can index. Ids only: events hold no secret.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAuditSink;

#[async_trait::async_trait]
impl AuditSink for TracingAuditSink {
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
        for event in events {
            let id = |id: Option<&dyn std::fmt::Display>| id.map(ToString::to_string);
            let request = event.request.as_ref();
            tracing::info!(
                target: "tower_agent_auth::audit",
                at = %event.at,
                action = event.action.as_str(),
                outcome = event.outcome.as_str(),
                reason = event.outcome.reason().map(|r| r.as_str()),
                agent = id(event.agent.as_ref().map(|i| i as _)),
                parent = id(event.parent.as_ref().map(|i| i as _)),
                token = id(event.token.as_ref().map(|i| i as _)),
                actor = id(event.actor.as_ref().map(|i| i as _)),
                delegation_chain = ?event.delegation_chain.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                method = request.map(|r| r.method.as_str()),
                path = request.map(|r| r.path.as_str()),
                status = request.map(|r| r.status),
                task_id = event.task_id.as_deref(),
                detail = event.detail.as_deref(),
                occurrences = event.occurrences,
                "audit event"
            );
        }
        Ok(())
    }
}
