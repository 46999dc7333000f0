use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::COOKIE;
use sha2::{Digest, Sha256};

use crate::error::ResolveError;
use crate::principal::{Principal, UserId};
use crate::resolver::SessionResolver;
use crate::store::UserDirectory;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "agent_auth_session";

/// Login sessions held in memory (a restart signs everyone out). The cookie carries 256 random
/// bits; only their SHA-256 is kept. A [`SessionResolver`]: a request with a live session cookie
/// gets the user's session principal, with the user's current role. A session begun by the
/// sign-in route ([`Sessions::begin`]) ends when the user's
/// [credential stamp](crate::store::UserRecord::with_credential_stamp) changes — a password
/// reset signs out whoever had the old password.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    directory: Arc<dyn UserDirectory>,
    lifetime: Duration,
    live: Mutex<HashMap<[u8; 32], Live>>,
}

/// A live session: whose, until when, and the user's credential stamp when it began.
struct Live {
    user: UserId,
    expires: Instant,
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

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl Sessions {
    /// Sessions of users in `directory`, each valid for `lifetime` after sign-in.
    pub fn new(directory: Arc<dyn UserDirectory>, lifetime: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                directory,
                lifetime,
                live: Mutex::default(),
            }),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Live>> {
        self.inner.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `user`, tied to their current
    /// [credential stamp](crate::store::UserRecord::with_credential_stamp) (the sign-in route
    /// uses this one): once their credentials change, the session ends. Returns the cookie
    /// value (shown to the browser only).
    pub async fn begin(&self, user: UserId) -> Result<String, crate::error::BoxError> {
        let stamp = self
            .inner
            .directory
            .user(&user)
            .await?
            .and_then(|record| record.credential_stamp());
        self.start_stamped(user, stamp)
    }

    /// Starts a session for `user`, not tied to their credentials; returns the cookie value
    /// (shown to the browser only).
    pub fn start(&self, user: UserId) -> Result<String, crate::error::BoxError> {
        self.start_stamped(user, None)
    }

    fn start_stamped(
        &self,
        user: UserId,
        stamp: Option<u64>,
    ) -> Result<String, crate::error::BoxError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
        let secret = hex::encode(secret);
        let now = Instant::now();
        let mut live = self.live();
        live.retain(|_, session| session.expires > now);
        // A lifetime past what the clock can hold means "until restart".
        let expires = now
            .checked_add(self.inner.lifetime)
            .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        live.insert(
            digest(&secret),
            Live {
                user,
                expires,
                stamp,
            },
        );
        Ok(secret)
    }

    /// The directory the sessions' users are looked up in.
    pub(crate) fn directory(&self) -> &Arc<dyn UserDirectory> {
        &self.inner.directory
    }

    /// Ends the session with this cookie value, if any.
    pub fn end(&self, secret: &str) {
        self.live().remove(&digest(secret));
    }

    /// The session cookie's value in `headers`, if any.
    pub fn cookie(headers: &http::HeaderMap) -> Option<&str> {
        cookie_named(headers, SESSION_COOKIE)
    }

    /// The user of a live session.
    pub fn user(&self, secret: &str) -> Option<UserId> {
        self.session(secret).map(|(user, _)| user)
    }

    /// The user and credential stamp of a live session.
    fn session(&self, secret: &str) -> Option<(UserId, Option<u64>)> {
        let live = self.live();
        live.get(&digest(secret))
            .filter(|session| session.expires > Instant::now())
            .map(|session| (session.user.clone(), session.stamp))
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
        let Some((user, stamp)) = self.session(secret) else {
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
            // the old ones is out.
            Some(record) if stamp.is_some() && record.credential_stamp() != stamp => {
                self.end(secret);
                Ok(None)
            }
            Some(record) if record.is_active() => Ok(Some(record.session_principal())),
            _ => Ok(None),
        }
    }
}
