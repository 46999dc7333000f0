#![doc = include_str!("../../docs/cache.md")]

mod change;
#[cfg(feature = "cache")]
mod config;
#[cfg(feature = "feed")]
mod follow;
#[cfg(feature = "cache")]
mod resolver;
#[cfg(feature = "cache")]
mod status;
#[cfg(feature = "cache")]
mod verdicts;

#[cfg(feature = "redis")]
mod redis;

pub use change::{Change, ChangeFeed, Changes, Notice, SecondLevel, Subscription};
#[cfg(feature = "cache")]
pub use config::CacheConfig;
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_PREFIX, MIN_SECRET_LEN, RedisSecondLevel};
#[cfg(feature = "cache")]
pub use resolver::CachingResolver;
#[cfg(feature = "cache")]
pub use status::CacheStatus;
#[cfg(feature = "cache")]
pub use verdicts::VerdictCache;
