//! A panic in a handler answers 500 with a JSON body instead of dropping the connection.

use std::any::Any;

use ::axum::Router;
use ::axum::response::{IntoResponse, Response};
use http::StatusCode;
use tower_http::catch_panic::CatchPanicLayer;

use super::error::ApiError;

/// The answer to a request whose handler panicked: 500,
/// `{"error": "internal", "message": "internal error"}`. The panic's message is logged (it may
/// name internals), never sent.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)");
    tracing::error!(panic = message, "a handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
    .into_response()
}

/// `router` with every panic of its handlers (and of the layers inside it) caught and answered
/// by [`panic_response`] — tower-http's `CatchPanicLayer`. Apply it last, around everything.
///
/// ```
/// use axum::{Router, body::Body, routing::get};
/// use http::{Request, StatusCode};
/// use tower::ServiceExt;
/// async fn boom() -> &'static str {
///     panic!("boom")
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let app = tower_agent_auth::server::catch_panics(Router::new().route("/boom", get(boom)));
/// let response = app.oneshot(Request::get("/boom").body(Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// # }
/// ```
pub fn catch_panics(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(panic_response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::axum::body::Body;
    use ::axum::routing::get;
    use http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn with_str() -> &'static str {
        panic!("static message")
    }

    async fn with_string() -> &'static str {
        panic!("formatted {}", 42)
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json() {
        let app = catch_panics(
            Router::new()
                .route("/str", get(with_str))
                .route("/string", get(with_string))
                .route("/fine", get(|| async { "fine" })),
        );
        for path in ["/str", "/string"] {
            let response = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["error"], "internal");
            let text = String::from_utf8_lossy(&body);
            assert!(
                !text.contains("static message") && !text.contains("formatted"),
                "the panic's message is not sent: {text}"
            );
        }
        let fine = app
            .oneshot(Request::get("/fine").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(fine.status(), StatusCode::OK);
    }
}
