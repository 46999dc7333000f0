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
//! one atomic step ([`Store::request_approval`](crate::store::Store::request_approval)), so of many concurrent identical
//! requests one creates (and alone tells the person) and the others are named it, and a
//! retry racing the person's approval spends that approval rather than asking again. Approved, it admits a number of requests (default 1:
//! [`ApprovalBounds::uses`]) until it expires: by default when the pending approval would
//! have, or a window from the decision ([`ApprovalBounds::valid_for`]). Denied, matching
//! requests are refused with `approval_denied` until it expires; after that a request asks
//! anew. Spending a use is atomic ([`Store::consume_approval`](crate::store::Store::consume_approval)): of many concurrent
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
//! store. [`Store::purge_approvals`](crate::store::Store::purge_approvals) deletes approvals expired longer ago than a
//! retention.
//!
//! # Storage
//!
//! A [`Store`](crate::store::Store) keeps approvals through its backend's approval methods
//! ([`Backend::request_approval`](crate::store::Backend::request_approval) and the others,
//! feature `approval`): the in-memory backend in a list behind a lock, the SQL backends in the
//! `agent_auth_approvals` table.
//!
//! ```
//! use tower_agent_auth::approval::{ApprovalBounds, ApprovalRejection, CriticalAction, Supervision};
//! use tower_agent_auth::ceiling::{CapabilitySet, Policy};
//! use tower_agent_auth::principal::{AgentRef, AgentType};
//! use tower_agent_auth::store::{Managed, MemoryStore, MemoryUserDirectory, NewAgent, NewToken, UserRecord};
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

mod binding;
mod deprecated;
mod gate;
mod model;
mod notify;
mod rejection;
mod supervision;
mod text;

pub use binding::{ApprovalBinding, canonical_json};
#[allow(deprecated)]
pub use deprecated::ApprovalGate;
pub use gate::ApprovalRequest;
pub use model::{
    Approval, ApprovalBounds, ApprovalFilter, ApprovalId, ApprovalStatus, Decision, NewApproval,
    Requested,
};
pub use notify::ApprovalNotifier;
pub use rejection::{APPROVAL_ID, ApprovalRejection, ApprovalSummary};
pub(crate) use supervision::approval_event;
pub use supervision::{CriticalAction, Supervision};
pub(crate) use text::rfc3339;
pub use text::{check_readable, is_blank_looking};

use std::time::Duration;

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
