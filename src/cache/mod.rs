//! The verdict cache over any store's resolver, and how changes reach it.

mod change;

pub use change::{Change, ChangeFeed, Changes, Notice, SecondLevel, Subscription};
