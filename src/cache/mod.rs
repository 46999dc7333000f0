#![doc = include_str!("../../docs/cache.md")]

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
pub use redis::{DEFAULT_PREFIX, MIN_SECRET_LEN, RedisSecondLevel};
pub use resolver::CachingResolver;
pub(crate) use resolver::{resolve, resolve_now};
pub use status::CacheStatus;
pub use verdicts::VerdictCache;
