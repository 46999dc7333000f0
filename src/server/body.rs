//! Request bodies and query strings of the management API: JSON answers for every rejection,
//! and unknown fields refused (a misspelled `"capabilites"` must not mint an unlimited token).

use ::axum::extract::rejection::{JsonRejection, QueryRejection};
use ::axum::extract::{FromRequest, FromRequestParts, Request};
use http::StatusCode;
use http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body; every rejection (not JSON, malformed, a missing or unknown field, too large) is
/// an [`ApiError`] naming what is wrong. Bodies are declared `deny_unknown_fields`.
pub(crate) struct Body<T>(pub(crate) T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        ::axum::Json::<T>::from_request(request, state)
            .await
            .map(|::axum::Json(value)| Self(value))
            .map_err(|rejection| json_error(&rejection))
    }
}

/// A JSON body whose every field has a default: an empty body (none, or only whitespace,
/// whatever its content type) is `T::default()`; anything else is read as [`Body`] reads it.
pub(crate) struct OptionalBody<T>(pub(crate) T);

/// The most an optional body is read before it is refused: they are a few fields.
const OPTIONAL_BODY_LIMIT: usize = 64 * 1024;

impl<T, S> FromRequest<S> for OptionalBody<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let bytes = ::axum::body::to_bytes(body, OPTIONAL_BODY_LIMIT)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("body: at most {OPTIONAL_BODY_LIMIT} bytes"),
                )
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        let request = Request::from_parts(parts, ::axum::body::Body::from(bytes));
        Body::<T>::from_request(request, state)
            .await
            .map(|Body(value)| Self(value))
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::BAD_REQUEST => "malformed",
        _ => "invalid",
    };
    ApiError::new(status, code, rejection.body_text())
}

/// A query string, unknown parameters refused, rejections as [`ApiError`].
pub(crate) struct Params<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for Params<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        ::axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|::axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    rejection.body_text(),
                )
            })
    }
}
