//! The authorization endpoint's pages: in the layout of the pages for people (askama templates,
//! escaping everything), never framed, never cached.

use ::axum::Router;
use ::axum::response::Response;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};
use tower_http::set_header::SetResponseHeaderLayer;

use askama::Template;

use crate::server::web::{AUTHORIZATION_CSP, Chrome, render};

/// The headers of every answer of the authorization endpoint: the pages' policy without
/// `form-action` ([`AUTHORIZATION_CSP`]: browsers apply it to the redirect that follows the
/// consent form, which goes to the client), never framed, a referrer only to this server,
/// nothing cached.
pub(crate) fn hardened(router: Router) -> Router {
    router
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(AUTHORIZATION_CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            // Not `no-referrer`: under it a browser sends the consent form with `Origin: null`,
            // which the same-origin check refuses.
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// `templates/oauth_message.html`: a page of the authorization flow that only says
/// something, in two paragraphs (the second may be empty), with no link onward: these pages
/// lead nowhere but back to the application or the device.
#[derive(Template)]
#[template(path = "oauth_message.html")]
struct Said<'a> {
    chrome: Chrome,
    heading: &'a str,
    text: &'a str,
    after: &'a str,
}

/// A page that says `text`, then `after`, under `heading`, with `status`.
pub(crate) fn said(status: StatusCode, heading: &str, text: &str, after: &str) -> Response {
    let page = Said {
        chrome: Chrome::anonymous(heading, None),
        heading,
        text,
        after,
    };
    render(status, &page)
}

/// An error page: the authorization request cannot go back to the client (an unknown client, a
/// redirect URI it did not register), or the person may not consent. Never a redirect.
pub(crate) fn error(status: StatusCode, text: &str) -> Response {
    said(
        status,
        "Authorization failed",
        text,
        "Nothing was shared. You can close this page.",
    )
}
