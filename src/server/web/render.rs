//! A page's answer: a template rendered.

use ::axum::response::{Html, IntoResponse, Response};
use askama::Template;
use http::StatusCode;

/// `page` rendered, with `status`; a template that fails to render (it cannot, short of a bug
/// in a value's `Display`) is a 500 and a log line.
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page failed to render").into_response()
        }
    }
}
