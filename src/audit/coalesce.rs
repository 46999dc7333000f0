//! Repeated refusals of one token, recorded as one row per interval: a client that retries a
//! revoked token in a loop must not be able to fill the disk through the audit trail.
//!
//! The first refusal of a token for a reason is recorded as it comes. Further refusals of that
//! token for that reason within the interval are only counted; when the interval ends, one row
//! stands for all of them: the last of them, with [`AuditEvent::occurrences`] set to their
//! number. A refusal after that opens a new interval. So a token refused without pause costs
//! at most two rows per interval, and no refusal goes uncounted.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{AuditAction, AuditEvent, Outcome};
use crate::principal::TokenId;
use crate::reason::InvalidReason;

/// Tokens with an open interval at most; past it, every interval is closed at once (written
/// early, never lost), so memory stays bounded whatever a client sends.
const MAX_OPEN: usize = 4096;

pub(crate) struct Coalescer {
    interval: Duration,
    open: HashMap<(TokenId, InvalidReason), Interval>,
}

struct Interval {
    opened: Instant,
    /// The last repeated refusal, its `occurrences` the number of repeats so far.
    repeats: Option<AuditEvent>,
}

impl Coalescer {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            open: HashMap::new(),
        }
    }

    /// Passes `event` to `out`, or counts it as a repeat.
    pub(crate) fn admit(&mut self, event: AuditEvent, now: Instant, out: &mut Vec<AuditEvent>) {
        let key = match (&event.action, &event.outcome, &event.token) {
            (AuditAction::TokenRefused, Outcome::Refused(reason), Some(token)) => {
                (token.clone(), *reason)
            }
            _ => return out.push(event),
        };
        if let Some(interval) = self.open.get_mut(&key) {
            let before = interval.repeats.as_ref().map_or(0, |e| e.occurrences);
            let mut last = event;
            last.occurrences = last.occurrences.saturating_add(before);
            interval.repeats = Some(last);
            return;
        }
        if self.open.len() >= MAX_OPEN {
            self.close_all(out);
        }
        self.open.insert(
            key,
            Interval {
                opened: now,
                repeats: None,
            },
        );
        out.push(event);
    }

    /// Closes the intervals that have ended by `now`, writing their repeats to `out`.
    pub(crate) fn close_due(&mut self, now: Instant, out: &mut Vec<AuditEvent>) {
        let interval = self.interval;
        self.open.retain(|_, open| {
            if open.opened + interval > now {
                return true;
            }
            out.extend(open.repeats.take().map(summary));
            false
        });
    }

    /// Closes every interval (at shutdown, or when too many are open).
    pub(crate) fn close_all(&mut self, out: &mut Vec<AuditEvent>) {
        out.extend(
            self.open
                .drain()
                .filter_map(|(_, open)| open.repeats)
                .map(summary),
        );
    }

    /// When the next interval ends, if one is open.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.open
            .values()
            .map(|open| open.opened + self.interval)
            .min()
    }
}

fn summary(mut last: AuditEvent) -> AuditEvent {
    let count = last.occurrences;
    last.detail = Some(format!(
        "{count} repeated refusal{} of this token for this reason since the last recorded one",
        if count == 1 { "" } else { "s" }
    ));
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(token: &str, reason: InvalidReason) -> AuditEvent {
        AuditEvent::new(
            time::OffsetDateTime::UNIX_EPOCH,
            AuditAction::TokenRefused,
            Outcome::Refused(reason),
        )
        .token(token)
    }

    #[test]
    fn repeats_within_the_interval_become_one_counted_row() {
        let mut coalescer = Coalescer::new(Duration::from_secs(60));
        let start = Instant::now();
        let mut out = Vec::new();
        for _ in 0..3000 {
            coalescer.admit(refused("tok_1", InvalidReason::Revoked), start, &mut out);
        }
        assert_eq!(out.len(), 1, "the first is written as it comes");
        coalescer.close_due(start + Duration::from_secs(59), &mut out);
        assert_eq!(out.len(), 1, "the interval is still open");
        coalescer.close_due(start + Duration::from_secs(60), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].occurrences, 2999);
        assert_eq!(out.iter().map(|e| e.occurrences).sum::<u64>(), 3000);
        assert_eq!(coalescer.next_due(), None);
    }

    #[test]
    fn other_tokens_reasons_and_events_are_not_merged() {
        let mut coalescer = Coalescer::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        coalescer.admit(refused("tok_1", InvalidReason::Revoked), now, &mut out);
        coalescer.admit(refused("tok_2", InvalidReason::Revoked), now, &mut out);
        coalescer.admit(refused("tok_1", InvalidReason::Expired), now, &mut out);
        let request = AuditEvent::new(
            time::OffsetDateTime::UNIX_EPOCH,
            AuditAction::Request,
            Outcome::Success,
        )
        .token("tok_1");
        coalescer.admit(request.clone(), now, &mut out);
        coalescer.admit(request, now, &mut out);
        assert_eq!(out.len(), 5);
        coalescer.close_all(&mut out);
        assert_eq!(out.len(), 5, "no repeats, no summary rows");
    }

    #[test]
    fn open_intervals_are_bounded_and_closing_early_loses_no_count() {
        let mut coalescer = Coalescer::new(Duration::from_secs(60));
        let now = Instant::now();
        let mut out = Vec::new();
        for n in 0..MAX_OPEN {
            let token = format!("tok_{n}");
            coalescer.admit(refused(&token, InvalidReason::Revoked), now, &mut out);
            coalescer.admit(refused(&token, InvalidReason::Revoked), now, &mut out);
        }
        coalescer.admit(refused("tok_new", InvalidReason::Revoked), now, &mut out);
        assert_eq!(coalescer.open.len(), 1);
        assert_eq!(
            out.iter().map(|e| e.occurrences).sum::<u64>(),
            2 * MAX_OPEN as u64 + 1
        );
    }
}
