//! The verdict cache over any store's resolver, and how changes reach it.
//!
//! A [`CachingResolver`] answers from a [`VerdictCache`] — principals by token hash, never by
//! token — and asks the resolver it wraps on a miss. A verdict is never served past its own
//! [expiry](crate::ExecutionPrincipal::expires_at), nor after a [`Change`] it depends on was
//! applied; use-limited tokens always reach the resolver, which spends each use from the
//! store's counter. How the cache learns of changes:
//!
//! - in one process, a [revision](CacheConfig::revision) read before each verdict: a change
//!   anywhere in the store makes every older verdict stale at once (the in-memory store's own
//!   cache works so);
//! - across nodes, a [`ChangeFeed`] the cache [follows](VerdictCache::follow) (feature `feed`):
//!   polled at a quarter of the [bound](CacheConfig::bound), so that a lost notice still
//!   arrives within it, and no hits at all while the feed cannot be read or its channel is
//!   known to be down.

mod change;
mod config;
#[cfg(feature = "feed")]
mod follow;
mod resolver;
mod status;
mod verdicts;

#[cfg(feature = "redis")]
mod redis;

pub use change::{Change, ChangeFeed, Changes, Notice, SecondLevel, Subscription};
pub use config::CacheConfig;
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_PREFIX, RedisSecondLevel};
pub use resolver::CachingResolver;
pub(crate) use resolver::{resolve, resolve_now};
pub use status::CacheStatus;
pub use verdicts::VerdictCache;
