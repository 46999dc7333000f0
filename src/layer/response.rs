//! RFC 6750 error responses and the `WWW-Authenticate` challenges behind them.

use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::resolver::InvalidReason;

/// Why a challenge setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The realm must be visible ASCII without `"` or `\`.
    #[error("realm must be visible ASCII without '\"' or '\\'")]
    InvalidRealm,
    /// The resource metadata URL must be an absolute http(s) URL of visible ASCII without `"`.
    #[error("resource metadata must be an absolute http(s) URL without '\"' or '\\'")]
    InvalidResourceMetadata,
}

fn quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
}

/// The `WWW-Authenticate` values a layer answers with, built once at configuration time.
#[derive(Debug, Clone)]
pub(crate) struct Challenge {
    params: Box<str>,
    missing: HeaderValue,
    invalid_request: HeaderValue,
    invalid_token: HeaderValue,
}

impl Challenge {
    pub(crate) fn new(
        realm: &str,
        resource_metadata: Option<&str>,
    ) -> Result<Self, ChallengeError> {
        if !quotable(realm) {
            return Err(ChallengeError::InvalidRealm);
        }
        let mut params = format!("realm=\"{realm}\"");
        if let Some(url) = resource_metadata {
            let absolute = url.starts_with("https://") || url.starts_with("http://");
            if !absolute || !quotable(url) || url.contains(' ') {
                return Err(ChallengeError::InvalidResourceMetadata);
            }
            params.push_str(&format!(", resource_metadata=\"{url}\""));
        }
        let value = |extra: &str| {
            HeaderValue::try_from(format!("Bearer {params}{extra}"))
                .expect("checked: visible ASCII only")
        };
        Ok(Self {
            missing: value(""),
            invalid_request: value(", error=\"invalid_request\""),
            invalid_token: value(", error=\"invalid_token\""),
            params: params.into_boxed_str(),
        })
    }

    fn insufficient_scope(&self, scope: &str) -> HeaderValue {
        HeaderValue::try_from(format!(
            "Bearer {}, error=\"insufficient_scope\", scope=\"{scope}\"",
            self.params
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"insufficient_scope\""))
    }
}

/// Marks a request as having passed through `AgentAuthLayer`, carrying its challenge so that
/// extractors and `RequireCapabilityLayer` can answer 401/403 consistently, and tell "no
/// principal" (401) apart from "the layer is not installed" (500).
#[derive(Debug, Clone)]
pub(crate) struct LayerMarker(pub(crate) Arc<Challenge>);

/// An authentication failure, turned into a response by [`Rejection::response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    MissingCredentials,
    InvalidRequest,
    InvalidToken(InvalidReason),
    InsufficientScope(Box<str>),
    Unavailable,
    MissingLayer,
}

/// Attached to the extensions of every 401 `invalid_token` response, so an outer logging or
/// audit layer can tell operators why a token was refused. The client never sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalReason(pub InvalidReason);

impl Rejection {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::MissingCredentials | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> &'static str {
        match self {
            Self::MissingCredentials => {
                r#"{"error":"unauthorized","error_description":"a bearer token is required"}"#
            }
            Self::InvalidRequest => {
                r#"{"error":"invalid_request","error_description":"malformed Authorization header"}"#
            }
            // One body for every reason: the client must not learn which check failed.
            Self::InvalidToken(_) => {
                r#"{"error":"invalid_token","error_description":"the access token is invalid"}"#
            }
            Self::InsufficientScope(_) => {
                r#"{"error":"insufficient_scope","error_description":"the access token lacks a required capability"}"#
            }
            Self::Unavailable => {
                r#"{"error":"temporarily_unavailable","error_description":"credentials cannot be checked right now"}"#
            }
            Self::MissingLayer => {
                "missing principal: is `AgentAuthLayer` installed on this route (and before this extractor or layer)?"
            }
        }
    }

    /// The response; `challenge` is `None` when no `AgentAuthLayer` ran before us, in which case
    /// the challenge carries no realm.
    pub(crate) fn response<B: From<&'static str>>(
        &self,
        challenge: Option<&Challenge>,
    ) -> Response<B> {
        let mut response = Response::new(B::from(self.body()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        let content_type = match self {
            Self::MissingLayer => "text/plain; charset=utf-8",
            _ => "application/json",
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let www_authenticate = match (self, challenge) {
            (Self::MissingCredentials, Some(c)) => Some(c.missing.clone()),
            (Self::MissingCredentials, None) => Some(HeaderValue::from_static("Bearer")),
            (Self::InvalidRequest, Some(c)) => Some(c.invalid_request.clone()),
            (Self::InvalidRequest, None) => {
                Some(HeaderValue::from_static("Bearer error=\"invalid_request\""))
            }
            (Self::InvalidToken(_), Some(c)) => Some(c.invalid_token.clone()),
            (Self::InvalidToken(_), None) => {
                Some(HeaderValue::from_static("Bearer error=\"invalid_token\""))
            }
            (Self::InsufficientScope(scope), Some(c)) => Some(c.insufficient_scope(scope)),
            (Self::InsufficientScope(scope), None) => HeaderValue::try_from(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{scope}\""
            ))
            .ok(),
            (Self::Unavailable | Self::MissingLayer, _) => None,
        };
        if let Some(value) = www_authenticate {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        if let Self::InvalidToken(reason) = self {
            response.extensions_mut().insert(RefusalReason(*reason));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_must_be_quotable() {
        assert_eq!(
            Challenge::new("a\"b", None).unwrap_err(),
            ChallengeError::InvalidRealm
        );
        assert_eq!(
            Challenge::new("a\\b", None).unwrap_err(),
            ChallengeError::InvalidRealm
        );
        assert_eq!(
            Challenge::new("a\nb", None).unwrap_err(),
            ChallengeError::InvalidRealm
        );
    }

    #[test]
    fn resource_metadata_must_be_an_absolute_url() {
        for bad in ["/relative", "ftp://x", "https://a\"b", "https://a b"] {
            assert_eq!(
                Challenge::new("api", Some(bad)).unwrap_err(),
                ChallengeError::InvalidResourceMetadata,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn challenges_carry_realm_and_resource_metadata() {
        let c = Challenge::new(
            "api",
            Some("https://api.example/.well-known/oauth-protected-resource"),
        )
        .unwrap();
        assert_eq!(
            c.invalid_token,
            "Bearer realm=\"api\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\", error=\"invalid_token\""
        );
        assert_eq!(
            c.insufficient_scope("posts:publish"),
            "Bearer realm=\"api\", resource_metadata=\"https://api.example/.well-known/oauth-protected-resource\", error=\"insufficient_scope\", scope=\"posts:publish\""
        );
    }
}
