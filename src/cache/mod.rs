//! The verdict cache over any store's resolver, and how changes reach it.

mod change;
#[cfg(feature = "redis")]
mod redis;

pub use change::{Change, ChangeFeed, Changes, Notice, SecondLevel, Subscription};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_PREFIX, RedisSecondLevel};
