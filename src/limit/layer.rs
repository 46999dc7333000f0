//! [`RateLimitLayer`]: the rates and the counter, shared by every service it builds.

use std::sync::Arc;

use tower_layer::Layer;

use super::check::Shared;
use super::{LocalCounter, RateCounter, RateLimit, RateLimits};

/// A tower [`Layer`] that holds each agent-authenticated request to its token's and its agent's
/// [`RateLimits`]. Place it inside [`AgentAuthLayer`](crate::AgentAuthLayer): it reads the
/// [`Principal`](crate::Principal) the auth layer put into the request extensions. See the
/// [module documentation](crate::limit).
#[derive(Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayer {
    /// Enforces `limits`, counting with `counter` (a `RedisCounter`, feature `redis`, for one
    /// count across nodes).
    pub fn new(limits: RateLimits, counter: impl RateCounter) -> Self {
        Self::from_arc(limits, Arc::new(counter))
    }

    /// Like [`RateLimitLayer::new`] for a counter already behind an `Arc`.
    pub fn from_arc(limits: RateLimits, counter: Arc<dyn RateCounter>) -> Self {
        Self {
            shared: Arc::new(Shared { limits, counter }),
        }
    }

    /// Enforces `limits` per node, counting in this process ([`LocalCounter`]).
    pub fn local(limits: RateLimits) -> Self {
        Self::new(limits, LocalCounter::new())
    }

    /// The rates enforced.
    pub fn limits(&self) -> &RateLimits {
        &self.shared.limits
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.shared.clone())
    }
}
