//! What a store keeps for the callback receiver: the pending authorizations (one per `state`
//! handed out) and the provider tokens received, sealed. Plain records: the store keeps them and
//! takes the one atomic step (a `state` accepted once); what they mean is the receiver's.

use time::OffsetDateTime;

use crate::principal::{AgentId, UserId};
use crate::token::TokenHash;

/// Bytes sealed under the receiver's [`CallbackKey`](super::CallbackKey): a version byte, a
/// random 24-byte nonce and the XChaCha20-Poly1305 ciphertext with its tag. Opened only with
/// the key and the associated data it was sealed with (the record's id and the field's name).
/// `Debug` shows its length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(Vec<u8>);

impl Sealed {
    /// Sealed bytes as a store read them back.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The bytes to store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

/// An authorization an administrator started with a provider, waiting for its callback: the
/// SHA-256 of the `state` handed out (never the state), the session and person it was handed
/// to, the agent and provider it is for, the PKCE verifier (sealed), and until when it may come
/// back. Accepted once ([`Backend::take_callback_state`](crate::store::Backend::take_callback_state)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackState {
    /// SHA-256 of the `state` parameter.
    pub hash: TokenHash,
    /// SHA-256 of the session cookie of the person who started it.
    pub session: TokenHash,
    /// Who started it.
    pub user: UserId,
    /// The agent the token will be kept for.
    pub agent: AgentId,
    /// The provider's name.
    pub provider: String,
    /// The PKCE code verifier, sealed with the state's hash as associated data.
    pub verifier: Sealed,
    /// When it was handed out.
    pub created_at: OffsetDateTime,
    /// When it lapses.
    pub expires_at: OffsetDateTime,
    /// When its callback came: set once, by the first.
    pub used_at: Option<OffsetDateTime>,
}

impl CallbackState {
    /// A pending authorization, not used yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hash: TokenHash,
        session: TokenHash,
        user: UserId,
        agent: AgentId,
        provider: impl Into<String>,
        verifier: Sealed,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            hash,
            session,
            user,
            agent,
            provider: provider.into(),
            verifier,
            created_at,
            expires_at,
            used_at: None,
        }
    }
}

/// What taking a `state` found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateTaken {
    /// It was pending, and is used now: as it was before.
    Taken(CallbackState),
    /// It was used before: a replay (the record as it stands).
    Replayed(CallbackState),
    /// This server never handed it out (or it was purged).
    Unknown,
}

/// A provider's token received for an agent: who connected it, when, for which scopes and
/// until when — and the tokens themselves, sealed with the record's id as associated data. One
/// per agent and provider: connecting again replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderToken {
    /// Its id (`ptk_…`), the associated data of its sealed tokens.
    pub id: String,
    /// The provider's name.
    pub provider: String,
    /// The agent it is kept for.
    pub agent: AgentId,
    /// The person who connected it.
    pub connected_by: UserId,
    /// When it was received.
    pub created_at: OffsetDateTime,
    /// The scopes granted (as the provider said, else as asked).
    pub scopes: Vec<String>,
    /// The token type the provider named (`Bearer`, in lower or upper case as it was).
    pub token_type: String,
    /// When the access token expires, if the provider said.
    pub expires_at: Option<OffsetDateTime>,
    /// The access token, sealed.
    pub access: Sealed,
    /// The refresh token, sealed, if one was given.
    pub refresh: Option<Sealed>,
}

impl ProviderToken {
    /// A record of a token received at `created_at`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: impl Into<String>,
        provider: impl Into<String>,
        agent: AgentId,
        connected_by: UserId,
        created_at: OffsetDateTime,
        token_type: impl Into<String>,
        access: Sealed,
    ) -> Self {
        Self {
            id: id.into(),
            provider: provider.into(),
            agent,
            connected_by,
            created_at,
            scopes: Vec::new(),
            token_type: token_type.into(),
            expires_at: None,
            access,
            refresh: None,
        }
    }
}
