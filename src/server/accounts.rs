//! The accounts of the people who sign in, as the pages administer them: the application keeps
//! its users (the library keeps none), and lends the users and account pages this interface
//! ([`Pages::accounts`](crate::server::Pages::accounts)).

use time::OffsetDateTime;

use super::PasswordVerifier;
use crate::ceiling::CapabilitySet;
use crate::error::StoreError;
use crate::principal::UserId;

/// One account as the users page lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AccountSummary {
    /// Who.
    pub id: UserId,
    /// The role's capabilities; `None` for the unrestricted role (`*`).
    pub role: Option<CapabilitySet>,
    /// Whether the person may sign in and their agents act.
    pub active: bool,
    /// Whether a password is set (else the person cannot sign in with one).
    pub has_password: bool,
    /// When the account was made.
    pub created_at: OffsetDateTime,
}

impl AccountSummary {
    /// An active account of `id` with `role`, made `at`, with a password.
    pub fn new(id: impl Into<UserId>, role: Option<CapabilitySet>, at: OffsetDateTime) -> Self {
        Self {
            id: id.into(),
            role,
            active: true,
            has_password: true,
            created_at: at,
        }
    }
}

/// What the users page (site admins only) and the account page do with accounts. The
/// [`PasswordVerifier`] checks the current password before a change.
///
/// Errors: [`StoreError::Input`] (from [`StoreError::invalid`]) for input the application refuses (its message is shown to
/// the person), [`NotFound::User`](crate::error::NotFound::User) for an unknown id, anything
/// else as the store being unavailable.
#[async_trait::async_trait]
pub trait AccountAdmin: PasswordVerifier {
    /// Every account, by id.
    async fn list(&self) -> Result<Vec<AccountSummary>, StoreError>;

    /// Adds an active account with `role` (`None`: unrestricted) and `password`; an id taken
    /// is refused.
    async fn add(
        &self,
        id: &str,
        role: Option<&CapabilitySet>,
        password: &str,
    ) -> Result<(), StoreError>;

    /// Replaces an account's role (`None`: unrestricted).
    async fn set_role(&self, id: &str, role: Option<&CapabilitySet>) -> Result<(), StoreError>;

    /// Activates or deactivates an account: a deactivated person cannot sign in, their
    /// sessions end and their agents are refused.
    async fn set_active(&self, id: &str, active: bool) -> Result<(), StoreError>;

    /// Replaces an account's password. The implementation must change the account's
    /// credential stamp ([`UserRecord::with_credential_stamp`](crate::store::UserRecord::with_credential_stamp))
    /// so that every session signed in with the old password ends.
    async fn set_password(&self, id: &str, password: &str) -> Result<(), StoreError>;
}
