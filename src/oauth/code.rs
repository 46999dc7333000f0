//! Authorization codes: single use, short-lived, bound to everything the request named.

use time::OffsetDateTime;

use super::refresh::FamilyId;
use crate::ceiling::CapabilitySet;
use crate::principal::{AgentId, UserId};
use crate::token::TokenHash;

/// An authorization code as the store keeps it: only its hash, and what it is bound to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AuthorizationCode {
    /// The SHA-256 of the code.
    pub hash: TokenHash,
    /// The client it was issued to.
    pub client_id: String,
    /// The exact `redirect_uri` of the authorization request.
    pub redirect_uri: String,
    /// The PKCE `code_challenge` (S256).
    pub challenge: String,
    /// The `resource` (RFC 8707) the tokens will be bound to.
    pub resource: Option<String>,
    /// The person who consented.
    pub user: UserId,
    /// The agent the tokens belong to.
    pub agent: AgentId,
    /// What the person granted.
    pub capabilities: CapabilitySet,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it lapses (at most 60 s after issue).
    pub expires_at: OffsetDateTime,
    /// When it was redeemed: a second redemption is a replay.
    pub redeemed_at: Option<OffsetDateTime>,
    /// The refresh family its redemption started: what a replay revokes.
    pub family: Option<FamilyId>,
    /// When it was first presented again after its redemption: the redeemer, once it has
    /// issued, reads this and revokes what it issued if a replay came in between.
    pub replayed_at: Option<OffsetDateTime>,
}

/// What redeeming a code found ([`Backend::redeem_code`](crate::store::Backend::redeem_code)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Redemption {
    /// Redeemed now, for the first time: the code as it was.
    Redeemed(AuthorizationCode),
    /// Redeemed before: a replay, now marked ([`AuthorizationCode::replayed_at`]). The code as
    /// it is (its family names what it issued).
    Replayed(AuthorizationCode),
    /// No such code.
    Unknown,
}
