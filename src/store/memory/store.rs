//! [`MemoryStore`](super::MemoryStore): a [`Store`] over a [`MemoryBackend`], and what only it
//! can do.

#[cfg(feature = "cache")]
use std::sync::atomic::Ordering;

use super::MemoryBackend;
use crate::clock::Clock;
use crate::store::{Store, StoreConfig, UserDirectory};
use crate::token::TokenFormat;

impl Store<MemoryBackend> {
    /// An empty store minting tokens of `format`, with owners looked up in `directory`.
    pub fn new(format: TokenFormat, directory: impl UserDirectory) -> Self {
        Self::with_config(StoreConfig::new(format, directory))
    }

    /// An empty store with this configuration.
    pub fn with_config(config: StoreConfig) -> Self {
        Self::from_backend(MemoryBackend::new(config.last_used_interval), config)
    }

    fn edit(self, change: impl FnOnce(StoreConfig) -> StoreConfig) -> Self {
        let (mut backend, config) = self
            .into_parts()
            .unwrap_or_else(|| panic!("configure MemoryStore before cloning it"));
        let config = change(config);
        // Keep what was stored already.
        backend.last_used_interval =
            i64::try_from(config.last_used_interval.as_secs()).unwrap_or(i64::MAX);
        Self::from_backend(backend, config)
    }

    /// Reads time from `clock` (for tests of expiry).
    ///
    /// # Panics
    /// If the store was already cloned.
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.edit(|config| config.clock(clock))
    }

    /// Records last-used at most once per `interval` per token (default 60 s).
    ///
    /// # Panics
    /// If the store was already cloned.
    pub fn with_last_used_interval(self, interval: std::time::Duration) -> Self {
        self.edit(|config| config.last_used_interval(interval))
    }

    /// A verdict cache kept by this store's revision and its user directory's (feature
    /// `cache`): over this store, a [`CachingResolver`](crate::cache::CachingResolver) reuses
    /// a verdict exactly while neither the store's records nor the directory changed and no
    /// expiry passed, so every change is seen by the very next request, while a use or a
    /// last-used time changes nothing. Without a directory revision
    /// ([`UserDirectory::revision`]) it reuses nothing.
    ///
    /// ```
    /// use tower_agent_auth::cache::CachingResolver;
    /// # use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
    /// # use tower_agent_auth::token::TokenFormat;
    /// # let store = MemoryStore::new(TokenFormat::new("acme").unwrap(), MemoryUserDirectory::new());
    /// let resolver = CachingResolver::new(store.clone(), store.verdict_cache());
    /// # let _ = resolver;
    /// ```
    #[cfg(feature = "cache")]
    pub fn verdict_cache(&self) -> crate::cache::VerdictCache {
        let records = self.backend().revision_counter();
        let directory = self.config().directory.clone();
        let revision = move || {
            let directory = directory.revision()?;
            // One number for two counters that only grow: they would have to move by 2^32
            // between a verdict and its next request to meet again.
            let records = records.load(Ordering::Acquire);
            Some((records << 32) ^ directory)
        };
        crate::cache::VerdictCache::new(
            crate::cache::CacheConfig::new()
                .clock(self.config().clock.clone())
                .revision(revision),
        )
    }
}
