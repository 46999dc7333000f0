//! [`RedisSecondLevel`]: the [`SecondLevel`] cache shared by many nodes, in Redis (feature
//! `redis`).
//!
//! An entry's key is `<prefix>v:<epoch>:<hex of the token hash>`: the token's SHA-256 (never the
//! token) and the store's change epoch it was written at, so a change anywhere — which advances
//! the epoch — leaves every older entry unreachable; Redis drops it when its time is up
//! (`SET … PX ttl`). The value is a compact, versioned JSON encoding of the principal holding
//! no secret, after an HMAC-SHA256 tag over the key and the encoding under a secret the nodes
//! share: whoever can write to Redis but does not hold the secret cannot make a node admit a
//! token (a forged, moved or altered entry fails the tag). A value that does not verify or
//! decode (another version, damage, a foreign writer) is a miss, never an error or a different
//! principal, and so is a principal whose
//! [`expires_at`](crate::ExecutionPrincipal::expires_at) has passed. A Redis error is returned
//! as it is; the cache treats it as a miss.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_agent_auth::cache::{RedisSecondLevel, SecondLevel};
//! use tower_agent_auth::token::TokenHash;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! // At least 32 random bytes, the same on every node (from a secret store, not the code).
//! let secret = std::env::var("AGENT_AUTH_REDIS_SECRET")?;
//! let l2 = RedisSecondLevel::connect("redis://127.0.0.1:6379", secret.as_bytes())
//!     .await?
//!     .with_prefix("acme:");
//! let hash = TokenHash::of("acme_writer_…");
//! assert!(l2.get(&hash, 7).await?.is_none());
//! # let _ = Duration::ZERO;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use redis::aio::ConnectionManager;
use sha2::Sha256;

use super::SecondLevel;
use crate::clock::{Clock, SystemClock};
use crate::error::BoxError;
use crate::principal::{Principal, wire};
use crate::token::TokenHash;

/// The key prefix unless [`RedisSecondLevel::with_prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "agent_auth:";

/// The fewest bytes a [`RedisSecondLevel`]'s secret may have.
pub const MIN_SECRET_LEN: usize = 32;

/// The length of an entry's tag, before its encoding.
const TAG_LEN: usize = 32;

/// A [`SecondLevel`] verdict cache in Redis, shared by every node that uses the same server
/// and prefix. Cheap to clone: the connection is shared and reconnects on its own.
#[derive(Clone)]
pub struct RedisSecondLevel {
    connection: ConnectionManager,
    prefix: Arc<str>,
    /// Keyed once; each tag clones it (no secret kept anywhere else).
    mac: Arc<Hmac<Sha256>>,
    /// Judges the expiry of stored principals: the store's clock, so that both levels agree.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisSecondLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSecondLevel")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSecondLevel {
    /// A cache over `connection`, with keys under [`DEFAULT_PREFIX`], its entries tagged
    /// with `secret`: at least [`MIN_SECRET_LEN`] random bytes, the same on every node, known
    /// to nothing that can write to Redis without being a node.
    pub fn new(connection: ConnectionManager, secret: &[u8]) -> Result<Self, BoxError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the second level's secret must be at least {MIN_SECRET_LEN} bytes, not {}",
                secret.len()
            )
            .into());
        }
        let mac = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|_| "the second level's secret was refused")?;
        Ok(Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            mac: Arc::new(mac),
            clock: Arc::new(SystemClock),
        })
    }

    /// Connects to the Redis server at `url` (`redis://host:port/db`); see
    /// [`RedisSecondLevel::new`] for `secret`.
    pub async fn connect(url: &str, secret: &[u8]) -> Result<Self, BoxError> {
        let client = redis::Client::open(url)?;
        Self::new(ConnectionManager::new(client).await?, secret)
    }

    /// The tag of `encoding` stored under `key`: a value moved to another key fails it.
    fn tag(&self, key: &str, encoding: &[u8]) -> Hmac<Sha256> {
        let mut mac = (*self.mac).clone();
        mac.update(&(key.len() as u64).to_be_bytes());
        mac.update(key.as_bytes());
        mac.update(encoding);
        mac
    }

    /// The encoding of a stored value, if its tag is this cache's for `key`.
    fn verified<'v>(&self, key: &str, value: &'v [u8]) -> Option<&'v [u8]> {
        let (tag, encoding) = value.split_at_checked(TAG_LEN)?;
        // Constant time: a guess learns nothing from how long the comparison took.
        self.tag(key, encoding).verify_slice(tag).ok()?;
        Some(encoding)
    }

    /// Judges expiry by `clock` (the system clock by default): give it the store's, so that an
    /// entry is dropped at the instant the store would refuse its token.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Puts every key under `prefix` (e.g. one per application sharing a server).
    pub fn with_prefix(mut self, prefix: impl Into<Arc<str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    fn expired(&self, principal: &Principal) -> bool {
        principal
            .expires_at()
            .is_some_and(|at| at <= self.clock.now())
    }

    /// The key of `hash`'s entry at `epoch`: `<prefix>v:<epoch>:<hex of the hash>`.
    pub fn key(&self, hash: &TokenHash, epoch: u64) -> String {
        format!("{}v:{epoch}:{}", self.prefix, hash.to_hex())
    }
}

#[async_trait::async_trait]
impl SecondLevel for RedisSecondLevel {
    async fn get(&self, hash: &TokenHash, epoch: u64) -> Result<Option<Principal>, BoxError> {
        let mut connection = self.connection.clone();
        let key = self.key(hash, epoch);
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await?;
        Ok(value
            .as_deref()
            .and_then(|value| self.verified(&key, value))
            .and_then(wire::decode)
            .filter(|principal| !self.expired(principal)))
    }

    /// Stores the entry for `ttl`, or only until the principal's
    /// [`expires_at`](crate::ExecutionPrincipal::expires_at) when that comes first (an
    /// expired principal is not stored).
    async fn put(
        &self,
        hash: &TokenHash,
        epoch: u64,
        principal: &Principal,
        ttl: Duration,
    ) -> Result<(), BoxError> {
        let mut ttl = ttl;
        if let Some(at) = principal.expires_at() {
            let left = at - self.clock.now();
            ttl = ttl.min(left.try_into().unwrap_or(Duration::ZERO));
        }
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 {
            return Ok(());
        }
        let key = self.key(hash, epoch);
        let encoding = wire::encode(principal);
        let mut value = self
            .tag(&key, encoding.as_ref())
            .finalize()
            .into_bytes()
            .to_vec();
        value.extend_from_slice(encoding.as_ref());
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }
}
