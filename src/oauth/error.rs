//! The JSON errors of the token, introspection, revocation and registration endpoints.

use ::axum::Json;
use ::axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use serde_json::json;

use crate::error::StoreError;

/// An error code of RFC 6749 §5.2, RFC 8707 (`invalid_target`), RFC 7009 and RFC 7591 — the
/// exact strings clients key their recovery on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A parameter is missing, repeated or malformed.
    InvalidRequest,
    /// The client is unknown, or failed to authenticate (401).
    InvalidClient,
    /// The code or refresh token is unknown, expired, spent, revoked or another client's, or the
    /// PKCE verifier or `redirect_uri` does not match.
    InvalidGrant,
    /// This client may not use this grant.
    UnauthorizedClient,
    /// No such grant here.
    UnsupportedGrantType,
    /// The scope is malformed, or wider than what was granted.
    InvalidScope,
    /// The `resource` is not one this server issues for, or not the one granted (RFC 8707).
    InvalidTarget,
    /// A registration's redirect URI is refused (RFC 7591).
    InvalidRedirectUri,
    /// A registration's other metadata is refused (RFC 7591).
    InvalidClientMetadata,
    /// The server cannot take the request now (registration closed by its cap, a store
    /// that does not answer).
    TemporarilyUnavailable,
    /// Too many requests: from one address (registration's and device authorization's rate
    /// limits; 429), or a device polling sooner than its interval (RFC 8628; answered 400).
    SlowDown,
    /// The person has not answered the device's request yet (RFC 8628).
    AuthorizationPending,
    /// The person denied the device's request (RFC 8628).
    AccessDenied,
    /// The device code lapsed before it was redeemed (RFC 8628).
    ExpiredToken,
    /// Something failed on the server's side.
    ServerError,
}

impl ErrorCode {
    /// The code as it is sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::SlowDown => "slow_down",
            Self::AuthorizationPending => "authorization_pending",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::ServerError => "server_error",
        }
    }

    /// The status it is answered with: 401 for `invalid_client`, 429 for `slow_down`, 503 and
    /// 500 for the server's own failures, 400 for the rest.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An OAuth error answer: `{"error": code, "error_description": …}` with `Cache-Control:
/// no-store`. The description never holds a secret: it is written here, not echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    code: ErrorCode,
    description: String,
    basic_challenge: bool,
    retry_after: Option<u64>,
    status: Option<StatusCode>,
}

impl OAuthError {
    /// An error with this code and description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
            status: None,
        }
    }

    /// `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client`.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }

    /// `invalid_grant`.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `invalid_scope`.
    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// `invalid_target`.
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }

    /// `temporarily_unavailable`: the store did not answer. Its detail goes to the log only.
    pub fn unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%error, "oauth: store unavailable");
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the server cannot answer now; try again",
        )
    }

    /// Adds `WWW-Authenticate: Basic` (the client tried `Authorization: Basic`, RFC 6749 §5.2).
    pub(crate) fn with_basic_challenge(mut self) -> Self {
        self.basic_challenge = true;
        self
    }

    /// Adds `Retry-After`.
    pub(crate) fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// Answered with `status` rather than the code's own (a device's `slow_down` is 400).
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The status it is answered with.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(self.code.status())
    }

    /// The code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The description.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

impl From<StoreError> for OAuthError {
    /// A store failure: unavailable for the backend's own errors, else the server's.
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Unavailable(_) | StoreError::Unsupported(_) => Self::unavailable(&error),
            _ => {
                tracing::warn!(%error, "oauth: store refused");
                Self::new(ErrorCode::ServerError, "the server failed to answer")
            }
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        });
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="oauth", charset="UTF-8""#),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A JSON answer with `Cache-Control: no-store`: what every endpoint here answers with.
pub(crate) fn no_store_json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn an_error_is_exact_json_and_not_stored() {
        let response = OAuthError::invalid_client("unknown client")
            .with_basic_challenge()
            .into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        assert!(
            headers[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_description"], "unknown client");
    }

    #[test]
    fn statuses_follow_the_rfcs() {
        assert_eq!(ErrorCode::InvalidGrant.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ErrorCode::InvalidTarget.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ErrorCode::InvalidClient.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(ErrorCode::SlowDown.status(), StatusCode::TOO_MANY_REQUESTS);
        for code in [
            ErrorCode::AuthorizationPending,
            ErrorCode::AccessDenied,
            ErrorCode::ExpiredToken,
        ] {
            assert_eq!(code.status(), StatusCode::BAD_REQUEST);
        }
        let polled = OAuthError::new(ErrorCode::SlowDown, "x").with_status(StatusCode::BAD_REQUEST);
        assert_eq!(polled.status(), StatusCode::BAD_REQUEST);
        assert_eq!(polled.into_response().status(), StatusCode::BAD_REQUEST);
    }
}
