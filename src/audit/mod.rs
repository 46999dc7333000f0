#![doc = include_str!("../../docs/audit.md")]

#[cfg(feature = "audit")]
mod coalesce;
mod memory;
pub(crate) mod request;
#[cfg(feature = "audit")]
mod tracing_sink;
#[cfg(feature = "audit")]
mod writer;

pub use memory::MemoryAuditSink;
#[cfg(feature = "audit")]
pub use tracing_sink::TracingAuditSink;
#[cfg(feature = "audit")]
pub use writer::{AuditWriter, Overflow, WriterOptions};

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;

use crate::error::InvalidReason;
use crate::principal::{AgentId, TokenId, UserId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// An agent-authenticated request.
    Request,
    /// A presented token was refused (a stored one: revoked, expired, …).
    TokenRefused,
    /// A token was issued.
    TokenIssued,
    /// A token was rotated.
    TokenRotated,
    /// A token was revoked.
    TokenRevoked,
    /// An agent was created.
    AgentCreated,
    /// An agent was disabled.
    AgentDisabled,
    /// An agent was enabled.
    AgentEnabled,
    /// An agent was deleted.
    AgentDeleted,
    /// An agent's policy was replaced.
    AgentPolicyChanged,
    /// A user's access to an agent changed.
    GrantChanged,
    /// A user read an agent, its tokens, grants or trail (recorded only when denied).
    Read,
    /// A sign-in was refused by the attempt limits (outcome `denied`; the actor is the account
    /// name tried, the detail the limit and the client address; no agent).
    SignInThrottled,
    /// A supervised agent's critical request asked for a person's approval (the detail names
    /// the approval).
    ApprovalRequested,
    /// A person approved a pending approval (the actor is who).
    ApprovalGranted,
    /// A person denied a pending approval (the actor is who).
    ApprovalDenied,
    /// A person withdrew an approval given earlier (the actor is who): it admits nothing
    /// more.
    ApprovalRevoked,
    /// An approved approval admitted a request: one of its uses spent.
    ApprovalUsed,
    /// A person completed a task: every live token minted for it (and delegated from one)
    /// ended (the detail says how many).
    TaskCompleted,
    /// An agent's request was refused by a rate limit (`429`; outcome `denied`; the detail
    /// names the limit, e.g. `agent limit 10 per 1s`): see [`crate::limit`].
    RateLimited,
    /// An OAuth client registered itself (RFC 7591; the detail names the client, its
    /// authentication method and the address it came from; no agent).
    ClientRegistered,
    /// A person consented and an authorization code was issued (the actor is who; the detail
    /// names the client, the scope and the resource). The code itself is never recorded.
    CodeIssued,
    /// A spent authorization code was presented again (outcome `denied`): what its first
    /// redemption issued was revoked.
    CodeReplayed,
    /// Consent was refused: the person denied it, or is neither the agent's owner nor an
    /// `admin` of it (outcome `denied`; the actor is who).
    ConsentRefused,
    /// A refresh token was used and replaced by a new one of its family.
    RefreshRotated,
    /// A spent refresh token was presented again (outcome `denied`): its whole family and the
    /// access tokens it issued were revoked.
    RefreshReused,
    /// A refresh token was revoked (RFC 7009): its family and the access tokens it issued
    /// ended.
    RefreshRevoked,
    /// A person allowed a device (RFC 8628; the actor is who; the detail names the client,
    /// the scope and the resource). Neither code is ever recorded.
    DeviceApproved,
    /// Wrong user codes were refused by their limit (outcome `denied`; the actor is who was
    /// signed in, the detail the limit and the client address; recorded once per window).
    DeviceEntryThrottled,
    /// A person started connecting an agent to another service's authorize flow (the callback
    /// receiver; the detail names the provider), or was not allowed to (outcome `denied`).
    ProviderAuthorizationStarted,
    /// The provider's token was received and kept, sealed, for the agent (the actor is who
    /// connected it; the detail names the provider and the scopes). No token is recorded.
    ProviderConnected,
    /// A callback was refused (outcome `denied`): a `state` this server did not issue, one
    /// used before, expired, issued to another session or for another provider, or a code the
    /// provider would not exchange. Neither the state nor the code is recorded.
    CallbackRefused,
    /// A provider token was deleted (the actor is who).
    ProviderDisconnected,
}

/// The names versions before 0.2 stored, and the action each now is.
const LEGACY_NAMES: [(&str, &str); 7] = [
    ("credential_issued", "token_issued"),
    ("credential_rotated", "token_rotated"),
    ("credential_revoked", "token_revoked"),
    ("identity_created", "agent_created"),
    ("identity_disabled", "agent_disabled"),
    ("identity_enabled", "agent_enabled"),
    ("identity_deleted", "agent_deleted"),
];

/// [`AuditAction::all`].
const ALL_ACTIONS: [AuditAction; 33] = [
    AuditAction::Request,
    AuditAction::TokenRefused,
    AuditAction::TokenIssued,
    AuditAction::TokenRotated,
    AuditAction::TokenRevoked,
    AuditAction::AgentCreated,
    AuditAction::AgentDisabled,
    AuditAction::AgentEnabled,
    AuditAction::AgentDeleted,
    AuditAction::AgentPolicyChanged,
    AuditAction::GrantChanged,
    AuditAction::Read,
    AuditAction::SignInThrottled,
    AuditAction::ApprovalRequested,
    AuditAction::ApprovalGranted,
    AuditAction::ApprovalDenied,
    AuditAction::ApprovalRevoked,
    AuditAction::ApprovalUsed,
    AuditAction::TaskCompleted,
    AuditAction::RateLimited,
    AuditAction::ClientRegistered,
    AuditAction::CodeIssued,
    AuditAction::CodeReplayed,
    AuditAction::ConsentRefused,
    AuditAction::RefreshRotated,
    AuditAction::RefreshReused,
    AuditAction::RefreshRevoked,
    AuditAction::DeviceApproved,
    AuditAction::DeviceEntryThrottled,
    AuditAction::ProviderAuthorizationStarted,
    AuditAction::ProviderConnected,
    AuditAction::CallbackRefused,
    AuditAction::ProviderDisconnected,
];

impl AuditAction {
    /// A stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::TokenRefused => "token_refused",
            Self::TokenIssued => "token_issued",
            Self::TokenRotated => "token_rotated",
            Self::TokenRevoked => "token_revoked",
            Self::AgentCreated => "agent_created",
            Self::AgentDisabled => "agent_disabled",
            Self::AgentEnabled => "agent_enabled",
            Self::AgentDeleted => "agent_deleted",
            Self::AgentPolicyChanged => "agent_policy_changed",
            Self::GrantChanged => "grant_changed",
            Self::Read => "read",
            Self::SignInThrottled => "sign_in_throttled",
            Self::ApprovalRequested => "approval_requested",
            Self::ApprovalGranted => "approval_granted",
            Self::ApprovalDenied => "approval_denied",
            Self::ApprovalRevoked => "approval_revoked",
            Self::ApprovalUsed => "approval_used",
            Self::TaskCompleted => "task_completed",
            Self::RateLimited => "rate_limited",
            Self::ClientRegistered => "client_registered",
            Self::CodeIssued => "code_issued",
            Self::CodeReplayed => "code_replayed",
            Self::ConsentRefused => "consent_refused",
            Self::RefreshRotated => "refresh_rotated",
            Self::RefreshReused => "refresh_reused",
            Self::RefreshRevoked => "refresh_revoked",
            Self::DeviceApproved => "device_approved",
            Self::DeviceEntryThrottled => "device_entry_throttled",
            Self::ProviderAuthorizationStarted => "provider_authorization_started",
            Self::ProviderConnected => "provider_connected",
            Self::CallbackRefused => "callback_refused",
            Self::ProviderDisconnected => "provider_disconnected",
        }
    }

    /// Parses [`AuditAction::as_str`], and the names versions before 0.2 stored
    /// (`credential_issued`, `identity_created`, …), so that older trails still read.
    pub fn parse(s: &str) -> Option<Self> {
        let s = LEGACY_NAMES
            .iter()
            .find(|(legacy, _)| *legacy == s)
            .map_or(s, |(_, current)| *current);
        Self::all()
            .iter()
            .copied()
            .find(|action| action.as_str() == s)
    }

    /// Every action, in the order they are declared: what a filter offers to choose from.
    pub fn all() -> &'static [Self] {
        &ALL_ACTIONS
    }

    /// The names the action may be stored under: [`AuditAction::as_str`], and the names of
    /// versions before 0.2.
    #[cfg_attr(not(feature = "sql"), allow(dead_code))]
    pub(crate) fn stored_names(&self) -> Vec<&'static str> {
        let name = self.as_str();
        let mut names = vec![name];
        names.extend(
            LEGACY_NAMES
                .iter()
                .filter(|(_, current)| *current == name)
                .map(|(legacy, _)| *legacy),
        );
        names
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// It happened.
    Success,
    /// A token was refused, and why.
    Refused(InvalidReason),
    /// The actor was not allowed to.
    Denied,
}

impl Outcome {
    /// `success`, `refused` or `denied` (the reason of a refusal is apart).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Refused(_) => "refused",
            Self::Denied => "denied",
        }
    }

    /// The reason of a refusal.
    pub fn reason(&self) -> Option<InvalidReason> {
        match self {
            Self::Refused(reason) => Some(*reason),
            _ => None,
        }
    }

    /// Parses [`Outcome::as_str`] and [`Outcome::reason`].
    pub fn parse(outcome: &str, reason: Option<&str>) -> Option<Self> {
        match (outcome, reason) {
            ("success", None) => Some(Self::Success),
            ("denied", None) => Some(Self::Denied),
            ("refused", Some(reason)) => InvalidReason::parse(reason).map(Self::Refused),
            _ => None,
        }
    }
}

/// The request an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSummary {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path, without the query string (which may carry secrets).
    pub path: String,
    /// The response status.
    pub status: u16,
}

/// One entry of the audit trail. Holds ids, never secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEvent {
    /// When it happened.
    pub at: OffsetDateTime,
    /// The agent it concerns.
    pub agent: Option<AgentId>,
    /// That agent's parent, for a thread-scoped child: queries by the parent find it.
    pub parent: Option<AgentId>,
    /// The token used or changed.
    pub token: Option<TokenId>,
    /// The human acting, or acted for.
    pub actor: Option<UserId>,
    /// The agents a delegated token was delegated through, the first (nearest the human)
    /// first, as [`ExecutionPrincipal::delegation_chain`](crate::ExecutionPrincipal::delegation_chain)
    /// lists them; empty for a token minted directly.
    pub delegation_chain: Vec<AgentId>,
    /// What happened.
    pub action: AuditAction,
    /// How it ended.
    pub outcome: Outcome,
    /// The request, for request events.
    pub request: Option<RequestSummary>,
    /// The task, if the token was minted for one.
    pub task_id: Option<String>,
    /// Before/after for lifecycle changes, in a few words.
    pub detail: Option<String>,
    /// How many occurrences this event stands for: 1, except for a row of repeated refusals
    /// of one token that the `AuditWriter` coalesced (see `WriterOptions::coalesce_refusals`,
    /// feature `audit`).
    pub occurrences: u64,
}

impl AuditEvent {
    /// An event with nothing but its time, action and outcome.
    pub fn new(at: OffsetDateTime, action: AuditAction, outcome: Outcome) -> Self {
        Self {
            at,
            agent: None,
            parent: None,
            token: None,
            actor: None,
            delegation_chain: Vec::new(),
            action,
            outcome,
            request: None,
            task_id: None,
            detail: None,
            occurrences: 1,
        }
    }

    /// The agent it concerns.
    pub fn agent(mut self, agent: impl Into<AgentId>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    /// The parent of the agent, for a thread-scoped child.
    pub fn parent(mut self, parent: Option<AgentId>) -> Self {
        self.parent = parent;
        self
    }

    /// The delegating agents, the first (nearest the human) first.
    pub fn delegation_chain(mut self, chain: Vec<AgentId>) -> Self {
        self.delegation_chain = chain;
        self
    }

    /// The task the token was minted for.
    pub fn task_id(mut self, task: Option<String>) -> Self {
        self.task_id = task;
        self
    }

    /// The token used or changed.
    pub fn token(mut self, token: impl Into<TokenId>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The human acting, or acted for.
    pub fn actor(mut self, actor: impl Into<UserId>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// The request.
    pub fn request(mut self, method: &str, path: &str, status: u16) -> Self {
        self.request = Some(RequestSummary {
            method: method.into(),
            path: path.into(),
            status,
        });
        self
    }

    /// Before/after, in a few words.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

pub use crate::error::AuditError;

/// Where batches of events go.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Stores a batch, in order. An error makes the writer retry the same batch.
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError>;
}

/// Takes events to a sink. Implemented by `AuditWriter` (feature `audit`); implement it to
/// send events elsewhere. The layer calls [`AuditRecorder::try_record`] first and only waits,
/// through [`AuditRecorder::wait_to_record`], when that gives the event back.
pub trait AuditRecorder: Send + Sync + 'static {
    /// Takes `event` without waiting, or gives it back when the caller should wait for room.
    // Handing the event back, by value, is the point: the fast path moves it once, no box.
    #[allow(clippy::result_large_err)]
    fn try_record(&self, event: AuditEvent) -> Result<(), AuditEvent>;

    /// Takes `event`, waiting for room. Dropping the returned future before it finishes must
    /// not lose the event: hand it on as [`AuditRecorder::record_detached`] does.
    fn wait_to_record(&self, event: AuditEvent) -> Pin<Box<dyn Future<Output = ()> + Send>>;

    /// Takes `event` when the caller cannot wait for room (a request whose response future was
    /// dropped): the recorder finds room on its own, or counts the event as dropped.
    fn record_detached(&self, event: AuditEvent);
}

/// Records `event`, waiting only if the recorder wants it to.
pub(crate) async fn record(recorder: &dyn AuditRecorder, event: AuditEvent) {
    if let Err(event) = recorder.try_record(event) {
        recorder.wait_to_record(event).await;
    }
}

/// Which events a query returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events of these agents (empty: any), and of their children when
    /// `with_children` is set.
    pub agents: Vec<AgentId>,
    /// Whether events of the listed agents' thread-scoped children count as theirs.
    pub with_children: bool,
    /// Only events of this token.
    pub token: Option<TokenId>,
    /// At or after.
    pub since: Option<OffsetDateTime>,
    /// Before.
    pub until: Option<OffsetDateTime>,
    /// Only events of this action.
    pub action: Option<AuditAction>,
    /// Only events with an outcome of this kind ([`Outcome::as_str`]): a refusal of any
    /// reason passes `Some(Outcome::Refused(_))`.
    pub outcome: Option<Outcome>,
    /// At most this many: the newest that match, still listed oldest first (`None`: all).
    pub last: Option<usize>,
}

impl AuditFilter {
    /// The events of one agent and of its thread-scoped children.
    pub fn agent(agent: impl Into<AgentId>) -> Self {
        Self {
            agents: vec![agent.into()],
            with_children: true,
            ..Self::default()
        }
    }

    /// The events of one token.
    pub fn token(token: impl Into<TokenId>) -> Self {
        Self {
            token: Some(token.into()),
            ..Self::default()
        }
    }

    /// Only events of the listed agents themselves, not of their children.
    pub fn without_children(mut self) -> Self {
        self.with_children = false;
        self
    }

    /// Only events at or after `since`.
    pub fn since(mut self, since: OffsetDateTime) -> Self {
        self.since = Some(since);
        self
    }

    /// Only events before `until`.
    pub fn until(mut self, until: OffsetDateTime) -> Self {
        self.until = Some(until);
        self
    }

    /// Only events of `action`.
    pub fn action(mut self, action: AuditAction) -> Self {
        self.action = Some(action);
        self
    }

    /// Only events whose outcome is of `outcome`'s kind (success, refused for any reason,
    /// denied).
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Only the newest `n` matching events (still oldest first): a trail of millions of rows
    /// is read a page at a time.
    pub fn last(mut self, n: usize) -> Self {
        self.last = Some(n);
        self
    }

    /// Keeps the newest [`AuditFilter::last`] of `events` (matching events, oldest first), for
    /// a query answered in memory.
    pub fn keep_last(&self, events: &mut Vec<AuditEvent>) {
        if let Some(n) = self.last {
            let extra = events.len().saturating_sub(n);
            events.drain(..extra);
        }
    }

    /// Those of `events` (in the order they were stored) that pass, as a backend answers a
    /// query: by time, oldest first, those of one instant in stored order, the newest
    /// [`AuditFilter::last`] of them.
    pub fn select<'a>(&self, events: impl IntoIterator<Item = &'a AuditEvent>) -> Vec<AuditEvent> {
        let mut found: Vec<AuditEvent> = events
            .into_iter()
            .filter(|event| self.matches(event))
            .cloned()
            .collect();
        // A stable sort keeps the stored order within an instant.
        found.sort_by_key(|event| event.at);
        self.keep_last(&mut found);
        found
    }

    /// Whether `event` passes the filter (everything but [`AuditFilter::last`]).
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let listed = |id: &Option<AgentId>| id.as_ref().is_some_and(|id| self.agents.contains(id));
        (self.agents.is_empty()
            || listed(&event.agent)
            || (self.with_children && listed(&event.parent)))
            && self
                .token
                .as_ref()
                .is_none_or(|c| event.token.as_ref() == Some(c))
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at < until)
            && self.action.is_none_or(|action| event.action == action)
            && self
                .outcome
                .is_none_or(|outcome| event.outcome.as_str() == outcome.as_str())
    }
}

/// Reading the trail back: events passing a filter, by time.
#[async_trait::async_trait]
pub trait AuditQuery: Send + Sync {
    /// The matching events by time, oldest first (events of one instant in the order they
    /// were recorded); with [`AuditFilter::last`], only the newest that many.
    async fn events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_and_older_names_still_read() {
        for action in [
            AuditAction::Request,
            AuditAction::TokenRefused,
            AuditAction::TokenIssued,
            AuditAction::TokenRotated,
            AuditAction::TokenRevoked,
            AuditAction::AgentCreated,
            AuditAction::AgentDisabled,
            AuditAction::AgentEnabled,
            AuditAction::AgentDeleted,
            AuditAction::GrantChanged,
            AuditAction::Read,
            AuditAction::SignInThrottled,
            AuditAction::ApprovalRequested,
            AuditAction::ApprovalGranted,
            AuditAction::ApprovalDenied,
            AuditAction::ApprovalRevoked,
            AuditAction::ApprovalUsed,
        ] {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(
            AuditAction::parse("credential_revoked"),
            Some(AuditAction::TokenRevoked)
        );
        assert_eq!(
            AuditAction::parse("identity_created"),
            Some(AuditAction::AgentCreated)
        );
        assert_eq!(AuditAction::parse("nope"), None);
    }
}
