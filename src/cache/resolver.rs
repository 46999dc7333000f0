//! A [`TokenResolver`] that answers from a [`VerdictCache`] and asks the resolver it wraps
//! only on a miss.

use super::verdicts::VerdictCache;
use crate::error::ResolveError;
use crate::principal::{Principal, TokenId};
use crate::resolver::{SettleFuture, TokenLookup, TokenResolver};
use crate::token::TokenFormat;

/// Wraps any store's resolver with a [`VerdictCache`]: a hit answers in
/// [`resolve_now`](TokenResolver::resolve_now), so the layer's synchronous path serves it, and
/// the use is recorded through [`TokenResolver::touch`] — once a second per token at most, so
/// that hits take no lock. Use-limited tokens always reach the wrapped resolver, which reserves
/// each use from the store's counter.
///
/// ```
/// use tower_agent_auth::cache::{CacheConfig, CachingResolver, VerdictCache};
/// use tower_agent_auth::store::{MemoryStore, MemoryUserDirectory};
/// use tower_agent_auth::token::TokenFormat;
/// use tower_agent_auth::AgentAuthLayer;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new(TokenFormat::new("acme")?, MemoryUserDirectory::new());
/// let cache = VerdictCache::new(CacheConfig::new());
/// let layer = AgentAuthLayer::new(CachingResolver::new(store, cache));
/// # let _ = layer; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CachingResolver<R> {
    inner: R,
    cache: VerdictCache,
}

impl<R: TokenResolver> CachingResolver<R> {
    /// `inner`'s verdicts, kept in `cache`.
    pub fn new(inner: R, cache: VerdictCache) -> Self {
        Self { inner, cache }
    }

    /// The cache, to [apply](VerdictCache::apply) changes to or read its
    /// [status](VerdictCache::status).
    pub fn cache(&self) -> &VerdictCache {
        &self.cache
    }

    /// The wrapped resolver.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

#[async_trait::async_trait]
impl<R: TokenResolver> TokenResolver for CachingResolver<R> {
    fn token_format(&self) -> &TokenFormat {
        self.inner.token_format()
    }

    fn resolve_now(&self, token: &TokenLookup<'_>) -> Option<Result<Principal, ResolveError>> {
        resolve_now(&self.cache, &self.inner, token)
    }

    async fn resolve(&self, token: &TokenLookup<'_>) -> Result<Principal, ResolveError> {
        resolve(&self.cache, &self.inner, token).await
    }

    fn settle_use(&self, token: &TokenId, spent: bool) -> Option<SettleFuture> {
        self.inner.settle_use(token, spent)
    }

    fn touch(&self, principal: &Principal) {
        self.inner.touch(principal)
    }
}

/// A hit, with its use recorded by `inner`.
fn hit<R: TokenResolver + ?Sized>(
    cache: &VerdictCache,
    inner: &R,
    token: &TokenLookup<'_>,
) -> Option<Result<Principal, ResolveError>> {
    let hit = cache.find(token)?;
    if let (true, Ok(principal)) = (hit.record_use, &hit.answer) {
        inner.touch(principal);
    }
    Some(hit.answer)
}

/// [`TokenResolver::resolve_now`] through `cache` over `inner`: for a store that keeps its
/// cache inside itself (the in-memory store).
pub(crate) fn resolve_now<R: TokenResolver + ?Sized>(
    cache: &VerdictCache,
    inner: &R,
    token: &TokenLookup<'_>,
) -> Option<Result<Principal, ResolveError>> {
    if let Some(answer) = hit(cache, inner, token) {
        return Some(answer);
    }
    let ticket = cache.ticket();
    let answer = inner.resolve_now(token)?;
    cache.admit(token.hash(), &answer, ticket);
    Some(answer)
}

/// [`TokenResolver::resolve`] through `cache` (and its second level) over `inner`.
pub(crate) async fn resolve<R: TokenResolver + ?Sized>(
    cache: &VerdictCache,
    inner: &R,
    token: &TokenLookup<'_>,
) -> Result<Principal, ResolveError> {
    if let Some(answer) = hit(cache, inner, token) {
        return answer;
    }
    let ticket = cache.ticket();
    #[cfg(feature = "feed")]
    if let Some(principal) = second_level::get(cache, token, ticket).await {
        let answer = Ok(principal);
        cache.admit(token.hash(), &answer, ticket);
        if let Ok(principal) = &answer {
            inner.touch(principal);
        }
        return answer;
    }
    let answer = inner.resolve(token).await;
    #[cfg(feature = "feed")]
    if let Ok(principal) = &answer {
        second_level::put(cache, token, ticket, principal).await;
    }
    cache.admit(token.hash(), &answer, ticket);
    answer
}

/// The shared second level: asked only while the cache is fresh, at the epoch it applied;
/// its errors and its slowness are misses, never refusals.
#[cfg(feature = "feed")]
mod second_level {
    use super::super::verdicts::Ticket;
    use super::{TokenLookup, VerdictCache};
    use crate::principal::Principal;

    pub(super) async fn get(
        cache: &VerdictCache,
        token: &TokenLookup<'_>,
        ticket: Ticket,
    ) -> Option<Principal> {
        let config = cache.config();
        let second = config.second_level.as_ref()?;
        // Without a feed the epoch never moves: an entry would outlive every revocation.
        if !config.follows_feed || !cache.is_fresh() {
            return None;
        }
        let found = tokio::time::timeout(
            config.second_level_timeout,
            second.get(token.hash(), ticket.epoch),
        )
        .await;
        let principal = found.ok()?.ok()??;
        // What it holds must stand here as it would in this cache.
        let stands = cache.keep_for(&principal).is_some()
            && principal
                .agent_ref()
                .is_some_and(|agent| agent.slug() == token.slug());
        stands.then_some(principal)
    }

    pub(super) async fn put(
        cache: &VerdictCache,
        token: &TokenLookup<'_>,
        ticket: Ticket,
        principal: &Principal,
    ) {
        let config = cache.config();
        let Some(second) = config.second_level.as_ref() else {
            return;
        };
        let Some(ttl) = cache.keep_for(principal) else {
            return;
        };
        if !config.follows_feed || !cache.is_fresh() {
            return;
        }
        let write = second.put(token.hash(), ticket.epoch, principal, ttl);
        // A slow or failed write costs this request nothing but the timeout.
        let _ = tokio::time::timeout(config.second_level_timeout, write).await;
    }
}
