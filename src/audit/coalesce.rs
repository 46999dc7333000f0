//! Repeated refusals of one token, recorded as one row per interval: a client that retries a
//! revoked token in a loop must not be able to fill the disk through the audit trail. And,
//! when asked, repeated identical requests of one token (same method, path and status): an
//! agent polling a route thousands of times a second is a row or two per interval, not a
//! database write per request.
//!
//! The first refusal of a token for a reason (the first such request) is recorded as it comes.
//! Further ones within the interval are only counted; when the interval ends, one row stands
//! for all of them: the last of them, with [`AuditEvent::occurrences`] set to their number. One
//! after that opens a new interval. So a token refused without pause costs at most two rows
//! per interval, and nothing goes uncounted.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{AuditAction, AuditEvent, Outcome};
use crate::error::InvalidReason;
use crate::principal::TokenId;

/// Tokens with an open interval at most; past it, every interval is closed at once (written
/// early, never lost), so memory stays bounded whatever a client sends.
const MAX_OPEN: usize = 4096;

pub(crate) struct Coalescer {
    refusals: Option<Duration>,
    requests: Option<Duration>,
    open: HashMap<Key, Interval>,
}

/// What makes two events the same but for their time.
#[derive(PartialEq, Eq, Hash)]
enum Key {
    Refusal(TokenId, InvalidReason),
    Request {
        token: TokenId,
        method: String,
        path: String,
        status: u16,
    },
}

struct Interval {
    ends: Instant,
    /// The last repeated refusal, its `occurrences` the number of repeats so far.
    repeats: Option<AuditEvent>,
}

impl Coalescer {
    /// Refusals coalesced over `refusals`, requests over `requests`; `None` for `None`
    /// (nothing to coalesce).
    pub(crate) fn new(refusals: Option<Duration>, requests: Option<Duration>) -> Option<Self> {
        (refusals.is_some() || requests.is_some()).then(|| Self {
            refusals,
            requests,
            open: HashMap::new(),
        })
    }

    /// The key and interval of an event that may be coalesced.
    fn key(&self, event: &AuditEvent) -> Option<(Key, Duration)> {
        match (&event.action, &event.outcome, &event.token, &event.request) {
            (AuditAction::TokenRefused, Outcome::Refused(reason), Some(token), _) => {
                Some((Key::Refusal(token.clone(), *reason), self.refusals?))
            }
            (AuditAction::Request, Outcome::Success, Some(token), Some(request)) => Some((
                Key::Request {
                    token: token.clone(),
                    method: request.method.clone(),
                    path: request.path.clone(),
                    status: request.status,
                },
                self.requests?,
            )),
            _ => None,
        }
    }

    /// Passes `event` to `out`, or counts it as a repeat.
    pub(crate) fn admit(&mut self, event: AuditEvent, now: Instant, out: &mut Vec<AuditEvent>) {
        let Some((key, length)) = self.key(&event) else {
            return out.push(event);
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
                ends: now + length,
                repeats: None,
            },
        );
        out.push(event);
    }

    /// Closes the intervals that have ended by `now`, writing their repeats to `out`.
    pub(crate) fn close_due(&mut self, now: Instant, out: &mut Vec<AuditEvent>) {
        self.open.retain(|_, open| {
            if open.ends > now {
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
        self.open.values().map(|open| open.ends).min()
    }
}

fn summary(mut last: AuditEvent) -> AuditEvent {
    let count = last.occurrences;
    let plural = if count == 1 { "" } else { "s" };
    last.detail = Some(match last.action {
        AuditAction::Request => {
            format!("{count} identical request{plural} of this token since the last recorded one")
        }
        _ => format!(
            "{count} repeated refusal{plural} of this token for this reason since the last recorded one"
        ),
    });
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
        let mut coalescer = Coalescer::new(Some(Duration::from_secs(60)), None).unwrap();
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
        let mut coalescer = Coalescer::new(Some(Duration::from_secs(60)), None).unwrap();
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
        let mut coalescer = Coalescer::new(Some(Duration::from_secs(60)), None).unwrap();
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

    fn request(token: &str, path: &str, status: u16) -> AuditEvent {
        AuditEvent::new(
            time::OffsetDateTime::UNIX_EPOCH,
            AuditAction::Request,
            Outcome::Success,
        )
        .token(token)
        .request("GET", path, status)
    }

    #[test]
    fn identical_requests_within_their_interval_become_one_counted_row() {
        let mut coalescer = Coalescer::new(None, Some(Duration::from_secs(1))).unwrap();
        let start = Instant::now();
        let mut out = Vec::new();
        for _ in 0..500 {
            coalescer.admit(request("tok_1", "/posts", 200), start, &mut out);
        }
        coalescer.admit(request("tok_1", "/posts", 404), start, &mut out);
        coalescer.admit(request("tok_1", "/other", 200), start, &mut out);
        coalescer.admit(request("tok_2", "/posts", 200), start, &mut out);
        assert_eq!(out.len(), 4, "each first one is written as it comes");
        coalescer.close_due(start + Duration::from_secs(1), &mut out);
        assert_eq!(out.len(), 5);
        assert_eq!(out[4].occurrences, 499);
        assert!(
            out[4]
                .detail
                .as_deref()
                .unwrap()
                .contains("499 identical requests")
        );
    }

    #[test]
    fn requests_are_not_coalesced_unless_asked() {
        let mut coalescer = Coalescer::new(Some(Duration::from_secs(60)), None).unwrap();
        let now = Instant::now();
        let mut out = Vec::new();
        for _ in 0..3 {
            coalescer.admit(request("tok_1", "/posts", 200), now, &mut out);
        }
        assert_eq!(out.len(), 3);
        assert!(Coalescer::new(None, None).is_none());
    }
}
