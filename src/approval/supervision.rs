//! The front a host calls: [`Supervision`].

use std::sync::Arc;
use std::time::Duration;

use super::action::CriticalAction;
use super::rejection::ApprovalSummary;
use super::{
    Approval, ApprovalNotifier, ApprovalRejection, DEFAULT_LIFETIME, NewApproval, Requested,
};
use crate::ExecutionPrincipal;
use crate::audit::{AuditAction, AuditEvent, AuditRecorder, Outcome};
use crate::ceiling::CapabilitySet;
use crate::clock::{Clock, SystemClock};
use crate::error::{InputError, StoreError};
use crate::layer::InsufficientScope;
use crate::store::{Backend, Store};

/// The human-approval gate a host puts in front of its critical actions: which capabilities
/// are critical, where approvals are kept, how long one waits, who is told, where it is
/// audited. Cheap to clone; see the [module docs](super) for an example.
pub struct Supervision<S> {
    gate: S,
    critical: Arc<CapabilitySet>,
    lifetime: Duration,
    max_pending: Option<u32>,
    notifier: Option<Arc<dyn ApprovalNotifier>>,
    audit: Option<Arc<dyn AuditRecorder>>,
    clock: Arc<dyn Clock>,
}

impl<S: Clone> Clone for Supervision<S> {
    fn clone(&self) -> Self {
        Self {
            gate: self.gate.clone(),
            critical: self.critical.clone(),
            lifetime: self.lifetime,
            max_pending: self.max_pending,
            notifier: self.notifier.clone(),
            audit: self.audit.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<S> std::fmt::Debug for Supervision<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervision")
            .field("critical", &self.critical.to_strings())
            .field("lifetime", &self.lifetime)
            .field("notifier", &self.notifier.is_some())
            .field("audit", &self.audit.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Supervision<Store<B>> {
    /// Approvals kept in `gate`, needed for the capabilities `critical` matches (patterns:
    /// `payments:*` makes every `payments:` capability critical).
    pub fn new(gate: Store<B>, critical: CapabilitySet) -> Self {
        Self {
            gate,
            critical: Arc::new(critical),
            lifetime: DEFAULT_LIFETIME,
            max_pending: Some(super::DEFAULT_MAX_PENDING),
            notifier: None,
            audit: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// How long a pending approval waits for a decision (default 10 minutes), clamped to
    /// one second to [`MAX_LIFETIME`](super::MAX_LIFETIME) (a day): a lifetime out of range
    /// is the host's configuration, so it is corrected here rather than refusing every
    /// critical request of the agent with `400`.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.clamp(Duration::from_secs(1), super::MAX_LIFETIME);
        self
    }

    /// The most approvals one agent may have pending at once, all its tokens together
    /// (delegated ones included, so minting children does not multiply it; default
    /// [`DEFAULT_MAX_PENDING`](super::DEFAULT_MAX_PENDING); `None`: no bound). Beyond it a
    /// request is refused with [`ApprovalRejection::TooMany`] (`429`, `Retry-After`): no
    /// approval is kept and nobody is told, so an agent cannot flood its person.
    pub fn max_pending(mut self, max: Option<u32>) -> Self {
        self.max_pending = max;
        self
    }

    /// Tells the person about each new pending approval.
    pub fn notifier(mut self, notifier: impl ApprovalNotifier) -> Self {
        self.notifier = Some(Arc::new(notifier));
        self
    }

    /// Records `approval_requested` and `approval_used` events through `recorder`.
    pub fn audit(mut self, recorder: impl AuditRecorder) -> Self {
        self.audit = Some(Arc::new(recorder));
        self
    }

    /// Reads time from `clock` (the gate's own, for tests of expiry; default the system
    /// clock): the time of audit events and of which approval still stands.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The gate.
    pub fn gate(&self) -> &Store<B> {
        &self.gate
    }

    /// Whether `capability` needs a person's approval when a supervised principal uses it.
    pub fn is_critical(&self, capability: &str) -> bool {
        self.critical.matches(capability)
    }

    /// Whether `principal` may do `action` now. In order:
    ///
    /// 1. the ceiling does not allow the capability → `InsufficientScope`;
    /// 2. the principal is not supervised, or the capability is not critical → `Ok`;
    /// 3. an approved approval with this binding → one use spent (`approval_used`) → `Ok`;
    /// 4. a pending one → `Required` with its id again;
    /// 5. a denied, unexpired one → `Denied`;
    /// 6. the agent has [`Supervision::max_pending`] pending already → `TooMany`;
    /// 7. else a new pending approval (`approval_requested`), the notifier told → `Required`.
    ///
    /// Steps 3–7 are one atomic [`Store::request_approval`] (step 3 is tried alone
    /// first, then again inside it, so an approval given between the two is spent, never
    /// asked for twice): of concurrent identical requests one creates, and only it notifies
    /// and audits.
    ///
    /// A store error is `Unavailable`: never admission.
    pub async fn check(
        &self,
        principal: &ExecutionPrincipal,
        action: &CriticalAction,
    ) -> Result<(), ApprovalRejection> {
        if !principal.can(action.capability()) {
            return Err(ApprovalRejection::InsufficientScope(
                InsufficientScope::new(action.capability()),
            ));
        }
        if !principal.is_supervised() || !self.is_critical(action.capability()) {
            return Ok(());
        }
        let mut new = NewApproval::new(principal, action, self.lifetime).map_err(refusal)?;
        new.max_pending = self.max_pending;
        // The common case, an approved retry, without the lock `request_approval` takes.
        if let Some(used) = self
            .gate
            .consume_approval(&new.binding)
            .await
            .map_err(refusal)?
        {
            self.used(&used).await;
            return Ok(());
        }
        // One atomic step: of many identical requests racing, one creates (and alone tells
        // the person and audits it); every other is named that approval; and one approved
        // since the look above is spent, not asked for again.
        let approval = match self.gate.request_approval(new).await.map_err(refusal)? {
            Requested::Approved(used) => {
                self.used(&used).await;
                return Ok(());
            }
            Requested::Created(approval) => approval,
            Requested::Pending(approval) => {
                return Err(ApprovalRejection::Required(ApprovalSummary::of(&approval)));
            }
            Requested::Denied(approval) => {
                return Err(ApprovalRejection::Denied(ApprovalSummary::of(&approval)));
            }
            Requested::TooMany { retry_after } => {
                return Err(ApprovalRejection::TooMany { retry_after });
            }
        };
        let mut detail = format!(
            "approval {} requested: {} {} needs {}; {:?}",
            approval.id,
            approval.method,
            approval.path,
            approval.capability,
            approval.binding_message
        );
        if let Some(details) = &approval.details {
            detail.push_str("; ");
            detail.push_str(&super::canonical_json(details));
        }
        self.record(AuditAction::ApprovalRequested, &approval, detail)
            .await;
        if let Some(notifier) = &self.notifier {
            if let Err(error) = notifier.notify(&approval).await {
                #[cfg(feature = "audit")]
                tracing::warn!(approval = %approval.id, %error, "approval notifier failed");
                #[cfg(not(feature = "audit"))]
                let _ = error;
            }
        }
        Err(ApprovalRejection::Required(ApprovalSummary::of(&approval)))
    }

    /// Audits a use spent of `used`.
    async fn used(&self, used: &Approval) {
        let left = used.uses_remaining.unwrap_or(0);
        self.record(
            AuditAction::ApprovalUsed,
            used,
            format!(
                "approval {} used ({left} left): {} {} with {}",
                used.id, used.method, used.path, used.capability
            ),
        )
        .await;
    }

    async fn record(&self, action: AuditAction, approval: &Approval, detail: String) {
        if let Some(recorder) = &self.audit {
            let mut event = approval_event(self.clock.now(), action, approval).detail(detail);
            if action == AuditAction::ApprovalRequested {
                event = event.request(&approval.method, &approval.path, 403);
            }
            crate::audit::record(&**recorder, event).await;
        }
    }
}

/// An event about `approval`: its agent, token, chain, task and owner (acted for).
pub(crate) fn approval_event(
    at: time::OffsetDateTime,
    action: AuditAction,
    approval: &Approval,
) -> AuditEvent {
    AuditEvent::new(at, action, Outcome::Success)
        .agent(approval.agent_id.clone())
        .token(approval.token_id.clone())
        .actor(approval.owner.clone())
        .delegation_chain(approval.delegation_chain.clone())
        .task_id(approval.task_id.clone())
}

/// A store error as the agent sees it: its input refused, or the store unreachable.
fn refusal(error: StoreError) -> ApprovalRejection {
    match error {
        StoreError::Input(InputError::Invalid(message)) => ApprovalRejection::Invalid(message),
        _ => ApprovalRejection::Unavailable,
    }
}
