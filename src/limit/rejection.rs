//! The limiter's answers: [`RateLimitRejection`] (`429` over a limit, `503` when the count
//! cannot be known) and [`RateLimited`], the marker a `429` carries for the auth layer's
//! audit.

use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};

use super::Limit;
use crate::outcome::NotActed;

/// A response extension of every `429` a [`RateLimitLayer`](super::RateLimitLayer) answers:
/// which limit refused the request and when to try again. The
/// [`AgentAuthLayer`](crate::AgentAuthLayer)'s audit records such a request as
/// [`AuditAction::RateLimited`](crate::audit::AuditAction::RateLimited) naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// The limit the request went over.
    pub limit: Limit,
    /// How long until its window ends, in whole seconds rounded up (at least one): the
    /// `Retry-After` header.
    pub retry_after: Duration,
}

impl RateLimited {
    /// The request went over `limit` with `remaining` left in its window.
    pub fn new(limit: Limit, remaining: Duration) -> Self {
        let seconds = remaining.as_millis().div_ceil(1_000).max(1);
        Self {
            limit,
            retry_after: Duration::from_secs(u64::try_from(seconds).unwrap_or(u64::MAX)),
        }
    }
}

/// Why a [`RateLimitLayer`](super::RateLimitLayer) refused a request. Every answer is marked
/// [`NotActed`], so the auth layer releases the use a use-limited token reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitRejection {
    /// Over a limit: `429 Too Many Requests` with `Retry-After` and a JSON body naming the
    /// limit; the response carries the [`RateLimited`] extension.
    Limited(RateLimited),
    /// The counter failed (Redis unreachable, …): `503` with `Retry-After: 1`. The limiter
    /// fails closed: a request whose count cannot be known is not admitted.
    Unavailable,
}

impl RateLimitRejection {
    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The answer, with any body type a `String` converts into.
    pub fn response<B: From<String>>(&self) -> Response<B> {
        let (body, retry_after) = match self {
            Self::Limited(limited) => (
                format!(
                    r#"{{"error":"rate_limited","error_description":"{}","limit":"{}","retry_after":{}}}"#,
                    limited.limit,
                    limited.limit.kind.as_str(),
                    limited.retry_after.as_secs()
                ),
                limited.retry_after.as_secs(),
            ),
            Self::Unavailable => (
                r#"{"error":"temporarily_unavailable","error_description":"rate limits cannot be checked right now"}"#.to_owned(),
                1,
            ),
        };
        let mut response = Response::new(B::from(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let extensions = response.extensions_mut();
        extensions.insert(NotActed);
        if let Self::Limited(limited) = self {
            extensions.insert(*limited);
        }
        response
    }
}

impl std::fmt::Display for RateLimitRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Limited(limited) => write!(
                f,
                "over the {}; retry after {}s",
                limited.limit,
                limited.retry_after.as_secs()
            ),
            Self::Unavailable => f.write_str("rate limits cannot be checked right now"),
        }
    }
}

impl std::error::Error for RateLimitRejection {}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for RateLimitRejection {
    fn into_response(self) -> axum_core::response::Response {
        self.response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::{LimitKind, Rate};

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let limit = Limit {
            kind: LimitKind::Agent,
            rate: Rate::per_second(10),
        };
        for (remaining_ms, seconds) in [(1, 1), (999, 1), (1_000, 1), (1_001, 2), (59_500, 60)] {
            let limited = RateLimited::new(limit, Duration::from_millis(remaining_ms));
            assert_eq!(
                limited.retry_after,
                Duration::from_secs(seconds),
                "{remaining_ms}"
            );
        }
        let response: Response<String> =
            RateLimitRejection::Limited(RateLimited::new(limit, Duration::from_millis(1_500)))
                .response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        assert_eq!(
            response.body(),
            r#"{"error":"rate_limited","error_description":"agent limit 10 per 1s","limit":"agent","retry_after":2}"#
        );
        assert!(response.extensions().get::<NotActed>().is_some());
    }
}
