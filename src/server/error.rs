use ::axum::Json;
use ::axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use crate::error::{NotFound, StoreError};

/// An error of the management API: a status and a JSON body `{"error": code, "message": …}`.
///
/// A `4xx` one means the request was refused before anything changed (a body that does not
/// parse, a refused [`StoreError`], which changes nothing): its response carries
/// [`NotActed`](crate::layer::NotActed), so a use-limited token that made it — an agent
/// delegating with a typo in its body — keeps its use.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with this status, machine-readable code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What it says, in words (what a page shows).
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let (status, code) = match &error {
            StoreError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            // A user named in a body (an owner, a grantee) is input that does not hold.
            StoreError::NotFound(NotFound::User(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
            }
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            StoreError::Unavailable(_) | StoreError::Unsupported(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            // Minting failed (no entropy): the server's fault, not the request's.
            StoreError::Token(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        };
        let message = match &error {
            // A backend error's detail is for the server's log, not for the client.
            StoreError::Unavailable(_) => "the store is unavailable".to_owned(),
            other => other.to_string(),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "message": self.message});
        let mut response = (self.status, Json(body)).into_response();
        if self.status.is_client_error() {
            response.extensions_mut().insert(crate::outcome::NotActed);
        }
        response
    }
}
