//! The audit trail (feature `audit`): what each identity did, and what was done to it.
//!
//! An [`AuditEvent`] records one thing: a request an agent made, a token that was refused, or a
//! lifecycle change (a credential issued, rotated or revoked, an agent disabled, a grant changed),
//! with the identity, credential, acting user and delegation chain involved. Events never hold a
//! raw token, a code or any other secret — only ids.
//!
//! Events go through an [`AuditWriter`]: a bounded queue drained in batches by a background
//! task into an [`AuditSink`], so recording costs the request path a channel send. By default a
//! full queue makes the recorder wait (backpressure) and no event is ever dropped;
//! [`Overflow::DropNewest`] trades that for never waiting, and counts what it drops.
//! [`AuditWriter::shutdown`] drains the queue.
//!
//! ```
//! use std::sync::Arc;
//! use tower_agent_auth::audit::{AuditAction, AuditEvent, AuditFilter, AuditQuery, AuditWriter, MemoryAuditSink, Outcome, WriterOptions};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sink = Arc::new(MemoryAuditSink::default());
//! let writer = AuditWriter::spawn(sink.clone(), WriterOptions::default());
//! let at = time::OffsetDateTime::now_utc();
//! writer.record(AuditEvent::new(at, AuditAction::Request, Outcome::Success).identity("agt_1")).await;
//! writer.record(AuditEvent::new(at, AuditAction::Request, Outcome::Success).identity("agt_2")).await;
//! writer.shutdown().await;
//!
//! let mine = sink.events(&AuditFilter::identity("agt_1")).await?;
//! assert_eq!(mine.len(), 1);
//! # Ok(()) }
//! ```

mod memory;
mod writer;

pub use memory::MemoryAuditSink;
pub use writer::{AuditWriter, Overflow, WriterOptions};

use time::OffsetDateTime;

use crate::principal::{AgentId, TokenId, UserId};
use crate::resolver::InvalidReason;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// An agent-authenticated request.
    Request,
    /// A presented token was refused (its credential is known: revoked, expired, …).
    TokenRefused,
    /// A credential was issued.
    CredentialIssued,
    /// A credential was rotated.
    CredentialRotated,
    /// A credential was revoked.
    CredentialRevoked,
    /// An identity was created.
    IdentityCreated,
    /// An identity was disabled.
    IdentityDisabled,
    /// An identity was enabled.
    IdentityEnabled,
    /// An identity was deleted.
    IdentityDeleted,
    /// A user's access to an identity changed.
    GrantChanged,
}

impl AuditAction {
    /// A stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::TokenRefused => "token_refused",
            Self::CredentialIssued => "credential_issued",
            Self::CredentialRotated => "credential_rotated",
            Self::CredentialRevoked => "credential_revoked",
            Self::IdentityCreated => "identity_created",
            Self::IdentityDisabled => "identity_disabled",
            Self::IdentityEnabled => "identity_enabled",
            Self::IdentityDeleted => "identity_deleted",
            Self::GrantChanged => "grant_changed",
        }
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
    /// The identity (agent) it concerns.
    pub identity: Option<AgentId>,
    /// The credential (token) used or changed.
    pub credential: Option<TokenId>,
    /// The human acting, or acted for.
    pub actor: Option<UserId>,
    /// Delegating identities, outermost first.
    pub delegation_chain: Vec<AgentId>,
    /// What happened.
    pub action: AuditAction,
    /// How it ended.
    pub outcome: Outcome,
    /// The request, for request events.
    pub request: Option<RequestSummary>,
    /// The task, if the credential was minted for one.
    pub task_id: Option<String>,
    /// Before/after for lifecycle changes, in a few words.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event with nothing but its time, action and outcome.
    pub fn new(at: OffsetDateTime, action: AuditAction, outcome: Outcome) -> Self {
        Self {
            at,
            identity: None,
            credential: None,
            actor: None,
            delegation_chain: Vec::new(),
            action,
            outcome,
            request: None,
            task_id: None,
            detail: None,
        }
    }

    /// The identity it concerns.
    pub fn identity(mut self, identity: impl Into<AgentId>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// The credential used or changed.
    pub fn credential(mut self, credential: impl Into<TokenId>) -> Self {
        self.credential = Some(credential.into());
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

/// Why the audit trail could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The sink's backend failed.
    #[error("audit sink unavailable: {0}")]
    Unavailable(#[source] crate::resolver::BoxError),
}

/// Where batches of events go.
#[async_trait::async_trait]
pub trait AuditSink: Send + Sync + 'static {
    /// Stores a batch, in order. An error makes the writer retry the same batch.
    async fn write_batch(&self, events: &[AuditEvent]) -> Result<(), AuditError>;
}

/// Which events a query returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only events of these identities (empty: any).
    pub identities: Vec<AgentId>,
    /// Only events of this credential.
    pub credential: Option<TokenId>,
    /// At or after.
    pub since: Option<OffsetDateTime>,
    /// Before.
    pub until: Option<OffsetDateTime>,
}

impl AuditFilter {
    /// The events of one identity.
    pub fn identity(identity: impl Into<AgentId>) -> Self {
        Self {
            identities: vec![identity.into()],
            ..Self::default()
        }
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        (self.identities.is_empty()
            || event
                .identity
                .as_ref()
                .is_some_and(|id| self.identities.contains(id)))
            && self
                .credential
                .as_ref()
                .is_none_or(|c| event.credential.as_ref() == Some(c))
            && self.since.is_none_or(|since| event.at >= since)
            && self.until.is_none_or(|until| event.at < until)
    }
}

/// Reading the trail back: events passing a filter, in the order they were recorded.
#[async_trait::async_trait]
pub trait AuditQuery: Send + Sync {
    /// The matching events, oldest first.
    async fn events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError>;
}
