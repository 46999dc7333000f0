//! The records stores keep: agents and token metadata.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::ceiling::{CapabilitySet, Policy};
use crate::principal::{AgentId, TokenId, UserId};
use crate::token::RawToken;

/// Whether an agent may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentStatus {
    /// Its tokens resolve.
    Active,
    /// Every token of the agent is refused until it is enabled again.
    Disabled,
}

impl AgentStatus {
    /// `active` or `disabled`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
}

/// An agent: a machine identity acting for its owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Agent {
    /// Stable id.
    pub id: AgentId,
    /// Unique slug, embedded in its tokens.
    pub slug: Arc<str>,
    /// The user it acts for.
    pub owner: UserId,
    /// Active or disabled.
    pub status: AgentStatus,
    /// The agent's own layer of the capability ceiling.
    pub policy: Arc<Policy>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// After this instant none of its tokens resolve.
    pub expires_at: Option<OffsetDateTime>,
}

/// What to create an agent with.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub(crate) slug: String,
    pub(crate) owner: UserId,
    pub(crate) policy: Policy,
    pub(crate) expires_at: Option<OffsetDateTime>,
}

impl NewAgent {
    /// An active agent with no policy of its own (bounded by its owner's role only).
    pub fn new(slug: impl Into<String>, owner: impl Into<UserId>) -> Self {
        Self {
            slug: slug.into(),
            owner: owner.into(),
            policy: Policy::unrestricted(),
            expires_at: None,
        }
    }

    /// The agent's policy (its layer of the ceiling).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// An instant after which none of the agent's tokens resolve.
    pub fn with_expires_at(mut self, expires_at: OffsetDateTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }
}

/// Metadata of a token: everything but the secret and its hash.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// Stable id, used to revoke it.
    pub id: TokenId,
    /// The agent it belongs to.
    pub agent_id: AgentId,
    /// A harmless beginning of the token (`acme_bot_1a2b3c4d…`) to recognise it by.
    pub display_prefix: String,
    /// Free text set at creation.
    pub label: String,
    /// Its layer of the ceiling; `None` means the token does not narrow.
    pub capabilities: Option<CapabilitySet>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it stops resolving.
    pub expires_at: Option<OffsetDateTime>,
    /// Last successful use, updated at most once per coalescing interval.
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// What to mint a token with.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub(crate) label: String,
    pub(crate) capabilities: Option<CapabilitySet>,
    pub(crate) expires_in: Option<time::Duration>,
}

impl NewToken {
    /// A token with this label, no narrowing capabilities and no expiry.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            ..Self::default()
        }
    }

    /// Narrows the token to these capabilities; they must lie within the agent's policy.
    pub fn with_capabilities(mut self, capabilities: CapabilitySet) -> Self {
        self.capabilities = Some(capabilities);
        self
    }

    /// The token stops resolving this long after creation.
    pub fn expires_in(mut self, ttl: time::Duration) -> Self {
        self.expires_in = Some(ttl);
        self
    }
}

/// A freshly minted token: the raw secret (shown once) and its metadata.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The secret. Hand it to the agent now: only its hash is kept.
    pub token: RawToken,
    /// Its metadata.
    pub info: TokenInfo,
}
