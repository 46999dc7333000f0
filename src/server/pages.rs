//! The few HTML pages of the browser routes. Everything that comes from a user or the store is
//! escaped with [`escape`].

use ::axum::response::{Html, IntoResponse, Response};
use http::StatusCode;

/// `text` escaped for HTML text and double-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    html_escape::encode_double_quoted_attribute(text).into_owned()
}

/// Pages may not be framed by another site (clickjacking a sign-out or sign-in button):
/// `X-Frame-Options: DENY` and `Content-Security-Policy: frame-ancestors 'none'` on every
/// answer of the browser routes.
pub(crate) fn not_framed(router: ::axum::Router) -> ::axum::Router {
    use http::HeaderValue;
    use http::header::{CONTENT_SECURITY_POLICY, X_FRAME_OPTIONS};
    use tower_http::set_header::SetResponseHeaderLayer;
    router
        .layer(SetResponseHeaderLayer::overriding(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
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

/// The sign-out button: a form posting to `/logout`.
pub(crate) const LOGOUT_BUTTON: &str =
    r#"<form method="post" action="/logout"><button type="submit">Sign out</button></form>"#;

/// An error page of a browser route: the message and a link back to the sign-in form.
pub(crate) fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1>\n<p>{}</p>\n<p><a href=\"/login\">Back to sign-in</a></p>",
        escape(title),
        escape(message)
    );
    (
        status,
        [(http::header::CACHE_CONTROL, "no-store")],
        Html(page(title, &body)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; 'y'&lt;/script&gt;"
        );
        assert!(page("<b>", "").contains("<title>&lt;b&gt;</title>"));
    }
}
