//! Login sessions: a cookie of 256 random bits, a record in a `tower-sessions` store (see
//! [`Sessions`]).

use std::sync::Arc;
use std::time::Duration;

use http::header::COOKIE;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tower_sessions_core::session::{Id, Record};

use crate::error::{BoxError, ResolveError};
use crate::principal::{Principal, UserId};
use crate::resolver::SessionResolver;
use crate::store::UserDirectory;

pub use tower_sessions_core::SessionStore;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "agent_auth_session";

/// The record's field naming the user.
const USER: &str = "user";
/// The record's field holding the user's credential stamp at sign-in (absent: not tied).
const STAMP: &str = "stamp";

/// The longest a session is kept: a longer lifetime is cut to this (a date the stores can write).
const LONGEST: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Login sessions, kept in a `tower-sessions` [`SessionStore`] (0.14): tower-sessions'
/// `MemoryStore` by default ([`Sessions::new`]), or any store given to
/// [`Sessions::with_store`] — the SQL stores of `tower-sessions-sqlx-store` 0.15 on the
/// application's database, so that sessions survive a restart and every node behind a load
/// balancer knows every session.
///
/// Only the store trait is used, not tower-sessions' `SessionManagerLayer`: the cookie is
/// turned into a principal by this [`SessionResolver`] inside the
/// [`AgentAuthLayer`](crate::AgentAuthLayer), like a bearer token, and the cookie's value is
/// ours ([`SESSION_COOKIE`]: 256 random bits, hex-encoded, from which per-form CSRF tokens can
/// be derived).
///
/// What the store holds, per session:
/// * the record's id: the first 16 bytes of SHA-256(cookie), never the cookie itself, so that
///   whoever reads the table (a backup, a replica) cannot sign in with it;
/// * the user, and the user's credential stamp at sign-in;
/// * the expiry: sign-in plus the lifetime (not extended by use).
///
/// A request with a live session cookie gets the user's session principal, with the user's
/// role as the directory says now (a demotion or deactivation applies at once). A session
/// begun by the sign-in route ([`Sessions::begin`]) ends when the user's
/// [credential stamp](crate::store::UserRecord::with_credential_stamp) changes: a password
/// reset signs out whoever had the old password, on every node that shares the user
/// directory. A store that cannot answer makes the request a 503
/// ([`ResolveError::Unavailable`]), not a signed-out one.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    directory: Arc<dyn UserDirectory>,
    lifetime: Duration,
    store: Arc<dyn SessionStore>,
}

/// A live session: whose, and the user's credential stamp when it began.
struct Live {
    user: UserId,
    stamp: Option<u64>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("lifetime", &self.inner.lifetime)
            .finish_non_exhaustive()
    }
}

/// The value of the cookie `wanted` in `headers`, if any.
pub(crate) fn cookie_named<'a>(headers: &'a http::HeaderMap, wanted: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
}

/// The record id of the session whose cookie is `secret`: the first 16 bytes of its SHA-256.
fn record_id(secret: &str) -> Id {
    let digest = Sha256::digest(secret.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Id(i128::from_le_bytes(first))
}

/// Whether `value` can be a cookie [`Sessions`] gave: 64 hex digits. Anything else is no
/// session, without asking the store.
fn is_session_secret(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The user and stamp a record holds; `None` for a record not written by [`Sessions`].
fn live(record: &Record) -> Option<Live> {
    let user = record.data.get(USER)?.as_str()?;
    Some(Live {
        user: UserId::from(user),
        stamp: record.data.get(STAMP).and_then(Value::as_u64),
    })
}

impl Sessions {
    /// Sessions of users in `directory`, each valid for `lifetime` after sign-in, kept in this
    /// process's memory (tower-sessions' `MemoryStore`): a restart signs everyone out, and
    /// expired records stay until the process ends. For tests and single-process servers;
    /// [`Sessions::with_store`] for a database.
    pub fn new(directory: Arc<dyn UserDirectory>, lifetime: Duration) -> Self {
        Self::with_store(
            directory,
            lifetime,
            tower_sessions_memory_store::MemoryStore::default(),
        )
    }

    /// Sessions of users in `directory`, each valid for `lifetime` after sign-in, kept in
    /// `store` (for instance `tower-sessions-sqlx-store`'s `SqliteStore` or `PostgresStore`).
    /// Deleting expired records is the store's business (its `ExpiredDeletion`, on a task):
    /// an expired record is never taken for a session either way.
    pub fn with_store(
        directory: Arc<dyn UserDirectory>,
        lifetime: Duration,
        store: impl SessionStore,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                directory,
                lifetime,
                store: Arc::new(store),
            }),
        }
    }

    /// Starts a session for `user`, tied to their current
    /// [credential stamp](crate::store::UserRecord::with_credential_stamp) (the sign-in route
    /// uses this one): once their credentials change, the session ends. Returns the cookie
    /// value (shown to the browser only).
    pub async fn begin(&self, user: UserId) -> Result<String, BoxError> {
        let stamp = self
            .inner
            .directory
            .user(&user)
            .await?
            .and_then(|record| record.credential_stamp());
        self.start_stamped(user, stamp).await
    }

    /// Starts a session for `user`, not tied to their credentials; returns the cookie value
    /// (shown to the browser only).
    pub async fn start(&self, user: UserId) -> Result<String, BoxError> {
        self.start_stamped(user, None).await
    }

    async fn start_stamped(&self, user: UserId, stamp: Option<u64>) -> Result<String, BoxError> {
        let mut data = std::collections::HashMap::new();
        data.insert(USER.to_owned(), Value::from(user.as_str()));
        if let Some(stamp) = stamp {
            data.insert(STAMP.to_owned(), Value::from(stamp));
        }
        let now = OffsetDateTime::now_utc();
        let expiry_date = time::Duration::try_from(self.inner.lifetime.min(LONGEST))
            .ok()
            .and_then(|lifetime| now.checked_add(lifetime))
            .ok_or("the session lifetime is past what a date can hold")?;
        // A store's `create` draws another id when the one given is taken; the record would
        // then answer to no cookie. Taken means a 128-bit collision: remove it and draw again.
        for _ in 0..3 {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
            let secret = hex::encode(secret);
            let id = record_id(&secret);
            let mut record = Record {
                id,
                data: data.clone(),
                expiry_date,
            };
            self.inner.store.create(&mut record).await?;
            if record.id == id {
                return Ok(secret);
            }
            self.inner.store.delete(&record.id).await?;
        }
        Err("no free session id".into())
    }

    /// The directory the sessions' users are looked up in.
    pub(crate) fn directory(&self) -> &Arc<dyn UserDirectory> {
        &self.inner.directory
    }

    /// Ends the session with this cookie value, if any: its record is deleted from the store.
    pub async fn end(&self, secret: &str) -> Result<(), BoxError> {
        if !is_session_secret(secret) {
            return Ok(());
        }
        self.inner.store.delete(&record_id(secret)).await?;
        Ok(())
    }

    /// The session cookie's value in `headers`, if any.
    pub fn cookie(headers: &http::HeaderMap) -> Option<&str> {
        cookie_named(headers, SESSION_COOKIE)
    }

    /// The user of a live session (`None`: no such session, or it expired). Not checked
    /// against the directory: [`SessionResolver::resolve_session`] is what admits a request.
    pub async fn user(&self, secret: &str) -> Result<Option<UserId>, BoxError> {
        Ok(self.session(secret).await?.map(|live| live.user))
    }

    /// The user and credential stamp of a live session.
    async fn session(&self, secret: &str) -> Result<Option<Live>, BoxError> {
        if !is_session_secret(secret) {
            return Ok(None);
        }
        let record = self.inner.store.load(&record_id(secret)).await?;
        // Stores filter expired records; the check here holds for any store.
        Ok(record
            .filter(|record| record.expiry_date > OffsetDateTime::now_utc())
            .as_ref()
            .and_then(live))
    }
}

#[async_trait::async_trait]
impl SessionResolver for Sessions {
    async fn resolve_session(
        &self,
        request: &http::request::Parts,
    ) -> Result<Option<Principal>, ResolveError> {
        let Some(secret) = Self::cookie(&request.headers) else {
            return Ok(None);
        };
        let Some(Live { user, stamp }) = self
            .session(secret)
            .await
            .map_err(ResolveError::Unavailable)?
        else {
            return Ok(None);
        };
        // The role is read now, so a demotion or deactivation applies to live sessions at once.
        match self
            .inner
            .directory
            .user(&user)
            .await
            .map_err(ResolveError::Unavailable)?
        {
            // Credentials changed since sign-in (a password reset): whoever signed in with
            // the old ones is out. The record goes; were deleting it to fail, the stamp
            // still refuses it at every request.
            Some(record) if stamp.is_some() && record.credential_stamp() != stamp => {
                if let Err(error) = self.end(secret).await {
                    tracing::warn!(%error, "a session of old credentials not deleted");
                }
                Ok(None)
            }
            Some(record) if record.is_active() => Ok(Some(record.session_principal())),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
