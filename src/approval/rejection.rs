//! Why [`Supervision::check`](super::Supervision::check) refused a request, as an HTTP answer.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::json;
use time::OffsetDateTime;

use super::{Approval, ApprovalId, rfc3339};
use crate::layer::{InsufficientScope, PrincipalRejection};

/// The header naming the approval a refusal is about, beside the `WWW-Authenticate`
/// parameter: `Approval-Id: apr_…`.
pub const APPROVAL_ID: HeaderName = HeaderName::from_static("approval-id");

/// The approval a refusal names: what the agent tells its person, and retries after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSummary {
    id: ApprovalId,
    expires_at: OffsetDateTime,
    binding_message: String,
}

impl ApprovalSummary {
    pub(crate) fn of(approval: &Approval) -> Self {
        Self {
            id: approval.id.clone(),
            expires_at: approval.expires_at,
            binding_message: approval.binding_message.clone(),
        }
    }

    /// The approval's id.
    pub fn id(&self) -> &ApprovalId {
        &self.id
    }

    /// When it expires.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// What the person is asked.
    pub fn binding_message(&self) -> &str {
        &self.binding_message
    }
}

/// Why a critical action was not admitted. Answers `403` with
/// `WWW-Authenticate: Bearer error="approval_required", approval_id="apr_…"` (or
/// `approval_denied`), an `Approval-Id` header ([`APPROVAL_ID`](super::APPROVAL_ID)) and a JSON body
/// `{"error", "error_description", "approval_id", "expires_at", "binding_message"}`;
/// `insufficient_scope` as [`PrincipalRejection`] does; `400 invalid_request` for a request
/// whose approval cannot be asked for; `429` with `Retry-After` for a token with too many
/// approvals pending; `503` when the approvals cannot be read or written.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ApprovalRejection {
    /// A person must approve this request first; retry it, unchanged, once they have.
    Required(ApprovalSummary),
    /// A person denied this request; asking again is refused until the approval expires.
    Denied(ApprovalSummary),
    /// The principal's ceiling does not allow the capability at all.
    InsufficientScope(InsufficientScope),
    /// The approval cannot be asked for as the request stands (its message or details are not
    /// acceptable); the message says why.
    Invalid(String),
    /// The agent has as many approvals pending as it may
    /// ([`Supervision::max_pending`](super::Supervision::max_pending)): `429` with
    /// `Retry-After`, nothing kept, nobody told.
    TooMany {
        /// Until the soonest of them expires.
        retry_after: std::time::Duration,
    },
    /// The approvals could not be read or written: never admission.
    Unavailable,
}

impl ApprovalRejection {
    /// The HTTP status: 403, 400, 429 or 503.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Required(_) | Self::Denied(_) | Self::InsufficientScope(_) => {
                StatusCode::FORBIDDEN
            }
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The approval it names, for `Required` and `Denied`.
    pub fn approval(&self) -> Option<&ApprovalSummary> {
        match self {
            Self::Required(summary) | Self::Denied(summary) => Some(summary),
            _ => None,
        }
    }

    /// The response for any body type that can be built from a `String`. It carries the
    /// [`NotActed`](crate::outcome::NotActed) extension: the handler refused before acting, so
    /// the layer releases the use a use-limited token reserved, whatever the status.
    pub fn to_response<B: From<String>>(&self) -> Response<B> {
        let (code, description) = match self {
            Self::InsufficientScope(scope) => {
                let response: Response<&'static str> =
                    PrincipalRejection::InsufficientScope(scope.clone()).to_response();
                let mut response = response.map(|body| B::from(body.to_owned()));
                response.extensions_mut().insert(crate::outcome::NotActed);
                return response;
            }
            Self::Required(_) => (
                "approval_required",
                "a person must approve this request; retry it once they have".to_owned(),
            ),
            Self::Denied(_) => ("approval_denied", "a person denied this request".to_owned()),
            Self::Invalid(message) => ("invalid_request", message.clone()),
            Self::TooMany { .. } => (
                "too_many_pending_approvals",
                "too many approvals of this agent wait for a person; retry later".to_owned(),
            ),
            Self::Unavailable => (
                "temporarily_unavailable",
                "approvals cannot be checked right now".to_owned(),
            ),
        };
        let mut body = json!({"error": code, "error_description": description});
        if let Some(summary) = self.approval() {
            body["approval_id"] = json!(summary.id.as_str());
            body["expires_at"] = json!(rfc3339(summary.expires_at));
            body["binding_message"] = json!(summary.binding_message);
        }
        let mut response = Response::new(B::from(body.to_string()));
        *response.status_mut() = self.status();
        // Refused before the handler acted: the use a use-limited token reserved is released.
        response.extensions_mut().insert(crate::outcome::NotActed);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Self::TooMany { retry_after } = self {
            headers.insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        if let Some(summary) = self.approval() {
            // Ids are `apr_` and hex, minted by the stores: always a valid header value.
            if let Ok(id) = HeaderValue::from_str(summary.id.as_str()) {
                headers.insert(APPROVAL_ID, id);
            }
            let challenge = format!("Bearer error=\"{code}\", approval_id=\"{}\"", summary.id);
            if let Ok(challenge) = HeaderValue::try_from(challenge) {
                headers.insert(WWW_AUTHENTICATE, challenge);
            }
        }
        response
    }
}

impl std::fmt::Display for ApprovalRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Required(s) => write!(f, "approval {} required: {}", s.id, s.binding_message),
            Self::Denied(s) => write!(f, "approval {} denied: {}", s.id, s.binding_message),
            Self::InsufficientScope(s) => write!(f, "missing capability `{}`", s.capability()),
            Self::Invalid(message) => write!(f, "approval cannot be asked for: {message}"),
            Self::TooMany { retry_after } => write!(
                f,
                "too many approvals pending; retry after {} s",
                retry_after.as_secs().max(1)
            ),
            Self::Unavailable => f.write_str("approvals unavailable"),
        }
    }
}

impl std::error::Error for ApprovalRejection {}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for ApprovalRejection {
    fn into_response(self) -> axum_core::response::Response {
        self.to_response()
    }
}
