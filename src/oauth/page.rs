//! The authorization endpoint's pages: escaped, no script, never framed, never cached.

use ::axum::Router;
use ::axum::response::{Html, IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_FRAME_OPTIONS};
use http::{HeaderValue, StatusCode};
use tower_http::set_header::SetResponseHeaderLayer;

/// `text` escaped for HTML text and double-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

/// Nothing loads, nothing frames the page (`frame-ancestors 'none'`), no referrer leaves the
/// server, nothing is cached. `form-action` is left out on purpose: browsers apply it to the
/// redirect that follows the consent form, which goes to the client.
const CSP: &str = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The headers of every answer of the authorization endpoint.
pub(crate) fn hardened(router: Router) -> Router {
    router
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
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

/// A whole page around `body` (already HTML).
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title></head>\n\
         <body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// An error page: the authorization request cannot go back to the client (an unknown client, a
/// redirect URI it did not register), or the person may not consent. Never a redirect.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Authorization failed</h1>\n<p>{}</p>\n\
         <p>Nothing was shared. You can close this page.</p>",
        escape(message)
    );
    (status, Html(page("Authorization failed", &body))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(escape(r#"<b a="x">&"#), "&lt;b a=&quot;x&quot;&gt;&amp;");
        assert!(page("<t>", "").contains("<title>&lt;t&gt;</title>"));
    }
}
