//! [`LocalCounter`]: counts in this process (each node counts its own requests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Hit, LimitKind, RateCounter, Window};
use crate::clock::{Clock, SystemClock};
use crate::error::BoxError;

/// How many hits between sweeps of windows that have ended.
const SWEEP_EVERY: u64 = 1_024;

/// A [`RateCounter`] in memory: exact for one node, per node when there are several (each
/// admits up to the rate; use `RedisCounter`, feature `redis`, for one count across nodes).
///
/// Memory stays bounded: a key keeps only its current window's count, and keys whose window
/// has ended are dropped every thousand hits or so, so the map holds about the keys seen in
/// their current window.
#[derive(Clone)]
pub struct LocalCounter {
    counts: Arc<Mutex<Counts>>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Counts {
    windows: HashMap<(LimitKind, Box<str>), Entry>,
    hits: u64,
}

struct Entry {
    length: Duration,
    index: i64,
    count: u64,
}

impl std::fmt::Debug for LocalCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounter")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for LocalCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalCounter {
    /// An empty counter reading the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty counter reading `clock` (a `ManualClock` in tests).
    pub fn with_clock(clock: impl Clock) -> Self {
        Self {
            counts: Arc::default(),
            clock: Arc::new(clock),
        }
    }

    /// How many keys the counter holds now.
    pub fn len(&self) -> usize {
        self.lock().windows.len()
    }

    /// Whether the counter holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a hit now; synchronous, as the map is.
    fn count(&self, kind: LimitKind, id: &str, length: Duration) -> Hit {
        let now = self.clock.unix_nanos();
        let window = Window::containing(now, length);
        let mut counts = self.lock();
        counts.hits += 1;
        if counts.hits % SWEEP_EVERY == 0 {
            counts
                .windows
                .retain(|_, entry| entry.index >= Window::containing(now, entry.length).index);
        }
        let key = (kind, Box::<str>::from(id));
        let entry = counts.windows.entry(key).or_insert(Entry {
            length,
            index: window.index,
            count: 0,
        });
        if entry.index != window.index || entry.length != length {
            *entry = Entry {
                length,
                index: window.index,
                count: 0,
            };
        }
        entry.count = entry.count.saturating_add(1);
        Hit::new(entry.count, window.remaining)
    }
}

#[async_trait::async_trait]
impl RateCounter for LocalCounter {
    async fn hit(&self, kind: LimitKind, id: &str, window: Duration) -> Result<Hit, BoxError> {
        Ok(self.count(kind, id, window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_new_window_starts_from_zero_and_old_windows_are_dropped() {
        let clock = Arc::new(ManualClock::new(time::OffsetDateTime::UNIX_EPOCH));
        let counter = LocalCounter::with_clock(clock.clone());
        let second = Duration::from_secs(1);
        assert_eq!(counter.count(LimitKind::Token, "t", second).count, 1);
        assert_eq!(counter.count(LimitKind::Token, "t", second).count, 2);
        clock.advance(Duration::from_millis(1_000));
        assert_eq!(counter.count(LimitKind::Token, "t", second).count, 1);
        for n in 0..SWEEP_EVERY {
            counter.count(LimitKind::Agent, &n.to_string(), second);
        }
        clock.advance(second);
        for _ in 0..SWEEP_EVERY {
            counter.count(LimitKind::Agent, "busy", second);
        }
        assert!(
            counter.len() <= 2,
            "ended windows are swept: {}",
            counter.len()
        );
    }
}
