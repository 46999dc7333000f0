//! [`UserDirectory`]: how the crate asks the host application about users.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::ceiling::{CapabilityCeiling, Policy};
use crate::error::BoxError;
use crate::principal::{ExecutionPrincipal, Principal, UserId};

/// A user as the crate needs to know them: whether they are active and what their role allows.
#[derive(Debug, Clone)]
pub struct UserRecord {
    id: UserId,
    active: bool,
    role: Arc<Policy>,
    credential_stamp: Option<u64>,
}

impl UserRecord {
    /// An active user whose role allows what `role` allows.
    pub fn new(id: impl Into<UserId>, role: Policy) -> Self {
        Self {
            id: id.into(),
            active: true,
            role: Arc::new(role),
            credential_stamp: None,
        }
    }

    /// A value that changes whenever the user's sign-in credentials do (a password reset): a
    /// session started under another stamp ends, so a reset signs out whoever had the old
    /// password. `None` (the default): sessions are not tied to credentials.
    pub fn with_credential_stamp(mut self, stamp: u64) -> Self {
        self.credential_stamp = Some(stamp);
        self
    }

    /// See [`UserRecord::with_credential_stamp`].
    pub fn credential_stamp(&self) -> Option<u64> {
        self.credential_stamp
    }

    /// Sets whether the user is active; agents of inactive users are refused.
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = active;
        self
    }

    /// The user id.
    pub fn id(&self) -> &UserId {
        &self.id
    }

    /// Whether the user is active.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The user's role, the first layer of every ceiling of theirs.
    pub fn role(&self) -> &Arc<Policy> {
        &self.role
    }

    /// The principal of this user signed in by an ordinary session: bounded by their role alone.
    pub fn session_principal(&self) -> Principal {
        let ceiling = CapabilityCeiling::new(self.role.clone());
        ExecutionPrincipal::session(self.id.clone(), ceiling).into()
    }
}

/// The host application's users. Stores check the owner at every resolution — by looking them
/// up, or by finding the directory's [revision](UserDirectory::revision) unchanged since they
/// last did — so demoting or deactivating an owner takes effect on the agent's next request.
#[async_trait::async_trait]
pub trait UserDirectory: Send + Sync + 'static {
    /// Answers at once when the user is at hand (held in memory), without allocating a future;
    /// `None` when the lookup would have to wait. The default never answers.
    fn user_now(&self, id: &UserId) -> Option<Result<Option<UserRecord>, BoxError>> {
        let _ = id;
        None
    }

    /// The user, `Ok(None)` if they do not exist; `Err` if the lookup failed (the
    /// resolution then answers 503, a management call fails as unavailable).
    async fn user(&self, id: &UserId) -> Result<Option<UserRecord>, BoxError>;

    /// A number that changes whenever any user is added, removed, activated, deactivated or
    /// given another role; `None` (the default) when the directory cannot tell.
    ///
    /// A store may reuse a verdict reached at one revision for as long as the revision stays
    /// the same, instead of looking the owner up on every request; so a directory that returns
    /// `Some` must change the number *after* the change is visible to [`UserDirectory::user`]
    /// and [`UserDirectory::user_now`]. With `None`, every resolution looks the owner up.
    fn revision(&self) -> Option<u64> {
        None
    }
}

#[async_trait::async_trait]
impl<T: UserDirectory + ?Sized> UserDirectory for Arc<T> {
    fn user_now(&self, id: &UserId) -> Option<Result<Option<UserRecord>, BoxError>> {
        (**self).user_now(id)
    }

    async fn user(&self, id: &UserId) -> Result<Option<UserRecord>, BoxError> {
        (**self).user(id).await
    }

    fn revision(&self) -> Option<u64> {
        (**self).revision()
    }
}

/// A [`UserDirectory`] held in memory, for tests, examples and small deployments.
///
/// It keeps a [revision](UserDirectory::revision), so a store resolving against it looks an
/// owner up only after a change to the directory, and still sees every change on the next
/// request.
#[derive(Debug, Clone, Default)]
pub struct MemoryUserDirectory {
    users: Arc<Users>,
}

#[derive(Debug, Default)]
struct Users {
    records: RwLock<HashMap<UserId, UserRecord>>,
    /// Bumped after every change, while the write lock is still held.
    revision: AtomicU64,
}

impl MemoryUserDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The one way to change the records: applies `change` and publishes a new revision
    /// before unlocking, so a reader that sees the new revision sees the change.
    fn edit<R>(&self, change: impl FnOnce(&mut HashMap<UserId, UserRecord>) -> R) -> R {
        let mut records = self
            .users
            .records
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let result = change(&mut records);
        self.users.revision.fetch_add(1, Ordering::Release);
        result
    }

    /// Adds or replaces a user.
    pub fn insert(&self, user: UserRecord) {
        self.edit(|users| users.insert(user.id.clone(), user));
    }

    /// Removes a user; their agents are refused from the next request on.
    pub fn remove(&self, id: &UserId) -> Option<UserRecord> {
        self.edit(|users| users.remove(id))
    }

    /// Activates or deactivates a user. Returns false if there is no such user.
    pub fn set_active(&self, id: &UserId, active: bool) -> bool {
        self.edit(|users| users.get_mut(id).map(|user| user.active = active))
            .is_some()
    }

    /// Changes a user's role. Returns false if there is no such user.
    pub fn set_role(&self, id: &UserId, role: Policy) -> bool {
        self.edit(|users| users.get_mut(id).map(|user| user.role = Arc::new(role)))
            .is_some()
    }
}

impl MemoryUserDirectory {
    fn lookup(&self, id: &UserId) -> Option<UserRecord> {
        self.users
            .records
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }
}

#[async_trait::async_trait]
impl UserDirectory for MemoryUserDirectory {
    fn user_now(&self, id: &UserId) -> Option<Result<Option<UserRecord>, BoxError>> {
        Some(Ok(self.lookup(id)))
    }

    async fn user(&self, id: &UserId) -> Result<Option<UserRecord>, BoxError> {
        Ok(self.lookup(id))
    }

    fn revision(&self) -> Option<u64> {
        Some(self.users.revision.load(Ordering::Acquire))
    }
}
