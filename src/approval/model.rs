//! Approvals as records: what was asked, what was decided, and how a list narrows them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use super::action::CriticalAction;
use super::binding::{ApprovalBinding, canonical_json};
use super::text::check_readable;
use super::{DEFAULT_MAX_PENDING, MAX_DETAILS, MAX_LIFETIME, MAX_MESSAGE, MAX_USES};
use crate::ExecutionPrincipal;
use crate::error::{Conflict, StoreError};
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::validate::is_hidden_char;

/// The id of an approval, such as `apr_3f9a…`. Not secret: it is shown to the agent and the
/// person alike. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApprovalId(Arc<str>);

impl ApprovalId {
    /// A fresh id: `apr_` and 16 hex digits of CSPRNG output.
    pub fn random() -> Result<Self, StoreError> {
        crate::store::validate::random_id("apr").map(Self::from)
    }

    /// Wraps an id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApprovalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApprovalId({:?})", &*self.0)
    }
}

impl std::fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ApprovalId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for ApprovalId {
    fn from(id: String) -> Self {
        Self::new(id)
    }
}

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved, with uses left.
    Approved,
    /// Denied.
    Denied,
    /// Approved, and every use spent.
    Used,
    /// Pending, approved or denied, and past its expiry.
    Expired,
}

impl ApprovalStatus {
    /// `pending`, `approved`, `denied`, `used` or `expired`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
            Self::Expired => "expired",
        }
    }

    /// Parses [`ApprovalStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Approved,
            Self::Denied,
            Self::Used,
            Self::Expired,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// One approval: what was asked, by whom, and what was decided. A plain record (not
/// `non_exhaustive`), so that a store of your own can build it from its rows; a new store
/// builds a new approval with [`NewApproval::into_pending`] and decides one with
/// [`Decision::apply`], so that it stores what every other store does.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// Its id, `apr_…`.
    pub id: ApprovalId,
    /// What it is bound to.
    pub binding: ApprovalBinding,
    /// The agent that asked.
    pub agent_id: AgentId,
    /// The agent's owner: the human it acts for.
    pub owner: UserId,
    /// The token the request came with.
    pub token_id: TokenId,
    /// The agents the asking agent acts under, the first (nearest the human) first.
    pub delegation_chain: Vec<AgentId>,
    /// The request's method.
    pub method: String,
    /// The request's path, without the query string.
    pub path: String,
    /// The critical capability asked for.
    pub capability: String,
    /// What exactly is approved, as the handler described it (a JSON object).
    pub details: Option<Value>,
    /// What the person reads: "Pay 50 EUR to ACME".
    pub binding_message: String,
    /// Where it stood when read; see [`Approval::status_at`] for now.
    pub status: ApprovalStatus,
    /// When it was asked for.
    pub created_at: OffsetDateTime,
    /// When it stops counting: a pending one can no longer be decided, an approved one admits
    /// nothing more, a denied one no longer refuses.
    pub expires_at: OffsetDateTime,
    /// Who approved or denied it.
    pub decided_by: Option<UserId>,
    /// When.
    pub decided_at: Option<OffsetDateTime>,
    /// The uses it was approved for.
    pub uses: Option<u32>,
    /// The uses left.
    pub uses_remaining: Option<u32>,
    /// The task the asking token was minted for, if any: approval audit events carry it, so
    /// the trail filtered by task finds them.
    pub task_id: Option<String>,
    /// The orchestrator agent that minted the asking token's task token (or the task token
    /// its chain started from), if any: a supervised orchestrator makes the request
    /// supervised, so the person sees why it waits for them.
    pub orchestrator: Option<AgentId>,
}

impl Approval {
    /// Where it stands at `now`: a pending, approved or denied approval past its expiry is
    /// [`ApprovalStatus::Expired`].
    pub fn status_at(&self, now: OffsetDateTime) -> ApprovalStatus {
        match self.status {
            ApprovalStatus::Pending | ApprovalStatus::Approved | ApprovalStatus::Denied
                if now >= self.expires_at =>
            {
                ApprovalStatus::Expired
            }
            status => status,
        }
    }

    /// Whether a request may spend a use of it at `now`: approved, unexpired, with a use left.
    pub fn is_usable_at(&self, now: OffsetDateTime) -> bool {
        self.status_at(now) == ApprovalStatus::Approved
            && self.uses_remaining.is_some_and(|n| n > 0)
    }

    /// Spends one use: the last one marks it [`ApprovalStatus::Used`]. For a backend that keeps
    /// approvals in memory; call it only on a [usable](Approval::is_usable_at) one.
    pub fn spend_use(&mut self) {
        let left = self.uses_remaining.unwrap_or(1).saturating_sub(1);
        self.uses_remaining = Some(left);
        if left == 0 {
            self.status = ApprovalStatus::Used;
        }
    }
}

/// An approval to ask for, as [`Store::create_approval`](crate::store::Store::create_approval) takes it. Build it with
/// [`NewApproval::new`], which checks every field the same way for every store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewApproval {
    /// What it is bound to (computed from the fields below).
    pub binding: ApprovalBinding,
    /// The asking agent.
    pub agent_id: AgentId,
    /// Its owner.
    pub owner: UserId,
    /// The request's token.
    pub token_id: TokenId,
    /// The agents it acts under.
    pub delegation_chain: Vec<AgentId>,
    /// The task its token was minted for.
    pub task_id: Option<String>,
    /// The orchestrator that minted its task token.
    pub orchestrator: Option<AgentId>,
    /// The request's method.
    pub method: String,
    /// The request's path.
    pub path: String,
    /// The critical capability.
    pub capability: String,
    /// The handler's details: a JSON object.
    pub details: Option<Value>,
    /// What the person reads.
    pub binding_message: String,
    /// How long it waits for a decision.
    pub lifetime: Duration,
    /// The most approvals the agent (all its tokens) may have pending: beyond that
    /// [`Store::request_approval`](crate::store::Store::request_approval) refuses ([`Requested::TooMany`]) and keeps nothing.
    /// [`NewApproval::new`] sets [`DEFAULT_MAX_PENDING`]; `None` for no bound.
    pub max_pending: Option<u32>,
}

impl NewApproval {
    /// The approval `principal` (an agent's) needs for `action`, waiting `lifetime` for a
    /// decision. Refuses ([`InputError::Invalid`](crate::error::InputError::Invalid)) a session principal, a message longer
    /// than [`MAX_MESSAGE`] bytes or that [`check_readable`] refuses (blank, leading or
    /// trailing spaces, runs of spaces, whitespace but U+0020, blank-looking or hidden
    /// characters), details that are
    /// not a JSON object or longer than [`MAX_DETAILS`], and a lifetime of zero or over
    /// [`MAX_LIFETIME`].
    pub fn new(
        principal: &ExecutionPrincipal,
        action: &CriticalAction,
        lifetime: Duration,
    ) -> Result<Self, StoreError> {
        let (Some(agent), Some(token)) = (principal.agent_ref(), principal.token_id()) else {
            return Err(StoreError::invalid(
                "only an agent's request asks for an approval",
            ));
        };
        let new = Self {
            binding: ApprovalBinding::new(
                token,
                action.capability(),
                action.method(),
                action.path(),
                action.details_value(),
                &action.binding_message(),
            ),
            agent_id: agent.id().clone(),
            owner: principal.user_id().clone(),
            token_id: token.clone(),
            delegation_chain: principal
                .delegation_chain()
                .iter()
                .map(|link| link.agent().id().clone())
                .collect(),
            task_id: principal.task_id().map(str::to_owned),
            orchestrator: principal.orchestrator().map(|o| o.id().clone()),
            method: action.method().to_owned(),
            path: action.path().to_owned(),
            capability: action.capability().to_owned(),
            details: action.details_value().cloned(),
            binding_message: action.binding_message(),
            lifetime,
            max_pending: Some(DEFAULT_MAX_PENDING),
        };
        new.validate()?;
        Ok(new)
    }

    /// The checks every store applies before keeping it ([`NewApproval::new`] applied them
    /// already; a store checks again what it is handed).
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |message: &str| Err(StoreError::invalid(message.to_owned()));
        let message = &self.binding_message;
        if message.is_empty() || message.len() > MAX_MESSAGE {
            return invalid("binding message: 1-200 bytes");
        }
        if let Err(why) = check_readable(message) {
            return Err(StoreError::invalid(format!(
                "binding message: {why} (what a person reads must be all there is)"
            )));
        }
        match &self.details {
            None => {}
            Some(details @ Value::Object(_)) if canonical_json(details).len() > MAX_DETAILS => {
                return invalid("details: at most 4096 bytes of JSON");
            }
            Some(Value::Object(_)) => {}
            Some(_) => return invalid("details: a JSON object"),
        }
        if self.lifetime.is_zero() || self.lifetime > MAX_LIFETIME {
            return invalid("approval lifetime: more than 0 and at most 1 day");
        }
        if self.method.is_empty()
            || self.method.len() > 32
            || !self
                .method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return invalid("method: an HTTP method");
        }
        if self.path.len() > 2_048 || self.path.chars().any(is_hidden_char) {
            return invalid("path: at most 2048 bytes, no hidden characters");
        }
        if crate::ceiling::Capability::parse(&self.capability).is_err() {
            return invalid("capability: a capability name such as payments:send");
        }
        Ok(())
    }

    /// The approval to store: pending, with this id ([`ApprovalId::random`]), created `now`
    /// and expiring its lifetime later.
    pub fn into_pending(self, id: ApprovalId, now: OffsetDateTime) -> Result<Approval, StoreError> {
        let expires_at = crate::store::validate::later(now, self.lifetime)?;
        Ok(Approval {
            id,
            binding: self.binding,
            agent_id: self.agent_id,
            owner: self.owner,
            token_id: self.token_id,
            delegation_chain: self.delegation_chain,
            method: self.method,
            path: self.path,
            capability: self.capability,
            details: self.details,
            binding_message: self.binding_message,
            status: ApprovalStatus::Pending,
            created_at: now,
            expires_at,
            decided_by: None,
            decided_at: None,
            uses: None,
            uses_remaining: None,
            task_id: self.task_id,
            orchestrator: self.orchestrator,
        })
    }
}

/// What an approval admits: a number of requests (default 1) until it expires — when the
/// pending approval would have, or a window from the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalBounds {
    uses: u32,
    valid_for: Option<Duration>,
}

impl Default for ApprovalBounds {
    /// Single use, until the pending approval's expiry.
    fn default() -> Self {
        Self {
            uses: 1,
            valid_for: None,
        }
    }
}

impl ApprovalBounds {
    /// Admits `n` requests (1 to [`MAX_USES`]).
    pub fn uses(mut self, n: u32) -> Self {
        self.uses = n;
        self
    }

    /// Stays usable for `window` from the decision (at most [`MAX_LIFETIME`]), instead of
    /// until the pending approval's expiry.
    pub fn valid_for(mut self, window: Duration) -> Self {
        self.valid_for = Some(window);
        self
    }

    /// The uses it admits.
    pub fn uses_value(&self) -> u32 {
        self.uses
    }

    /// The window from the decision, if one was set.
    pub fn window(&self) -> Option<Duration> {
        self.valid_for
    }

    pub(crate) fn validate(&self) -> Result<(), StoreError> {
        if self.uses == 0 || self.uses > MAX_USES {
            return Err(StoreError::invalid(format!("uses: 1 to {MAX_USES}")));
        }
        if self
            .valid_for
            .is_some_and(|window| window.is_zero() || window > MAX_LIFETIME)
        {
            return Err(StoreError::invalid(
                "valid for: more than 0 and at most 1 day",
            ));
        }
        Ok(())
    }
}

/// A person's answer to a pending approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Approve, within these bounds.
    Approve(ApprovalBounds),
    /// Deny.
    Deny,
    /// Withdraw an approval given earlier, while it is approved and unexpired: it is stored
    /// `denied` with no uses left (its `decided_by` and `uses` stay the approver's), so it
    /// admits nothing more and matching retries are refused with `approval_denied` until it
    /// expires.
    Revoke,
}

impl Decision {
    /// Applies the decision, made by `by` at `now`, to a pending, unexpired approval, or says
    /// why not ([`Conflict::ApprovalNotPending`](crate::error::Conflict::ApprovalNotPending), or [`InputError::Invalid`](crate::error::InputError::Invalid) for bounds
    /// out of range). A store applies it to what it read and stores the result only if the
    /// approval is still pending then.
    pub fn apply(
        &self,
        approval: &mut Approval,
        by: &UserId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if let Self::Approve(bounds) = self {
            bounds.validate()?;
        }
        let status = approval.status_at(now);
        if *self == Self::Revoke {
            if status != ApprovalStatus::Approved {
                return Err(StoreError::Conflict(Conflict::ApprovalNotApproved {
                    id: approval.id.to_string(),
                    status: status.as_str(),
                }));
            }
            approval.status = ApprovalStatus::Denied;
            approval.uses_remaining = Some(0);
            return Ok(());
        }
        if status != ApprovalStatus::Pending {
            return Err(StoreError::Conflict(Conflict::ApprovalNotPending {
                id: approval.id.to_string(),
                status: status.as_str(),
            }));
        }
        approval.decided_by = Some(by.clone());
        approval.decided_at = Some(now);
        match self {
            Self::Approve(bounds) => {
                approval.status = ApprovalStatus::Approved;
                approval.uses = Some(bounds.uses);
                approval.uses_remaining = Some(bounds.uses);
                if let Some(window) = bounds.valid_for {
                    approval.expires_at = crate::store::validate::later(now, window)?;
                }
            }
            Self::Deny | Self::Revoke => approval.status = ApprovalStatus::Denied,
        }
        Ok(())
    }
}

/// Which approvals a list shows; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalFilter {
    /// Only this agent's.
    pub agent: Option<AgentId>,
    /// Only approvals asked for this owner's agents.
    pub owner: Option<UserId>,
    /// Only those in this status now (see [`Approval::status_at`]).
    pub status: Option<ApprovalStatus>,
    /// Only those with this binding.
    pub binding: Option<ApprovalBinding>,
    /// Only those of these agents (an empty list: none).
    pub agents: Option<Vec<AgentId>>,
    /// Only the newest this many ([`ApprovalFilter::last`]); every one if `None`.
    pub last: Option<usize>,
}

impl ApprovalFilter {
    /// Every approval.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only this agent's.
    pub fn agent(mut self, agent: impl Into<AgentId>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    /// Only this owner's agents'.
    pub fn owner(mut self, owner: impl Into<UserId>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Only those in `status` now.
    pub fn status(mut self, status: ApprovalStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only those with this binding.
    pub fn binding(mut self, binding: ApprovalBinding) -> Self {
        self.binding = Some(binding);
        self
    }

    /// Only those of these agents: what [`Managed::approvals`](crate::store::Managed::approvals)
    /// narrows a list to, the agents the user may see.
    pub fn agents(mut self, agents: impl IntoIterator<Item = AgentId>) -> Self {
        self.agents = Some(agents.into_iter().collect());
        self
    }

    /// Only the newest `n`.
    pub fn last(mut self, n: usize) -> Self {
        self.last = Some(n);
        self
    }

    /// Whether `approval` passes, at `now` (every field but [`ApprovalFilter::last`]).
    pub fn matches(&self, approval: &Approval, now: OffsetDateTime) -> bool {
        self.agents
            .as_ref()
            .is_none_or(|agents| agents.contains(&approval.agent_id))
            && self.agent.as_ref().is_none_or(|a| *a == approval.agent_id)
            && self.owner.as_ref().is_none_or(|o| *o == approval.owner)
            && self.status.is_none_or(|s| s == approval.status_at(now))
            && self.binding.as_ref().is_none_or(|b| *b == approval.binding)
    }

    /// Those of `approvals` that pass at `now`, as a backend lists them: newest first (by
    /// creation, then id, the greatest first), at most [`ApprovalFilter::last`].
    pub fn select<'a>(
        &self,
        approvals: impl IntoIterator<Item = &'a Approval>,
        now: OffsetDateTime,
    ) -> Vec<Approval> {
        let mut listed: Vec<Approval> = approvals
            .into_iter()
            .filter(|a| self.matches(a, now))
            .cloned()
            .collect();
        listed.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        listed.truncate(self.last.unwrap_or(usize::MAX));
        listed
    }
}

/// What asking for an approval found or made: see [`Store::request_approval`](crate::store::Store::request_approval).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Requested {
    /// An approved approval of the same binding stood (given after the caller's
    /// [`Store::consume_approval`](crate::store::Store::consume_approval) found none): one use of it was spent by this call,
    /// and the request is admitted. Returned as [`Store::consume_approval`](crate::store::Store::consume_approval) returns it
    /// (its uses left after this one).
    Approved(Approval),
    /// A new pending approval, made by this call: only its caller tells the person and audits
    /// `approval_requested`.
    Created(Approval),
    /// A pending approval of the same binding was there already: named again, nothing new.
    Pending(Approval),
    /// The newest approval of the same binding is denied and unexpired: the request is refused.
    Denied(Approval),
    /// The agent has [`NewApproval::max_pending`] approvals pending already: nothing kept,
    /// nobody told; one of them expires in `retry_after`.
    TooMany {
        /// Until the soonest of them expires.
        retry_after: Duration,
    },
}
