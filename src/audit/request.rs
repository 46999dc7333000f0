//! The events of requests: an agent-authenticated request, and a refused token whose credential
//! is known. Built here, so that the layer only decides when to record them.

use std::sync::Arc;

use super::{AuditAction, AuditEvent, AuditRecorder, Outcome};
use crate::clock::Clock;
use crate::error::RefusedCredential;
use crate::limit::Limit;
use crate::principal::ExecutionPrincipal;

/// Status recorded for a request whose response was never produced (nginx's "client closed").
const CLIENT_CLOSED: u16 = 499;

/// The event of a refused token whose credential is known.
pub(crate) fn refusal_event(
    refused: &RefusedCredential,
    method: &http::Method,
    path: &str,
    status: u16,
    clock: &dyn Clock,
) -> AuditEvent {
    let event = AuditEvent::new(
        clock.now(),
        AuditAction::TokenRefused,
        Outcome::Refused(refused.reason),
    )
    .agent(refused.agent_id.clone())
    .parent(refused.parent.clone())
    .token(refused.token_id.clone())
    .actor(refused.user_id.clone())
    .task_id(refused.task_id.clone())
    .delegation_chain(refused.delegation_chain.clone())
    .request(method.as_str(), path, status);
    match &refused.delegator {
        // Which link up the chain refused: an id, never a secret.
        Some(token) => event.detail(format!("delegator token {token} refused")),
        None => event,
    }
}

/// The event of an agent-authenticated request, waiting for its response's status. Dropped
/// before the response (the client went away, a timeout fired), it still records the request,
/// with status 499.
pub(crate) struct PendingRequestEvent {
    recorder: Arc<dyn AuditRecorder>,
    clock: Arc<dyn Clock>,
    event: Option<AuditEvent>,
}

impl PendingRequestEvent {
    /// The request of `principal`; the time and status are filled in when it is answered, so
    /// the clock is read once.
    pub(crate) fn new(
        recorder: &Arc<dyn AuditRecorder>,
        clock: &Arc<dyn Clock>,
        principal: &ExecutionPrincipal,
        method: &http::Method,
        path: &str,
    ) -> Self {
        let mut event = AuditEvent::new(
            time::OffsetDateTime::UNIX_EPOCH,
            AuditAction::Request,
            Outcome::Success,
        )
        .actor(principal.user_id().clone())
        .task_id(principal.task_id().map(str::to_owned))
        .delegation_chain(
            principal
                .delegation_chain()
                .iter()
                .map(|link| link.agent().id().clone())
                .collect(),
        )
        .request(method.as_str(), path, 0);
        if let Some(agent) = principal.agent_ref() {
            event = event
                .agent(agent.id().clone())
                .parent(agent.parent().cloned());
        }
        if let Some(token) = principal.token_id() {
            event = event.token(token.clone());
        }
        Self {
            recorder: recorder.clone(),
            clock: clock.clone(),
            event: Some(event),
        }
    }

    /// The request was answered with `status` (a 401 or 403 makes its outcome
    /// [`Outcome::Denied`]; a refusal by `rate_limited`, a rate limit, makes the event a
    /// [`AuditAction::RateLimited`] one, denied, naming the limit): the event is handed to the
    /// recorder, or given back with it when the recorder asks the caller to wait for room.
    pub(crate) fn answered(
        mut self,
        status: u16,
        rate_limited: Option<Limit>,
    ) -> Option<(Arc<dyn AuditRecorder>, AuditEvent)> {
        let mut event = self.event.take()?;
        event.at = self.clock.now();
        if let Some(request) = &mut event.request {
            request.status = status;
        }
        // The application (a missing capability, its own rule) refused the agent.
        if matches!(status, 401 | 403) {
            event.outcome = Outcome::Denied;
        }
        if let Some(limit) = rate_limited {
            event.action = AuditAction::RateLimited;
            event.outcome = Outcome::Denied;
            event.detail = Some(limit.to_string());
        }
        match self.recorder.try_record(event) {
            Ok(()) => None,
            Err(event) => Some((self.recorder.clone(), event)),
        }
    }
}

impl Drop for PendingRequestEvent {
    fn drop(&mut self) {
        if let Some(mut event) = self.event.take() {
            event.at = self.clock.now();
            if let Some(request) = &mut event.request {
                request.status = CLIENT_CLOSED;
            }
            self.recorder.record_detached(event);
        }
    }
}
