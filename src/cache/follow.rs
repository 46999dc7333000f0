//! Keeping a verdict cache fresh from a [`ChangeFeed`]: polls at a quarter of the bound, so a
//! lost notice still arrives in time, and notices from the subscription at once.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::change::{Change, ChangeFeed, Notice};
use super::verdicts::VerdictCache;

/// The most changes asked for in one poll; a longer answer is followed by another poll at once.
const POLL_LIMIT: usize = 1000;
/// The first wait before subscribing again after the channel broke.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before subscribing again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The subscription's state, as the poller needs it.
const CONNECTING: u8 = 0;
const UP: u8 = 1;
/// The feed pushes nothing: polls alone keep the cache fresh.
const POLLS_ONLY: u8 = 2;
const DOWN: u8 = 3;

/// What the poller and the subscriber share. Both run in one future (joined), so their steps
/// between two awaits never interleave: applying a notice and advancing the epoch is one step.
struct Follower<F> {
    cache: VerdictCache,
    feed: F,
    channel: AtomicU8,
    /// Bumped whenever the channel comes up or goes down, so a poll that began before knows it
    /// cannot vouch for the cache.
    channel_generation: AtomicU64,
    poll_now: tokio::sync::Notify,
    /// The notice of the epoch applied last, when known: a poll reads it again and compares,
    /// so a store whose history was rewritten to the same epoch (restored from a backup, then
    /// changed again) is noticed, not taken for one that stood still.
    last: std::sync::Mutex<Option<Notice>>,
}

impl VerdictCache {
    /// Keeps this cache fresh from `feed`, for as long as the returned future runs: spawn it
    /// once (`tokio::spawn(cache.follow(feed))`) on a runtime with timers.
    ///
    /// Every quarter of the [bound](super::CacheConfig::bound) it asks the feed for the changes
    /// since the epoch it applied, applies them, and may then answer until the poll's start
    /// plus the bound (a poll confirms only what committed before it began). A failed poll
    /// leaves that instant alone, so the cache stops answering within the bound and requests go
    /// to the store. A gap in the epochs, or an answer that is not
    /// [complete](super::Changes::complete), drops every verdict. Meanwhile it listens to the
    /// feed's [subscription](ChangeFeed::subscribe): the next notice is applied at once, a gap
    /// brings a poll at once, and a broken subscription stops every hit until it has
    /// subscribed again (backing off from 100 ms to 2 s) and a poll after that succeeded.
    ///
    /// From the call on, the cache answers nothing until its first poll.
    pub fn follow(&self, feed: impl ChangeFeed) -> impl Future<Output = ()> + Send + 'static {
        self.mark_stale();
        let follower = Follower {
            cache: self.clone(),
            feed,
            channel: AtomicU8::new(CONNECTING),
            channel_generation: AtomicU64::new(0),
            poll_now: tokio::sync::Notify::new(),
            last: std::sync::Mutex::new(None),
        };
        async move {
            tokio::join!(follower.poll_loop(), follower.subscribe_loop());
        }
    }
}

impl<F: ChangeFeed> Follower<F> {
    async fn poll_loop(&self) {
        let interval = self.cache.config().bound / 4;
        let mut first = true;
        loop {
            // A failed poll leaves the cache's freshness alone: it runs out within the bound.
            if let Ok(truncated) = self.poll(first).await {
                first = false;
                if truncated {
                    continue;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = self.poll_now.notified() => {}
            }
        }
    }

    /// One poll: `Ok(true)` when the answer was cut at the limit and more is to be read.
    async fn poll(&self, first: bool) -> Result<bool, ()> {
        let started = Instant::now();
        let channel_generation = self.channel_generation.load(Ordering::Acquire);
        let vouches = matches!(self.channel.load(Ordering::Acquire), UP | POLLS_ONLY);
        let shared = &self.cache.shared;
        let from = shared.applied.load(Ordering::Acquire);
        // Read with `from`: a notice applied while the poll waits moves both on.
        let known = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // From the last applied epoch itself, to check it is still the change applied.
        let changes = self
            .feed
            .changes_since(from.saturating_sub(1), POLL_LIMIT + 1)
            .await
            .map_err(|_| ())?;
        let mut notices = changes.notices.as_slice();
        let mut rewritten = false;
        if from > 0 && changes.epoch >= from {
            match notices.split_first() {
                Some((first, rest)) if first.epoch == from => {
                    rewritten = known
                        .as_ref()
                        .is_some_and(|known| known.epoch == first.epoch && known != first);
                    if known.is_none() {
                        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
                        last.get_or_insert_with(|| first.clone());
                    }
                    notices = rest;
                }
                // The change of the epoch applied is gone though the store is past it.
                _ => rewritten = true,
            }
        }
        // The subscription may have applied some of these meanwhile.
        let applied = shared.applied.load(Ordering::Acquire);
        let mut reached = from;
        let mut gap = false;
        for notice in notices {
            if notice.epoch != reached + 1 {
                gap = true;
                break;
            }
            reached = notice.epoch;
        }
        let truncated = !gap && notices.len() >= POLL_LIMIT && reached < changes.epoch;
        // Fewer notices than the epoch moved by, or a store whose epoch went back (restored):
        // what changed is not known.
        let unknown = gap
            || rewritten
            || !changes.complete
            || changes.epoch < from
            || (!truncated && reached < changes.epoch);
        if first || unknown {
            self.cache.apply(&Change::All);
            let epoch = if changes.epoch < from {
                changes.epoch
            } else {
                changes.epoch.max(applied)
            };
            shared.applied.store(epoch, Ordering::Release);
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
                notices.iter().find(|notice| notice.epoch == epoch).cloned();
        } else {
            let fresh = notices.iter().filter(|notice| notice.epoch > applied);
            self.cache.apply_all(fresh.map(|notice| &notice.change));
            let now_applied = reached.max(applied);
            shared.applied.store(now_applied, Ordering::Release);
            if let Some(notice) = notices.iter().find(|notice| notice.epoch == now_applied) {
                *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(notice.clone());
            }
        }
        let still_vouches = matches!(self.channel.load(Ordering::Acquire), UP | POLLS_ONLY)
            && self.channel_generation.load(Ordering::Acquire) == channel_generation;
        if vouches && still_vouches && !truncated {
            self.cache.fresh_until(started + self.cache.config().bound);
        }
        Ok(truncated)
    }

    async fn subscribe_loop(&self) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.feed.subscribe().await {
                Ok(None) => {
                    self.channel_changed(POLLS_ONLY);
                    return;
                }
                Ok(Some(mut subscription)) => {
                    self.channel_changed(UP);
                    backoff = FIRST_BACKOFF;
                    while let Ok(notice) = subscription.next().await {
                        self.notice(notice);
                    }
                    self.channel_changed(DOWN);
                }
                Err(_) => self.channel_changed(DOWN),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn channel_changed(&self, to: u8) {
        self.channel_generation.fetch_add(1, Ordering::AcqRel);
        self.channel.store(to, Ordering::Release);
        self.cache
            .shared
            .channel_up
            .store(to != DOWN, Ordering::Release);
        if to == DOWN {
            self.cache.mark_stale();
        } else {
            // Caught up only after a poll that began now.
            self.poll_now.notify_one();
        }
    }

    fn notice(&self, notice: Notice) {
        let applied = &self.cache.shared.applied;
        let next = applied.load(Ordering::Acquire) + 1;
        if notice.epoch == next {
            self.cache.apply(&notice.change);
            applied.store(next, Ordering::Release);
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(notice);
        } else if notice.epoch > next {
            self.poll_now.notify_one();
        }
    }
}
