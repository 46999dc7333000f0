//! Token metadata as the store keeps it, and what to mint or import one with.

use time::OffsetDateTime;

use crate::ceiling::CapabilitySet;
use crate::principal::{AgentId, TokenId, UserId};
use crate::token::{RawToken, TokenHash};

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
    /// Who created it, if known.
    pub created_by: Option<UserId>,
    /// When it stops resolving. A token with `expires_on_completion` gets this set when its
    /// last operation is used.
    pub expires_at: Option<OffsetDateTime>,
    /// Last successful use, updated at most once per coalescing interval.
    pub last_used_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// When [`complete_task`](crate::store::Store::complete_task) ended it. Once
    /// set the token is refused as `expired` whatever a node's clock reads (a clock behind this
    /// instant does not admit it again); its `expires_at` is left as it was minted. (Not the
    /// instant an `expires_on_completion` token spent its last use: that ends it by its
    /// `expires_at`, with no task completed.)
    pub task_completed_at: Option<OffsetDateTime>,
    /// How many requests it may make in all; `None` for no limit.
    pub max_operations: Option<u64>,
    /// How many of those are left.
    pub operations_remaining: Option<u64>,
    /// Whether using the last operation expires the token.
    pub expires_on_completion: bool,
    /// The task the token was minted for.
    pub task_id: Option<String>,
    /// What the token is meant to do, in the words of whoever minted it.
    pub intent: Option<String>,
    /// The orchestrator agent that minted the token for its task, if one did: it must stay
    /// active, and its policy is a layer of the token's ceiling.
    pub orchestrator: Option<AgentId>,
    /// Where the task runs (e.g. `staging`), as the host application names it.
    pub environment: Option<String>,
    /// The person on whose behalf an orchestrator minted the token: they must stay active in
    /// the user directory, and their role is a layer of the token's ceiling.
    pub delegated_by: Option<UserId>,
    /// The token this one was delegated from; `None` for a token minted directly.
    pub delegation_parent: Option<TokenId>,
    /// How many delegations lie between this token and one minted directly (0 for that one).
    pub delegation_depth: u32,
    /// The resource (RFC 8707) the token is bound to, its audience: a layer told another
    /// resource refuses it. `None` for a token usable at any resource (CLI, REST).
    pub resource: Option<String>,
    /// The OAuth client the token was issued to (introspection's `client_id`), if an OAuth
    /// grant issued it.
    pub client_id: Option<String>,
}

/// Where a token stands at an instant ([`TokenInfo::status_at`]): what `token list` shows and
/// what an audit detail names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenStatus {
    /// Resolves (as far as the token itself goes: its agent and chain are checked apart).
    Live,
    /// Revoked.
    Revoked,
    /// Its task was completed ([`TokenInfo::task_completed_at`]).
    Completed,
    /// Past its `expires_at`.
    Expired,
    /// A use-limited token with no use left.
    Exhausted,
}

impl TokenStatus {
    /// `live`, `revoked`, `completed`, `expired` or `exhausted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Revoked => "revoked",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Exhausted => "exhausted",
        }
    }
}

impl std::fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TokenInfo {
    /// A live token of `agent_id` without a label, capabilities, expiry, use limit, task or
    /// delegation: for a backend that reads records from its own rows (set the other fields on
    /// the result; the store builds the records it hands a backend).
    pub fn new(
        id: impl Into<TokenId>,
        agent_id: impl Into<AgentId>,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id: id.into(),
            agent_id: agent_id.into(),
            display_prefix: String::new(),
            label: String::new(),
            capabilities: None,
            created_at,
            created_by: None,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            task_completed_at: None,
            max_operations: None,
            operations_remaining: None,
            expires_on_completion: false,
            task_id: None,
            intent: None,
            orchestrator: None,
            environment: None,
            delegated_by: None,
            delegation_parent: None,
            delegation_depth: 0,
            resource: None,
            client_id: None,
        }
    }

    /// Whether the token is live at `now`: not revoked, its task not completed, not expired
    /// (a spent one is still live: it may be rotated, and its children resolve).
    pub fn is_live_at(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none()
            && self.task_completed_at.is_none()
            && self.expires_at.is_none_or(|at| at > now)
    }

    /// The token's own status at `now`, the first that applies of revoked, completed (its task
    /// was), expired and exhausted; else live.
    pub fn status_at(&self, now: OffsetDateTime) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.task_completed_at.is_some() {
            TokenStatus::Completed
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenStatus::Expired
        } else if self.operations_remaining == Some(0) {
            TokenStatus::Exhausted
        } else {
            TokenStatus::Live
        }
    }
}

/// What to mint a token with.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub(crate) label: String,
    pub(crate) capabilities: Option<CapabilitySet>,
    pub(crate) expires_in: Option<std::time::Duration>,
    pub(crate) created_by: Option<UserId>,
    pub(crate) max_operations: Option<u64>,
    pub(crate) expires_on_completion: bool,
    pub(crate) task_id: Option<String>,
    pub(crate) intent: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) client_id: Option<String>,
    /// Set by [`crate::delegation`] only: the fields a delegated or orchestrated token records.
    pub(crate) lineage: Lineage,
}

/// What a token inherits from whoever lent it authority; only [`crate::delegation`] fills it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Lineage {
    pub(crate) orchestrator: Option<AgentId>,
    pub(crate) delegated_by: Option<UserId>,
    pub(crate) parent: Option<TokenId>,
    pub(crate) depth: u32,
    /// The latest expiry the token may have (its delegator's effective expiry).
    pub(crate) expires_by: Option<OffsetDateTime>,
}

impl NewToken {
    /// A token with this label, no narrowing capabilities, the agent type's default lifetime
    /// and no use limit.
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

    /// The token stops resolving this long after creation; more than the agent type's maximum
    /// is clamped to the maximum.
    pub fn expires_in(mut self, ttl: std::time::Duration) -> Self {
        self.expires_in = Some(ttl);
        self
    }

    /// Records who minted the token.
    pub fn created_by(mut self, user: impl Into<UserId>) -> Self {
        self.created_by = Some(user.into());
        self
    }

    /// Admits exactly `n` requests (`n ≥ 1`), counted atomically across every node.
    pub fn max_operations(mut self, n: u64) -> Self {
        self.max_operations = Some(n);
        self
    }

    /// Expires the token when its last operation is used.
    pub fn expires_on_completion(mut self) -> Self {
        self.expires_on_completion = true;
        self
    }

    /// The task the token is minted for.
    pub fn task_id(mut self, task: impl Into<String>) -> Self {
        self.task_id = Some(task.into());
        self
    }

    /// What the token is meant to do.
    pub fn intent(mut self, intent: impl Into<String>) -> Self {
        self.intent = Some(intent.into());
        self
    }

    /// Where the task runs (e.g. `staging`), as the host application names it.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Binds the token to a resource (RFC 8707), its audience: a layer told another resource
    /// refuses it.
    pub fn resource(mut self, uri: impl Into<String>) -> Self {
        self.resource = Some(uri.into());
        self
    }

    /// Records the OAuth client the token is issued to.
    pub fn client(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }
}

/// What a [`NewToken`] asks for, as the store reads it.
impl NewToken {
    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The capabilities it narrows to.
    pub fn capabilities(&self) -> Option<&CapabilitySet> {
        self.capabilities.as_ref()
    }

    /// The lifetime asked for.
    pub fn lifetime(&self) -> Option<std::time::Duration> {
        self.expires_in
    }

    /// Who minted it.
    pub fn creator(&self) -> Option<&UserId> {
        self.created_by.as_ref()
    }

    /// Its use limit.
    pub fn operations(&self) -> Option<u64> {
        self.max_operations
    }

    /// Whether its last use ends it.
    pub fn ends_on_completion(&self) -> bool {
        self.expires_on_completion
    }

    /// Its task.
    pub fn task(&self) -> Option<&str> {
        self.task_id.as_deref()
    }

    /// What it is meant to do.
    pub fn intent_text(&self) -> Option<&str> {
        self.intent.as_deref()
    }

    /// Where its task runs.
    pub fn environment_name(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// The resource it is bound to.
    pub fn resource_uri(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The OAuth client it is issued to.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
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

/// A token brought over from another system by its hash (the secret is not known here), e.g. a
/// Data Machine `datamachine_{slug}_{64 hex}` token. Such tokens have no checksum: the store's
/// [`TokenFormat`](crate::token::TokenFormat) must
/// [`accept_legacy`](crate::token::TokenFormat::accept_legacy) for them to resolve.
#[derive(Debug, Clone)]
pub struct ImportedToken {
    pub(crate) hash: TokenHash,
    pub(crate) label: String,
    pub(crate) capabilities: Option<CapabilitySet>,
    pub(crate) created_at: Option<OffsetDateTime>,
    pub(crate) expires_at: Option<OffsetDateTime>,
}

impl ImportedToken {
    /// A token known by the SHA-256 of its secret.
    pub fn new(hash: TokenHash, label: impl Into<String>) -> Self {
        Self {
            hash,
            label: label.into(),
            capabilities: None,
            created_at: None,
            expires_at: None,
        }
    }

    /// Its capabilities (they must lie within the agent's policy).
    pub fn with_capabilities(mut self, capabilities: CapabilitySet) -> Self {
        self.capabilities = Some(capabilities);
        self
    }

    /// When the other system created it (default: now).
    pub fn created_at(mut self, at: OffsetDateTime) -> Self {
        self.created_at = Some(at);
        self
    }

    /// When it expires; an instant in the past is refused.
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// What an [`ImportedToken`] carries, as the store reads it.
impl ImportedToken {
    /// The SHA-256 of its secret.
    pub fn hash(&self) -> &TokenHash {
        &self.hash
    }

    /// Its label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its capabilities.
    pub fn capabilities(&self) -> Option<&CapabilitySet> {
        self.capabilities.as_ref()
    }

    /// When the other system created it.
    pub fn created(&self) -> Option<OffsetDateTime> {
        self.created_at
    }

    /// When it expires.
    pub fn expiry(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }
}
