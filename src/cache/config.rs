//! How a verdict cache is sized and kept fresh.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};

/// Reads a revision that changes after every change that can narrow or end access; `None`
/// when it cannot tell.
pub(crate) type RevisionSource = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// The configuration of a [`VerdictCache`](super::VerdictCache).
///
/// ```
/// use std::time::Duration;
/// use tower_agent_auth::cache::CacheConfig;
///
/// let config = CacheConfig::new()
///     .bound(Duration::from_millis(500))
///     .max_entries(50_000);
/// assert_eq!(config.negative_ttl_or_bound(), Duration::from_millis(500));
/// ```
#[derive(Clone)]
pub struct CacheConfig {
    pub(crate) bound: Duration,
    pub(crate) max_entries: u64,
    pub(crate) max_age: Duration,
    pub(crate) negative_max_entries: u64,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) revision: Option<RevisionSource>,
    pub(crate) follows_feed: bool,
    #[cfg(feature = "feed")]
    pub(crate) second_level: Option<Arc<dyn super::SecondLevel>>,
    #[cfg(feature = "feed")]
    pub(crate) second_level_timeout: Duration,
}

impl std::fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheConfig")
            .field("bound", &self.bound)
            .field("max_entries", &self.max_entries)
            .field("max_age", &self.max_age)
            .field("negative_max_entries", &self.negative_max_entries)
            .field("negative_ttl", &self.negative_ttl_or_bound())
            .field("revision", &self.revision.is_some())
            .field("follows_feed", &self.follows_feed)
            .finish_non_exhaustive()
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl CacheConfig {
    /// The defaults: a bound of 1 s, 100 000 verdicts kept at most 5 minutes each, 10 000
    /// negative entries kept for the bound, the system clock, no revision, no feed.
    pub fn new() -> Self {
        Self {
            bound: Duration::from_secs(1),
            max_entries: 100_000,
            max_age: Duration::from_secs(300),
            negative_max_entries: 10_000,
            negative_ttl: None,
            clock: Arc::new(SystemClock),
            revision: None,
            follows_feed: false,
            #[cfg(feature = "feed")]
            second_level: None,
            #[cfg(feature = "feed")]
            second_level_timeout: Duration::from_millis(50),
        }
    }

    /// How long after a change anywhere a verdict it ends may still be served, at most, when
    /// the cache follows a feed (default 1 s): the feed is polled four times within it, and
    /// without a successful poll for this long the cache answers nothing.
    pub fn bound(mut self, bound: Duration) -> Self {
        self.bound = bound;
        self
    }

    /// The most verdicts kept (default 100 000); the least used go first.
    pub fn max_entries(mut self, max: u64) -> Self {
        self.max_entries = max;
        self
    }

    /// How long a verdict is kept at most, however fresh (default 5 minutes).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The most refusals held — hashes remembered as unknown and tokens refused for good
    /// (default 10 000) — so that a flood of made-up tokens cannot crowd out real verdicts or
    /// grow memory.
    pub fn negative_max_entries(mut self, max: u64) -> Self {
        self.negative_max_entries = max;
        self
    }

    /// How long a refusal is held (default: the [bound](CacheConfig::bound)): a client looping
    /// on a dead or made-up token costs the store one lookup per token per this. It is also how
    /// long a token minted on another node may be refused here.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// The negative entries' lifetime: [`negative_ttl`](CacheConfig::negative_ttl) if set,
    /// else the bound.
    pub fn negative_ttl_or_bound(&self) -> Duration {
        self.negative_ttl.unwrap_or(self.bound)
    }

    /// Reads "now" from `clock` for verdicts' expiries (the store's clock, in tests a manual
    /// one). The bound is measured by the monotonic clock, always.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Keeps verdicts only while `revision` answers the same `Some` it answered before the
    /// verdict was reached: a number that changes after every change that can narrow or end
    /// access (an in-process store's records, a host's
    /// [`UserDirectory::revision`](crate::store::UserDirectory::revision)). `None` means the
    /// source cannot tell, and then nothing is served from the cache.
    pub fn revision(mut self, revision: impl Fn() -> Option<u64> + Send + Sync + 'static) -> Self {
        self.revision = Some(Arc::new(revision));
        self
    }

    /// The cache learns of changes from a [`ChangeFeed`](super::ChangeFeed) through
    /// `VerdictCache::follow` (feature `feed`): it serves nothing until the
    /// feed's first poll, and nothing once the bound passed without a successful one.
    pub fn follows_feed(mut self) -> Self {
        self.follows_feed = true;
        self
    }

    /// Asks `second_level`, a cache shared by many nodes, on a miss before the resolver, and
    /// stores there what the resolver admitted; only while the cache follows a feed and is
    /// fresh (its keys carry the change epoch). Needs a tokio runtime (for its timeout).
    #[cfg(feature = "feed")]
    pub fn second_level(mut self, second_level: impl super::SecondLevel) -> Self {
        self.second_level = Some(Arc::new(second_level));
        self
    }

    /// How long the second level is waited for before it counts as a miss (default 50 ms).
    #[cfg(feature = "feed")]
    pub fn second_level_timeout(mut self, timeout: Duration) -> Self {
        self.second_level_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let config = CacheConfig::new();
        assert_eq!(config.bound, Duration::from_secs(1));
        assert_eq!(config.max_entries, 100_000);
        assert_eq!(config.max_age, Duration::from_secs(300));
        assert_eq!(config.negative_max_entries, 10_000);
        assert_eq!(config.negative_ttl_or_bound(), Duration::from_secs(1));
        assert!(config.revision.is_none() && !config.follows_feed);
    }

    #[test]
    fn the_negative_ttl_follows_the_bound_unless_set() {
        let config = CacheConfig::new().bound(Duration::from_millis(300));
        assert_eq!(config.negative_ttl_or_bound(), Duration::from_millis(300));
        let config = config.negative_ttl(Duration::from_secs(2));
        assert_eq!(config.negative_ttl_or_bound(), Duration::from_secs(2));
    }
}
