//! How long a fetched document is kept: its `Cache-Control` (`max-age`; `no-store` and
//! `no-cache` as 0), within the configured bounds. Only valid documents are kept (draft §4.4):
//! an error or a refused document is never cached, so the next request fetches anew.

use std::time::{Duration, Instant};

use http::HeaderMap;
use http::header::CACHE_CONTROL;

use crate::oauth::client::Client;

/// A valid document, as the client it describes, and how long it is kept.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// The client, as the document describes it.
    pub(crate) client: Client,
    /// How long it is kept from when it was fetched.
    pub(crate) keep_for: Duration,
}

/// What the answer's `Cache-Control` asks for, in seconds: `max-age`, 0 for `no-store` or
/// `no-cache`; `None` when it says nothing about freshness.
fn asked(headers: &HeaderMap) -> Option<u64> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(0);
            }
            if name.eq_ignore_ascii_case("max-age") {
                // An unreadable max-age is stale (RFC 9111 §4.2.1); a huge one saturates.
                let seconds = argument.map_or(Some(0), |a| {
                    a.parse::<u64>()
                        .ok()
                        .or_else(|| a.bytes().all(|b| b.is_ascii_digit()).then_some(u64::MAX))
                });
                max_age = Some(max_age.unwrap_or(u64::MAX).min(seconds.unwrap_or(0)));
            }
        }
    }
    max_age
}

/// How long to keep a document answered with `headers`: what it asks for (the lower bound if
/// nothing), within `[min, max]`.
pub(crate) fn keep_for(headers: &HeaderMap, min: Duration, max: Duration) -> Duration {
    asked(headers)
        .map_or(min, Duration::from_secs)
        .clamp(min, max.max(min))
}

/// Expires each entry `keep_for` after it was stored.
pub(crate) struct Expiry;

impl moka::Expiry<String, std::sync::Arc<Kept>> for Expiry {
    fn expire_after_create(
        &self,
        _: &String,
        kept: &std::sync::Arc<Kept>,
        _: Instant,
    ) -> Option<Duration> {
        Some(kept.keep_for)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const MAX: Duration = Duration::from_secs(86_400);

    fn keep(values: &[&str]) -> Duration {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CACHE_CONTROL, value.parse().unwrap());
        }
        keep_for(&headers, MIN, MAX)
    }

    #[test]
    fn max_age_within_the_bounds() {
        assert_eq!(keep(&[]), MIN);
        assert_eq!(keep(&["public, max-age=600"]), Duration::from_secs(600));
        assert_eq!(keep(&["max-age=\"900\""]), Duration::from_secs(900));
        assert_eq!(keep(&["max-age=5"]), MIN);
        assert_eq!(keep(&["max-age=31536000"]), MAX);
        assert_eq!(keep(&["max-age=99999999999999999999999"]), MAX);
        assert_eq!(keep(&["MAX-AGE=120"]), Duration::from_secs(120));
        // The smaller of two, and staleness wins.
        assert_eq!(
            keep(&["max-age=600", "max-age=120"]),
            Duration::from_secs(120)
        );
        assert_eq!(keep(&["max-age=600, no-cache"]), MIN);
        assert_eq!(keep(&["no-store"]), MIN);
        assert_eq!(keep(&["max-age=abc"]), MIN);
        assert_eq!(keep(&["private"]), MIN);
    }
}
