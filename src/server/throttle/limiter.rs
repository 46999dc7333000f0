//! A keyed limiter that can give an attempt back: GCRA (the algorithm of `governor`), with a
//! refund, because the sign-in limits count failures only and a correct password returns what
//! its attempt took.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest window a limiter keeps: `Instant` arithmetic past it could overflow.
const LONGEST_WINDOW: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A burst of `burst` attempts per key, refilled one every `window / burst`.
///
/// Each key keeps its theoretical arrival time (`tat`): the instant at which its burst would be
/// whole again if nothing more were taken. An attempt moves it one interval later, and is
/// refused when that would put it more than the window ahead of now; a refund moves it back.
pub(super) struct Limiter<K> {
    /// One attempt's share of the window.
    interval: Duration,
    /// How far ahead of now the `tat` may run: the whole burst.
    window: Duration,
    tats: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `burst` attempts over `window` (at least one millisecond per attempt).
    pub(super) fn new(burst: std::num::NonZeroU32, window: Duration) -> Self {
        let interval = (window.min(LONGEST_WINDOW) / burst.get()).max(Duration::from_millis(1));
        Self {
            interval,
            window: interval * burst.get(),
            tats: Mutex::default(),
        }
    }

    fn tats(&self) -> std::sync::MutexGuard<'_, HashMap<K, Instant>> {
        self.tats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one attempt for `key`: `Err(wait)` when over the limit (then nothing is taken).
    /// Holds at most `max` keys: past it, keys whose burst is whole again are dropped and, if
    /// every key is still live, all of them (a flood of distinct keys within one window).
    pub(super) fn take(&self, key: &K, max: usize) -> Result<(), Duration> {
        let now = Instant::now();
        let mut tats = self.tats();
        if tats.len() >= max && !tats.contains_key(key) {
            tats.retain(|_, tat| *tat > now);
            if tats.len() >= max {
                tats.clear();
            }
            tats.shrink_to_fit();
        }
        let tat = tats.get(key).map_or(now, |tat| (*tat).max(now));
        let next = tat + self.interval;
        let allowed = now + self.window;
        if next > allowed {
            return Err(next - allowed);
        }
        tats.insert(key.clone(), next);
        Ok(())
    }

    /// Gives back one attempt taken for `key`. A key dropped since (memory bound) has nothing
    /// to give back to.
    pub(super) fn give_back(&self, key: &K) {
        let now = Instant::now();
        let mut tats = self.tats();
        if let Some(tat) = tats.get_mut(key) {
            match tat.checked_sub(self.interval) {
                Some(earlier) if earlier > now => *tat = earlier,
                // Whole again: the key holds nothing worth keeping.
                _ => {
                    tats.remove(key);
                }
            }
        }
    }

    /// How many keys it holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.tats().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn limiter(burst: u32, window_ms: u64) -> Limiter<&'static str> {
        Limiter::new(
            NonZeroU32::new(burst).unwrap(),
            Duration::from_millis(window_ms),
        )
    }

    #[test]
    fn a_burst_then_one_interval_to_wait() {
        let limiter = limiter(3, 60_000);
        for _ in 0..3 {
            limiter.take(&"a", 10).unwrap();
        }
        let wait = limiter.take(&"a", 10).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert!(limiter.take(&"b", 10).is_ok(), "another key");
    }

    #[test]
    fn what_is_given_back_can_be_taken_again_and_no_more() {
        let limiter = limiter(2, 60_000);
        for _ in 0..10 {
            limiter.take(&"a", 10).unwrap();
            limiter.give_back(&"a");
        }
        limiter.take(&"a", 10).unwrap();
        limiter.take(&"a", 10).unwrap();
        assert!(limiter.take(&"a", 10).is_err());
        limiter.give_back(&"a");
        limiter.take(&"a", 10).unwrap();
        assert!(limiter.take(&"a", 10).is_err());
        // Giving back more than was taken leaves a whole burst, not more.
        for _ in 0..5 {
            limiter.give_back(&"a");
        }
        limiter.take(&"a", 10).unwrap();
        limiter.take(&"a", 10).unwrap();
        assert!(limiter.take(&"a", 10).is_err());
    }

    #[test]
    fn the_burst_refills_within_the_window() {
        let limiter = limiter(2, 100);
        limiter.take(&"a", 10).unwrap();
        limiter.take(&"a", 10).unwrap();
        let wait = limiter.take(&"a", 10).unwrap_err();
        std::thread::sleep(wait + Duration::from_millis(5));
        assert!(limiter.take(&"a", 10).is_ok());
    }

    #[test]
    fn a_window_past_any_clock_is_cut_not_a_panic() {
        let limiter = Limiter::new(NonZeroU32::MIN, Duration::MAX);
        limiter.take(&"a", 10).unwrap();
        assert!(limiter.take(&"a", 10).is_err());
    }
}
