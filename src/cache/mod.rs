#![cfg_attr(feature = "cache", doc = include_str!("../../docs/cache.md"))]
#![cfg_attr(
    not(feature = "cache"),
    doc = "The verdict cache (feature `cache`) and the change feed a store announces its changes \
           on. Without the feature, only the change types are here: a store names them whether \
           or not anything caches."
)]

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
