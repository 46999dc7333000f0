//! [`RedisCounter`]: counts in Redis, so every node shares one count (feature `redis`).

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

use super::{Hit, LimitKind, RateCounter, Window};
use crate::clock::{Clock, SystemClock};
use crate::error::BoxError;

/// The key prefix unless [`RedisCounter::with_prefix`] says otherwise.
pub const DEFAULT_PREFIX: &str = "agent_auth:";

/// One atomic round trip: count the hit, and give a new window's key its time to live.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

/// A [`RateCounter`] in Redis: every node using the same server and prefix counts into the same
/// keys, so a limit is exact across nodes (Redis does the counting, one atomic script per hit:
/// `INCR`, and `PEXPIRE` on a window's first hit).
///
/// Keys are `<prefix>rl:<kind>:<id>:<window index>` — a token's or an agent's id, never a
/// token — and live until a little after their window ends. The window of a hit is read from
/// this node's clock, so nodes should keep their clocks in step (NTP): a node whose clock is
/// off counts a hit near a window's edge into the window next to it. A Redis error is
/// returned, and the [`RateLimitLayer`](super::RateLimitLayer) answers it `503` (fails
/// closed).
#[derive(Clone)]
pub struct RedisCounter {
    connection: ConnectionManager,
    prefix: Arc<str>,
    script: Arc<Script>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCounter {
    /// A counter over `connection`, with keys under [`DEFAULT_PREFIX`], reading the system
    /// clock.
    pub fn new(connection: ConnectionManager) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            script: Arc::new(Script::new(HIT)),
            clock: Arc::new(SystemClock),
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

    /// Reads the window of a hit from `clock`.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The key of the `kind` limit of `id` in the window `index`.
    pub fn key(&self, kind: LimitKind, id: &str, index: i64) -> String {
        format!("{}rl:{}:{id}:{index}", self.prefix, kind.as_str())
    }
}

#[async_trait::async_trait]
impl RateCounter for RedisCounter {
    async fn hit(&self, kind: LimitKind, id: &str, window: Duration) -> Result<Hit, BoxError> {
        let current = Window::containing(self.clock.unix_nanos(), window);
        // Kept a window longer than it lasts: room for nodes whose clocks differ a little.
        let ttl_ms = current.remaining.saturating_add(window).as_millis();
        let mut connection = self.connection.clone();
        let count: u64 = self
            .script
            .key(self.key(kind, id, current.index))
            .arg(u64::try_from(ttl_ms).unwrap_or(u64::MAX))
            .invoke_async(&mut connection)
            .await?;
        Ok(Hit::new(count, current.remaining))
    }
}
