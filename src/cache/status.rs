//! What a verdict cache reports about itself, for a readiness check and logs.

/// A snapshot of a [`VerdictCache`](super::VerdictCache)'s state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStatus {
    /// Whether the cache may answer now: it follows no feed, or a poll succeeded within the
    /// bound and the feed's channel is not known to be down.
    pub fresh: bool,
    /// Whether the feed's subscription stands, or the feed pushes nothing and polls alone keep
    /// the cache fresh; `false` for a cache that follows no feed.
    pub channel_up: bool,
    /// The last change epoch applied from the feed.
    pub applied_epoch: u64,
    /// Requests answered from the cache.
    pub hits: u64,
    /// Requests the cache passed to the resolver (or the second level) and answered from it.
    pub misses: u64,
}
