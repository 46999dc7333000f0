//! Supervised agents and the human-approval gate: a critical action of a supervised agent
//! waits until a person approves that very action, out of band.
//!
//! The host marks some capabilities critical. When a principal that
//! [`is_supervised`](crate::ExecutionPrincipal::is_supervised) (its agent, any agent it acts
//! under, or the orchestrator that minted its task token is
//! [`AgentType::Supervised`](crate::principal::AgentType::Supervised); a thread-scoped child of
//! a supervised agent is supervised too) asks for one,
//! [`Supervision::check`] refuses the request with `403 approval_required` and records a
//! pending [`Approval`] of exactly what was asked: method, path, capability, agent, owner,
//! token, delegation chain, the task and the orchestrator that minted a task token (so the
//! person sees why it is supervised; every approval audit event carries the task id), the
//! handler's structured details (a JSON object) and a short
//! message for the person ("Pay 50 EUR to ACME"). An [`ApprovalNotifier`] tells the person;
//! they approve or deny it on another device — through
//! [`Managed::approve`](crate::store::Managed::approve) (the CLI's `agent-auth approval
//! approve`, the management API's `POST /api/approvals/{id}/approve`), which needs ownership
//! of the agent or an `admin` grant on it. The agent retries the same request; an approved
//! approval admits it and is spent. Sessions (people) and agents that are not supervised never
//! wait, and a capability outside the principal's ceiling stays an ordinary
//! `403 insufficient_scope`.
//!
//! An approval given can be withdrawn while it stands
//! ([`Managed::revoke_approval`](crate::store::Managed::revoke_approval), `agent-auth approval
//! revoke`, `POST /api/approvals/{id}/revoke`): it admits nothing more.
//!
//! # Binding
//!
//! An approval is bound to the request's token, capability, method, path, details (as
//! canonical JSON: keys sorted, no whitespace) and binding message, summed up by an
//! [`ApprovalBinding`]. A retry is admitted only if all of them are equal: the same payment to
//! another payee, worded otherwise for the person, or by another token of the same agent, asks
//! anew — what the person reads is what is bound. So an approval does not follow a rotated
//! token: the new token has a new id, so its retry asks for a new approval (the old token's,
//! still valid for its grace period, keeps its own).
//!
//! # Lifetime and bounds
//!
//! A pending approval expires after the [`Supervision::lifetime`] (10 minutes by default);
//! a request matching a pending one is refused again with the same id, so retrying never
//! piles up approvals: spending an approved one, finding a pending one and creating one are
//! one atomic step ([`ApprovalGate::request_approval`]), so of many concurrent identical
//! requests one creates (and alone tells the person) and the others are named it, and a
//! retry racing the person's approval spends that approval rather than asking again. Approved, it admits a number of requests (default 1:
//! [`ApprovalBounds::uses`]) until it expires: by default when the pending approval would
//! have, or a window from the decision ([`ApprovalBounds::valid_for`]). Denied, matching
//! requests are refused with `approval_denied` until it expires; after that a request asks
//! anew. Spending a use is atomic ([`ApprovalGate::consume_approval`]): of many concurrent
//! retries of a single-use approval, on any number of nodes, exactly one is admitted.
//!
//! # Bounds on what piles up
//!
//! An agent may have at most [`DEFAULT_MAX_PENDING`] approvals pending, all its tokens
//! together — delegated ones included, so minting children does not multiply the bound
//! ([`Supervision::max_pending`]); beyond that a request is refused with
//! [`ApprovalRejection::TooMany`] (`429`, `Retry-After`), nothing kept and nobody told. Lists
//! ([`Managed::approvals`](crate::store::Managed::approvals)) show the newest
//! [`DEFAULT_LISTED`] (at most [`MAX_LISTED`]) of the agents the user may see, filtered by the
//! store. [`ApprovalGate::purge_approvals`] deletes approvals expired longer ago than a
//! retention.
//!
//! # Storage
//!
//! [`ApprovalGate`] is the storage of approvals; every store of this crate implements it
//! ([`MemoryStore`](crate::store::MemoryStore), and the SQL stores in the
//! `agent_auth_approvals` table).
//!
//! ```
//! use tower_agent_auth::approval::{ApprovalBounds, ApprovalRejection, CriticalAction, Supervision};
//! use tower_agent_auth::ceiling::{CapabilitySet, Policy};
//! use tower_agent_auth::principal::{AgentRef, AgentType};
//! use tower_agent_auth::store::{AgentStore, Managed, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, TokenStore, UserRecord};
//! use tower_agent_auth::token::TokenFormat;
//! use tower_agent_auth::ExecutionPrincipal;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users = MemoryUserDirectory::new();
//! users.insert(UserRecord::new("alice", Policy::unrestricted()));
//! let store = MemoryStore::new(TokenFormat::new("acme")?, users);
//! let agent = store
//!     .create_agent(NewAgent::new("payer", "alice").with_type(AgentType::Supervised))
//!     .await?;
//! let token = store.create_token(&agent.id, NewToken::new("t")).await?;
//! // What the layer builds for a request with that token.
//! let principal = ExecutionPrincipal::agent_builder(
//!     "alice",
//!     AgentRef::new(agent.id.clone(), "payer").with_type(AgentType::Supervised),
//!     token.info.id.clone(),
//!     Policy::unrestricted(),
//! )
//! .build();
//!
//! let supervision = Supervision::new(store.clone(), CapabilitySet::parse(["payments:send"])?);
//! let pay = CriticalAction::new("payments:send", &http::Method::POST, "/payments")
//!     .details(serde_json::json!({"amount": 50, "currency": "EUR", "to": "ACME"}))
//!     .message("Pay 50 EUR to ACME");
//!
//! // Refused: a person must approve it first.
//! let Err(ApprovalRejection::Required(asked)) = supervision.check(&principal, &pay).await else {
//!     panic!("a supervised agent waits");
//! };
//! assert_eq!(asked.binding_message(), "Pay 50 EUR to ACME");
//!
//! // Alice approves it (on her phone), once.
//! Managed::new(&store, "alice").approve(asked.id(), ApprovalBounds::default()).await?;
//! assert!(supervision.check(&principal, &pay).await.is_ok());
//! // Spent: the next one asks again, with a new approval.
//! let Err(ApprovalRejection::Required(again)) = supervision.check(&principal, &pay).await else {
//!     panic!("single use");
//! };
//! assert_ne!(again.id(), asked.id());
//! # Ok(()) }
//! ```

mod memory;
mod notify;
mod rejection;
mod supervision;

pub(crate) use memory::MemoryApprovals;
pub use notify::ApprovalNotifier;
pub use rejection::{APPROVAL_ID, ApprovalRejection, ApprovalSummary};
pub(crate) use supervision::approval_event;
pub use supervision::{CriticalAction, Supervision};

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ExecutionPrincipal;
use crate::principal::{AgentId, TokenId, UserId};
use crate::store::{StoreError, is_hidden_char};

/// How long a pending approval waits for a decision unless configured otherwise: 10 minutes.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// The longest a pending approval may wait, and the longest window an approval may be given:
/// one day.
pub const MAX_LIFETIME: Duration = Duration::from_secs(86_400);
/// The most uses one approval may be given.
pub const MAX_USES: u32 = 1_000;
/// The most approvals one agent (all its tokens together) may have pending at once unless
/// configured otherwise
/// ([`Supervision::max_pending`]): 20.
pub const DEFAULT_MAX_PENDING: u32 = 20;
/// How many approvals a person's list shows unless asked otherwise
/// ([`Managed::approvals`](crate::store::Managed::approvals)): the newest 100.
pub const DEFAULT_LISTED: usize = 100;
/// The most approvals one list shows: 1 000.
pub const MAX_LISTED: usize = 1_000;
/// The longest binding message, in bytes.
pub const MAX_MESSAGE: usize = 200;
/// The longest details, as canonical JSON, in bytes.
pub const MAX_DETAILS: usize = 4_096;

/// The id of an approval, such as `apr_3f9a…`. Not secret: it is shown to the agent and the
/// person alike. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApprovalId(Arc<str>);

impl ApprovalId {
    /// A fresh id: `apr_` and 16 hex digits of CSPRNG output.
    pub fn random() -> Result<Self, StoreError> {
        crate::store::random_id("apr").map(Self::from)
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

/// What an approval is bound to, summed up: the SHA-256 of the token, capability, method, path,
/// canonical details and binding message. Two requests with the same binding ask for the same
/// thing, worded the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApprovalBinding(String);

impl ApprovalBinding {
    /// The binding of a request: these fields, each length-prefixed so that no two different
    /// requests run together into one text.
    pub fn new(
        token: &TokenId,
        capability: &str,
        method: &str,
        path: &str,
        details: Option<&Value>,
        message: &str,
    ) -> Self {
        let details = details.map(canonical_json).unwrap_or_default();
        let mut hash = Sha256::new();
        for field in [
            token.as_str(),
            capability,
            method,
            path,
            details.as_str(),
            message,
        ] {
            hash.update((field.len() as u64).to_be_bytes());
            hash.update(field.as_bytes());
        }
        Self(hex::encode(hash.finalize()))
    }

    /// The binding as 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A binding as a store kept it ([`ApprovalBinding::as_str`]).
    pub fn from_stored(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }
}

/// `value` as canonical JSON: object keys sorted, no whitespace. The same details give the
/// same text whatever order the handler built them in.
pub fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
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
}

/// An approval to ask for, as [`ApprovalGate::create_approval`] takes it. Build it with
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
    /// [`ApprovalGate::request_approval`] refuses ([`Requested::TooMany`]) and keeps nothing.
    /// [`NewApproval::new`] sets [`DEFAULT_MAX_PENDING`]; `None` for no bound.
    pub max_pending: Option<u32>,
}

impl NewApproval {
    /// The approval `principal` (an agent's) needs for `action`, waiting `lifetime` for a
    /// decision. Refuses ([`StoreError::InvalidInput`]) a session principal, a message longer
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
            return Err(StoreError::InvalidInput(
                "only an agent's request asks for an approval".into(),
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
        let invalid = |message: &str| Err(StoreError::InvalidInput(message.to_owned()));
        let message = &self.binding_message;
        if message.is_empty() || message.len() > MAX_MESSAGE {
            return invalid("binding message: 1-200 bytes");
        }
        if let Err(why) = check_readable(message) {
            return Err(StoreError::InvalidInput(format!(
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
        let expires_at = crate::store::prepare::later(now, self.lifetime)?;
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
            return Err(StoreError::InvalidInput(format!("uses: 1 to {MAX_USES}")));
        }
        if self
            .valid_for
            .is_some_and(|window| window.is_zero() || window > MAX_LIFETIME)
        {
            return Err(StoreError::InvalidInput(
                "valid for: more than 0 and at most 1 day".into(),
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
    /// why not ([`StoreError::ApprovalNotPending`], or [`StoreError::InvalidInput`] for bounds
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
                return Err(StoreError::ApprovalNotApproved {
                    id: approval.id.to_string(),
                    status: status.as_str(),
                });
            }
            approval.status = ApprovalStatus::Denied;
            approval.uses_remaining = Some(0);
            return Ok(());
        }
        if status != ApprovalStatus::Pending {
            return Err(StoreError::ApprovalNotPending {
                id: approval.id.to_string(),
                status: status.as_str(),
            });
        }
        approval.decided_by = Some(by.clone());
        approval.decided_at = Some(now);
        match self {
            Self::Approve(bounds) => {
                approval.status = ApprovalStatus::Approved;
                approval.uses = Some(bounds.uses);
                approval.uses_remaining = Some(bounds.uses);
                if let Some(window) = bounds.valid_for {
                    approval.expires_at = crate::store::prepare::later(now, window)?;
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
}

/// What asking for an approval found or made: see [`ApprovalGate::request_approval`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Requested {
    /// An approved approval of the same binding stood (given after the caller's
    /// [`ApprovalGate::consume_approval`] found none): one use of it was spent by this call,
    /// and the request is admitted. Returned as [`ApprovalGate::consume_approval`] returns it
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

/// What a store answers when `pending` approvals of the agent (their expiries) stand and at
/// most `max` may: [`Requested::TooMany`] with the wait until the soonest expires, or `None`.
pub fn too_many(
    max: Option<u32>,
    pending: impl IntoIterator<Item = OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<Requested> {
    let max = usize::try_from(max?).unwrap_or(usize::MAX);
    let expiries: Vec<OffsetDateTime> = pending.into_iter().collect();
    if expiries.len() < max {
        return None;
    }
    let soonest = expiries.into_iter().min().unwrap_or(now);
    let wait = (soonest - now).whole_seconds().max(1);
    Some(Requested::TooMany {
        retry_after: Duration::from_secs(u64::try_from(wait).unwrap_or(1)),
    })
}

/// What stands for a request among the approvals of its binding (any order), at `now`: the
/// newest pending or unexpired denied one decides (a denial after an expired pending one, a
/// new ask after an expired denial); `None` when a new approval is to be asked for. Every
/// store's [`ApprovalGate::request_approval`] decides with it.
pub fn standing<'a>(
    approvals: impl IntoIterator<Item = &'a Approval>,
    now: OffsetDateTime,
) -> Option<Requested> {
    approvals
        .into_iter()
        .filter(|a| {
            matches!(
                a.status_at(now),
                ApprovalStatus::Pending | ApprovalStatus::Denied
            )
        })
        .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
        .map(|a| match a.status_at(now) {
            ApprovalStatus::Pending => Requested::Pending(a.clone()),
            _ => Requested::Denied(a.clone()),
        })
}

/// The storage of approvals. Every store of this crate implements it; times are the store's
/// clock's.
#[async_trait::async_trait]
pub trait ApprovalGate: Send + Sync {
    /// Keeps a new pending approval, expiring `new.lifetime` from now, with a fresh id.
    async fn create_approval(&self, new: NewApproval) -> Result<Approval, StoreError>;

    /// Spends a use of an approved, unexpired approval of `new`'s binding
    /// ([`Requested::Approved`]), or finds what stands for the binding ([`standing`]) or, if
    /// nothing does, keeps `new` as a new pending approval ([`Requested::Created`]) — as one
    /// atomic step: of many concurrent identical requests, on any number of nodes, one
    /// creates and every other is named the same approval, and none creates a second pending
    /// approval while an approved one stands (a person approving between the caller's
    /// [`ApprovalGate::consume_approval`] and this call). The stores of this crate implement
    /// it atomically (a lock held across the spending, the look and the insert). The
    /// default, for a store written before it, consumes, lists and then creates: separate
    /// steps, so two racing requests may both create, and it does not bound
    /// [`NewApproval::max_pending`].
    async fn request_approval(&self, new: NewApproval) -> Result<Requested, StoreError> {
        if let Some(used) = self.consume_approval(&new.binding).await? {
            return Ok(Requested::Approved(used));
        }
        let of_binding = ApprovalFilter::all().binding(new.binding.clone());
        let mut found = self
            .list_approvals(&of_binding.clone().status(ApprovalStatus::Pending))
            .await?;
        found.extend(
            self.list_approvals(&of_binding.status(ApprovalStatus::Denied))
                .await?,
        );
        // Both lists hold only pending or unexpired denied ones: any instant past them all
        // keeps their status as read.
        let at = found
            .iter()
            .map(|a| a.created_at)
            .min()
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        match standing(&found, at) {
            Some(requested) => Ok(requested),
            None => Ok(Requested::Created(self.create_approval(new).await?)),
        }
    }

    /// The approval with this id.
    async fn approval(&self, id: &ApprovalId) -> Result<Option<Approval>, StoreError>;

    /// The approvals passing `filter`, newest first (those of one instant by id, the
    /// greatest first), at most [`ApprovalFilter::last`] of them. The stores of this crate
    /// filter in the database, by an index on (agent, status, created).
    async fn list_approvals(&self, filter: &ApprovalFilter) -> Result<Vec<Approval>, StoreError>;

    /// Approves or denies a pending, unexpired approval as `by`, now, or revokes an approved,
    /// unexpired one ([`Decision::Revoke`]; [`StoreError::ApprovalNotApproved`] otherwise).
    /// [`StoreError::UnknownApproval`] if there is none with this id,
    /// [`StoreError::ApprovalNotPending`] if it was decided already or expired: a decision is
    /// made once.
    async fn decide_approval(
        &self,
        id: &ApprovalId,
        by: &UserId,
        decision: Decision,
    ) -> Result<Approval, StoreError>;

    /// Deletes the approvals that expired longer than `older_than` ago — pending, approved,
    /// denied and used ones alike: every approval expires at most a day after its decision,
    /// so none still usable goes — and says how many. The retention of approvals, as
    /// [`TokenStore::purge`](crate::store::TokenStore::purge) is of tokens (the CLI's
    /// `agent-auth approval purge --older-than 30d`). The default, for a store written
    /// before, deletes nothing.
    async fn purge_approvals(&self, older_than: Duration) -> Result<usize, StoreError> {
        let _ = older_than;
        Ok(0)
    }

    /// Spends one use of an approved, unexpired approval with this binding and returns it
    /// (its uses left after this one); `None` if there is none. Atomic: of concurrent
    /// consumers of an approval with `n` uses left, at most `n` succeed, across every
    /// connection and node.
    async fn consume_approval(
        &self,
        binding: &ApprovalBinding,
    ) -> Result<Option<Approval>, StoreError>;
}

/// Whether `c` shows as blank space without being U+0020: no-break, ideographic, Ogham,
/// Braille-blank and Hangul-filler spaces, the typographic spaces U+2000–U+200A, and every
/// other Unicode whitespace.
pub fn is_blank_looking(c: char) -> bool {
    (c.is_whitespace() && c != ' ')
        || matches!(
            c,
            '\u{00A0}' | '\u{1680}' | '\u{2000}'
                ..='\u{200A}'
                    | '\u{202F}'
                    | '\u{205F}'
                    | '\u{2800}'
                    | '\u{3000}'
                    | '\u{3164}'
                    | '\u{FFA0}'
                    | '\u{115F}'
                    | '\u{1160}'
        )
}

/// Checks a text a person reads to decide — a binding message, or a part of one such as a
/// payee — so that what they read is all there is: not blank, no leading or trailing space,
/// no whitespace but single U+0020 spaces (no runs: `"ACME" + 35 spaces + "x"` would hide
/// the `x`), no blank-looking ([`is_blank_looking`]), control, invisible or
/// bidirectional-override characters. The error says which rule, in a few words.
pub fn check_readable(text: &str) -> Result<(), &'static str> {
    if text.trim().is_empty() {
        return Err("blank");
    }
    if text.starts_with(' ') || text.ends_with(' ') {
        return Err("leading or trailing space");
    }
    if text.contains("  ") {
        return Err("runs of spaces");
    }
    if text.chars().any(is_blank_looking) {
        return Err("whitespace other than single spaces, or blank-looking characters");
    }
    if text.chars().any(is_hidden_char) {
        return Err("control, invisible or bidirectional-override characters");
    }
    Ok(())
}

/// An instant as RFC 3339, as answers and audit details show it.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_text_that_reads_as_it_is_passes() {
        for ok in ["Pay 50 EUR to ACME", "ACME Corp", "Zahle 50 € an Müller"] {
            assert_eq!(check_readable(ok), Ok(()), "{ok:?}");
        }
        let padded = format!("ACME{}x", " ".repeat(35));
        for bad in [
            "ACME\u{00a0}",
            "ACME\u{3000}",
            "ACME\u{2800}",
            "ACME\u{1680}",
            "ACME\u{2007}",
            "ACME\u{202f}",
            "ACME\u{205f}",
            "ACME\u{3164}",
            " ACME",
            "ACME ",
            "AC\nME",
            "AC\tME",
            padded.as_str(),
            "   ",
            "",
            "ACME\u{202e}",
        ] {
            assert!(check_readable(bad).is_err(), "{bad:?}");
        }
    }
}
