//! A page that only says something: an error, a refusal, a confirmation.

use ::axum::response::{IntoResponse, Response};
use askama::Template;
use http::StatusCode;

use super::chrome::Chrome;
use super::render;

/// `templates/message.html`.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct Message<'a> {
    pub chrome: Chrome,
    pub heading: &'a str,
    pub message: &'a str,
    /// A link onward: where, and its text.
    pub link: Option<(&'a str, &'a str)>,
}

/// A message page with `status`, linking back to the home page.
pub(crate) fn page(status: StatusCode, heading: &str, message: &str) -> Response {
    with_link(status, heading, message, Some(("/", "Back to the start")))
}

/// A message page with `status` and the link `link` (`(href, text)`), if any.
pub(crate) fn with_link(
    status: StatusCode,
    heading: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Response {
    render(
        status,
        &Message {
            chrome: Chrome::anonymous(heading, None),
            heading,
            message,
            link,
        },
    )
}

/// `503`: the store (or the random source) did not answer.
pub(crate) fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "The server could not answer just now. Try again in a moment.",
    )
}

/// A page's answer to a refused operation: `status` and the message, for the signed-in
/// `chrome`.
pub(crate) fn for_viewer(chrome: Chrome, status: StatusCode, message: &str) -> Response {
    let heading = if status.is_server_error() {
        "Try again"
    } else if status == StatusCode::NOT_FOUND {
        "Not found"
    } else if status == StatusCode::FORBIDDEN {
        "Not allowed"
    } else {
        "Not done"
    };
    let page = Message {
        chrome,
        heading,
        message,
        link: Some(("/", "Back to your agents")),
    };
    (status, render(status, &page)).into_response()
}
