//! The receiver's pages for people: escaped, no script, never framed, never cached, and no
//! referrer (the callback's URL holds the code).

use ::axum::response::{Html, IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};

use crate::oauth::page::{escape, page};

/// The headers of every answer of the receiver's browser routes.
pub(crate) fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page saying why a connection was refused.
pub(crate) fn refused(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Connection refused</h1>\n<p>{}</p>\n\
         <p>No token was kept. Start again from this application if you meant to connect.</p>",
        escape(message)
    );
    harden((status, Html(page("Connection refused", &body))).into_response())
}

/// The page after a token was kept.
pub(crate) fn connected(agent: &str, provider: &str, scopes: &[String]) -> Response {
    let scopes = if scopes.is_empty() {
        "none named".to_owned()
    } else {
        scopes.join(" ")
    };
    let body = format!(
        "<h1>Connected</h1>\n<p>The agent <strong>{}</strong> is connected to \
         <strong>{}</strong> (scopes: {}).</p>\n<p>You can close this page.</p>",
        escape(agent),
        escape(provider),
        escape(&scopes),
    );
    harden(Html(page("Connected", &body)).into_response())
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

/// The page a link to `GET /connect/{provider}?agent=…` shows: what will happen, and the button
/// that posts the start (nothing is kept until it is pressed).
pub(crate) fn confirm(
    action: &str,
    agent: &str,
    provider: &str,
    host: &str,
    scopes: &[String],
) -> Response {
    let scopes = if scopes.is_empty() {
        "none named".to_owned()
    } else {
        scopes.join(" ")
    };
    let body = format!(
        "<h1>Connect {agent} to {provider}?</h1>\n\
         <p>You will be sent to <strong>{host}</strong> to allow it. The token {provider} \
         gives is kept, sealed, for the agent <strong>{agent}</strong> (scopes: {scopes}).</p>\n\
         <form method=\"post\" action=\"{action}\">\n\
         <input type=\"hidden\" name=\"agent\" value=\"{agent}\">\n\
         <button type=\"submit\">Connect</button>\n</form>",
        agent = escape(agent),
        provider = escape(provider),
        host = escape(host),
        scopes = escape(&scopes),
        action = escape(action),
    );
    harden(Html(page("Connect an agent", &body)).into_response())
}
