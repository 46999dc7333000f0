//! The receiver's pages for people, in the layout of the pages (askama templates, escaping
//! everything): never framed, never cached, and no referrer (the callback's URL holds the
//! code).

use ::axum::response::{IntoResponse, Response};
use askama::Template;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};

use crate::oauth::page::said;
use crate::server::web::{AUTHORIZATION_CSP, Chrome, render};

/// The headers of every answer of the receiver's browser routes. The policy has no
/// `form-action`: the start's form is followed by a redirect to the provider.
pub(crate) fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(AUTHORIZATION_CSP),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page saying why a connection was refused.
pub(crate) fn refused(status: StatusCode, message: &str) -> Response {
    harden(said(
        status,
        "Connection refused",
        message,
        "No token was kept. Start again from this application if you meant to connect.",
    ))
}

/// The scopes in words.
fn scope_words(scopes: &[String]) -> String {
    if scopes.is_empty() {
        "none named".to_owned()
    } else {
        scopes.join(" ")
    }
}

/// `templates/oauth_connected.html`.
#[derive(Template)]
#[template(path = "oauth_connected.html")]
struct Connected<'a> {
    chrome: Chrome,
    agent: &'a str,
    provider: &'a str,
    scopes: String,
}

/// The page after a token was kept.
pub(crate) fn connected(agent: &str, provider: &str, scopes: &[String]) -> Response {
    let page = Connected {
        chrome: Chrome::anonymous("Connected", None),
        agent,
        provider,
        scopes: scope_words(scopes),
    };
    harden(render(StatusCode::OK, &page))
}

/// A refusal page not yet made: small enough to travel in an `Err`.
pub(crate) struct Page {
    status: StatusCode,
    message: String,
}

impl Page {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        refused(self.status, &self.message)
    }
}

/// `templates/oauth_connect.html`.
#[derive(Template)]
#[template(path = "oauth_connect.html")]
struct Confirm<'a> {
    chrome: Chrome,
    action: &'a str,
    agent: &'a str,
    provider: &'a str,
    host: &'a str,
    scopes: String,
    /// The form's token ([`FormToken`](crate::server::FormToken)).
    csrf: &'a str,
}

/// The page a link to `GET /connect/{provider}?agent=…` shows: what will happen, and the button
/// that posts the start (nothing is kept until it is pressed).
pub(crate) fn confirm(
    action: &str,
    agent: &str,
    provider: &str,
    host: &str,
    scopes: &[String],
    csrf: &str,
) -> Response {
    let page = Confirm {
        chrome: Chrome::anonymous("Connect an agent", None),
        action,
        agent,
        provider,
        host,
        scopes: scope_words(scopes),
        csrf,
    };
    harden(render(StatusCode::OK, &page))
}
