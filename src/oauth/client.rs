//! OAuth clients: who may ask for a token, how they authenticate, and where they may be sent.

use time::OffsetDateTime;

use crate::principal::AgentId;
use crate::token::TokenHash;

/// The most redirect URIs a client may list (a registration, a metadata document).
pub(crate) const MAX_REDIRECT_URIS: usize = 10;

/// What kind of client a [`Client`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientKind {
    /// A registered agent: its `client_id` is the agent's slug, its redirect URIs the agent's
    /// allowlist, and only its owner (or an `admin` of it) may consent.
    Agent(AgentId),
    /// A client that registered itself (RFC 7591): consent materializes a connection.
    Registered,
    /// A Client ID Metadata Document: the `client_id` is an https URL.
    MetadataDocument,
}

impl ClientKind {
    /// The kind as stored: `agent`, `registered` or `metadata_document`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Agent(_) => "agent",
            Self::Registered => "registered",
            Self::MetadataDocument => "metadata_document",
        }
    }
}

/// How a client authenticates at the token endpoint (`token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuth {
    /// A public client: its `client_id` in the body, no secret (PKCE protects the code).
    None,
    /// `Authorization: Basic` with the percent-encoded id and secret.
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
}

impl ClientAuth {
    /// The RFC 7591 name: `none`, `client_secret_basic`, `client_secret_post`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::SecretBasic => "client_secret_basic",
            Self::SecretPost => "client_secret_post",
        }
    }

    /// The method an RFC 7591 name stands for.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "client_secret_basic" => Self::SecretBasic,
            "client_secret_post" => Self::SecretPost,
            _ => return None,
        })
    }

    /// Whether the client holds a secret.
    pub fn is_confidential(self) -> bool {
        !matches!(self, Self::None)
    }
}

/// An OAuth client as the store keeps it. The secret is kept only as its SHA-256 hash.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Client {
    /// The `client_id`: a generated id (`c_…`, never an agent's slug, which has no `_`), an
    /// agent's slug, or a metadata document's URL.
    pub id: String,
    /// What kind of client it is.
    pub kind: ClientKind,
    /// Its name, as shown on the consent page.
    pub name: String,
    /// Where it may be sent back: redirect URIs, or for an agent its allowlist's patterns
    /// ([`RedirectPattern`](super::redirect::RedirectPattern) text).
    pub redirect_uris: Vec<String>,
    /// How it authenticates at the token endpoint.
    pub auth: ClientAuth,
    /// The hash of its secret, for a confidential client.
    pub secret_hash: Option<TokenHash>,
    /// The scope it registered with (informative: a later request may ask for more).
    pub scope: Option<String>,
    /// Whether it may call the introspection endpoint.
    pub may_introspect: bool,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When it last obtained a token or was authorized.
    pub last_used_at: Option<OffsetDateTime>,
    /// When an unused registration lapses (`None`: never); a use pushes it back.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was revoked: it then obtains nothing more.
    pub revoked_at: Option<OffsetDateTime>,
}

impl Client {
    /// A client of `kind` with this id and name, created `at`: public, no redirect URIs.
    pub fn new(
        id: impl Into<String>,
        kind: ClientKind,
        name: impl Into<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            id: id.into(),
            kind,
            name: name.into(),
            redirect_uris: Vec::new(),
            auth: ClientAuth::None,
            secret_hash: None,
            scope: None,
            may_introspect: false,
            created_at: at,
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        }
    }

    /// Whether it may obtain tokens at `now`: not revoked, not lapsed.
    pub fn is_live_at(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }

    /// The agent it is, for a registered agent.
    pub fn agent(&self) -> Option<&AgentId> {
        match &self.kind {
            ClientKind::Agent(agent) => Some(agent),
            _ => None,
        }
    }
}
