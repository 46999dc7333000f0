//! [`RateCounter`]: where hits are counted — [`LocalCounter`](super::LocalCounter) in this
//! process, `RedisCounter` (feature `redis`) across nodes — and the fixed [`Window`] they count
//! in.

use std::time::Duration;

use super::LimitKind;
use crate::error::BoxError;

/// One fixed window of a given length, aligned to Unix time: the `index`-th window since the
/// epoch is `[index × length, (index + 1) × length)`, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `floor(unix_ms / length_ms)`.
    pub index: i64,
    /// Time left until the window ends (at least a millisecond).
    pub remaining: Duration,
}

impl Window {
    /// The window of `length` (whole milliseconds, at least one) holding the instant
    /// `unix_nanos` (nanoseconds since the Unix epoch, as [`Clock::unix_nanos`] reads it).
    ///
    /// [`Clock::unix_nanos`]: crate::clock::Clock::unix_nanos
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_agent_auth::limit::Window;
    /// let w = Window::containing(2_500_000_000, Duration::from_secs(1)); // 2.5 s after the epoch
    /// assert_eq!((w.index, w.remaining), (2, Duration::from_millis(500)));
    /// ```
    pub fn containing(unix_nanos: i128, length: Duration) -> Self {
        let length_ms = length.as_millis().clamp(1, i64::MAX as u128) as i128;
        let now_ms = unix_nanos.div_euclid(1_000_000);
        let index = now_ms.div_euclid(length_ms);
        let ends_ms = (index + 1) * length_ms;
        let remaining_ms = (ends_ms - now_ms).max(1);
        Self {
            index: index.clamp(i64::MIN as i128, i64::MAX as i128) as i64,
            remaining: Duration::from_millis(remaining_ms as u64),
        }
    }
}

/// What a [`RateCounter`] found: how many hits the window holds, this one included, and how
/// long until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hit {
    /// Hits of the key in the current window, counting this one.
    pub count: u64,
    /// Time left until the window ends.
    pub remaining: Duration,
}

impl Hit {
    /// A count and the time left in its window.
    pub fn new(count: u64, remaining: Duration) -> Self {
        Self { count, remaining }
    }
}

/// Counts requests per key in fixed windows aligned to Unix time (see [`Window`]).
///
/// A counter sees ids — a token id, an agent id — never a token. An error means the count
/// cannot be known: the [`RateLimitLayer`](super::RateLimitLayer) then answers `503` and
/// admits nothing (it fails closed).
#[async_trait::async_trait]
pub trait RateCounter: Send + Sync + 'static {
    /// Counts one hit of the `kind` limit of `id` in the current window of length `window`,
    /// and returns the window's count (this hit included) and the time left in it.
    async fn hit(&self, kind: LimitKind, id: &str, window: Duration) -> Result<Hit, BoxError>;
}

#[async_trait::async_trait]
impl<C: RateCounter + ?Sized> RateCounter for std::sync::Arc<C> {
    async fn hit(&self, kind: LimitKind, id: &str, window: Duration) -> Result<Hit, BoxError> {
        (**self).hit(kind, id, window).await
    }
}
