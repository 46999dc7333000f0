//! Refresh tokens: opaque, rotated at every use, in families that a reuse ends.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::ceiling::CapabilitySet;
use crate::principal::{AgentId, TokenId, UserId};
use crate::token::TokenHash;

/// The lineage of refresh tokens that one authorization started: every rotation stays in it,
/// and reusing a spent member revokes all of it, with the access tokens it issued.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FamilyId(Arc<str>);

impl FamilyId {
    /// Wraps a family id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FamilyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refresh token as the store keeps it: only its hash.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RefreshToken {
    /// The SHA-256 of the refresh token.
    pub hash: TokenHash,
    /// Its family.
    pub family: FamilyId,
    /// The client it was issued to.
    pub client_id: String,
    /// The agent whose access tokens it obtains.
    pub agent: AgentId,
    /// The person who consented.
    pub user: UserId,
    /// What was granted: a refresh never widens it.
    pub capabilities: CapabilitySet,
    /// The `resource` its access tokens are bound to.
    pub resource: Option<String>,
    /// The access token issued beside it.
    pub access_token: TokenId,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it lapses.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was used (and replaced): using it again is a reuse.
    pub rotated_at: Option<OffsetDateTime>,
    /// When its family was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// What rotating a refresh token found
/// ([`Backend::rotate_refresh`](crate::store::Backend::rotate_refresh)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RefreshRotation {
    /// Rotated now: the old token as it was; the new one is stored.
    Rotated(RefreshToken),
    /// Rotated before, or revoked: a reuse. Nothing was stored; the family is to be revoked.
    Reused(RefreshToken),
    /// No such refresh token.
    Unknown,
}
