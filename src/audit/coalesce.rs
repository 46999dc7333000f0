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
    /// The open intervals, by token: a repeat is found by borrowing the event's fields, so
    /// counting one (what a busy server does for nearly every request) allocates nothing.
    open: HashMap<TokenId, Vec<Open>>,
    /// Open intervals in all.
    count: usize,
}

/// What makes two events of one token the same but for their time.
#[derive(PartialEq, Eq)]
enum Kind {
    Refusal(InvalidReason),
    Request {
        method: String,
        path: String,
        status: u16,
    },
}

/// An event's [`Kind`], borrowed from it.
#[derive(Clone, Copy)]
enum KindRef<'a> {
    Refusal(InvalidReason),
    Request {
        method: &'a str,
        path: &'a str,
        status: u16,
    },
}

impl KindRef<'_> {
    fn matches(self, kind: &Kind) -> bool {
        match (self, kind) {
            (Self::Refusal(a), Kind::Refusal(b)) => a == *b,
            (
                Self::Request {
                    method,
                    path,
                    status,
                },
                Kind::Request {
                    method: m,
                    path: p,
                    status: s,
                },
            ) => status == *s && method == m && path == p,
            _ => false,
        }
    }

    fn to_owned(self) -> Kind {
        match self {
            Self::Refusal(reason) => Kind::Refusal(reason),
            Self::Request {
                method,
                path,
                status,
            } => Kind::Request {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
            },
        }
    }
}

struct Open {
    kind: Kind,
    interval: Interval,
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
            count: 0,
        })
    }

    /// The token, kind and interval of an event that may be coalesced.
    fn key<'a>(&self, event: &'a AuditEvent) -> Option<(&'a TokenId, KindRef<'a>, Duration)> {
        match (&event.action, &event.outcome, &event.token, &event.request) {
            (AuditAction::TokenRefused, Outcome::Refused(reason), Some(token), _) => {
                Some((token, KindRef::Refusal(*reason), self.refusals?))
            }
            (AuditAction::Request, Outcome::Success, Some(token), Some(request)) => Some((
                token,
                KindRef::Request {
                    method: &request.method,
                    path: &request.path,
                    status: request.status,
                },
                self.requests?,
            )),
            _ => None,
        }
    }

    /// Passes `event` to `out`, or counts it as a repeat.
    pub(crate) fn admit(&mut self, event: AuditEvent, now: Instant, out: &mut Vec<AuditEvent>) {
        let Some((token, kind, length)) = self.key(&event) else {
            return out.push(event);
        };
        let open = self
            .open
            .get_mut(token)
            .and_then(|opens| opens.iter_mut().find(|open| kind.matches(&open.kind)));
        if let Some(open) = open {
            let interval = &mut open.interval;
            let before = interval.repeats.as_ref().map_or(0, |e| e.occurrences);
            let mut last = event;
            last.occurrences = last.occurrences.saturating_add(before);
            interval.repeats = Some(last);
            return;
        }
        let (token, kind) = (token.clone(), kind.to_owned());
        if self.count >= MAX_OPEN {
            self.close_all(out);
        }
        self.open.entry(token).or_default().push(Open {
            kind,
            interval: Interval {
                ends: now + length,
                repeats: None,
            },
        });
        self.count += 1;
        out.push(event);
    }

    /// Closes the intervals that have ended by `now`, writing their repeats to `out`.
    pub(crate) fn close_due(&mut self, now: Instant, out: &mut Vec<AuditEvent>) {
        let mut closed = 0;
        self.open.retain(|_, opens| {
            opens.retain_mut(|open| {
                if open.interval.ends > now {
                    return true;
                }
                out.extend(open.interval.repeats.take().map(summary));
                closed += 1;
                false
            });
            !opens.is_empty()
        });
        self.count -= closed;
    }

    /// Closes every interval (at shutdown, or when too many are open).
    pub(crate) fn close_all(&mut self, out: &mut Vec<AuditEvent>) {
        out.extend(
            self.open
                .drain()
                .flat_map(|(_, opens)| opens)
                .filter_map(|open| open.interval.repeats)
                .map(summary),
        );
        self.count = 0;
    }

    /// When the next interval ends, if one is open.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.open
            .values()
            .flatten()
            .map(|open| open.interval.ends)
            .min()
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
        assert_eq!(coalescer.count, 1);
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
