//! [`RedisSecondLevel`]: the [`SecondLevel`] cache shared by many nodes, in Redis (feature
//! `redis`).
//!
//! An entry's key is `<prefix>v:<epoch>:<hex of the token hash>`: the token's SHA-256 (never the
//! token) and the store's change epoch it was written at, so a change anywhere — which advances
//! the epoch — leaves every older entry unreachable; Redis drops it when its time is up
//! (`SET … PX ttl`). The value is a compact, versioned JSON encoding of the principal holding
//! no secret. A value that does not decode (another version, damage, a foreign writer) is a
//! miss, never an error or a different principal, and so is a principal whose
//! [`expires_at`](crate::ExecutionPrincipal::expires_at) has passed. A Redis error is returned
//! as it is; the cache treats it as a miss.
//!
//! ```no_run
//! use std::time::Duration;
//! use tower_agent_auth::cache::{RedisSecondLevel, SecondLevel};
//! use tower_agent_auth::token::TokenHash;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let l2 = RedisSecondLevel::connect("redis://127.0.0.1:6379").await?.with_prefix("acme:");
//! let hash = TokenHash::of("acme_writer_…");
//! assert!(l2.get(&hash, 7).await?.is_none());
//! # let _ = Duration::ZERO;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::SecondLevel;
use crate::principal::{Principal, wire};
use crate::reason::BoxError;
use crate::token::TokenHash;

/// The key prefix unless [`RedisSecondLevel::with_prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "agent_auth:";

/// A [`SecondLevel`] verdict cache in Redis, shared by every node that uses the same server
/// and prefix. Cheap to clone: the connection is shared and reconnects on its own.
#[derive(Clone)]
pub struct RedisSecondLevel {
    connection: ConnectionManager,
    prefix: Arc<str>,
}

impl std::fmt::Debug for RedisSecondLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSecondLevel")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSecondLevel {
    /// A cache over `connection`, with keys under [`DEFAULT_PREFIX`].
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
        }
    }

    /// Connects to the Redis server at `url` (`redis://host:port/db`).
    pub async fn connect(url: &str) -> Result<Self, BoxError> {
        let client = redis::Client::open(url)?;
        Ok(Self::new(ConnectionManager::new(client).await?))
    }

    /// Puts every key under `prefix` (e.g. one per application sharing a server).
    pub fn with_prefix(mut self, prefix: impl Into<Arc<str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The key of `hash`'s entry at `epoch`: `<prefix>v:<epoch>:<hex of the hash>`.
    pub fn key(&self, hash: &TokenHash, epoch: u64) -> String {
        format!("{}v:{epoch}:{}", self.prefix, hash.to_hex())
    }
}

fn expired(principal: &Principal) -> bool {
    principal
        .expires_at()
        .is_some_and(|at| at <= time::OffsetDateTime::now_utc())
}

#[async_trait::async_trait]
impl SecondLevel for RedisSecondLevel {
    async fn get(&self, hash: &TokenHash, epoch: u64) -> Result<Option<Principal>, BoxError> {
        let mut connection = self.connection.clone();
        let value: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.key(hash, epoch))
            .query_async(&mut connection)
            .await?;
        Ok(value
            .as_deref()
            .and_then(wire::decode)
            .filter(|principal| !expired(principal)))
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
            let left = at - time::OffsetDateTime::now_utc();
            ttl = ttl.min(left.try_into().unwrap_or(Duration::ZERO));
        }
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if millis == 0 {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(self.key(hash, epoch))
            .arg(wire::encode(principal))
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }
}
