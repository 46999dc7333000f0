//! The headers every page is served with.

use ::axum::Router;
use http::HeaderValue;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use tower_http::set_header::SetResponseHeaderLayer;

/// Scripts and styles only from this server's `/assets` (no inline script, no inline style),
/// images only from this server, requests only to it, forms only posted to it, never framed,
/// no `<base>`. The authorization pages (consent, device entry) leave `form-action` out
/// ([`AUTHORIZATION_CSP`]).
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// [`CSP`] without `form-action`: browsers apply it to the redirect that follows a consent
/// form, and that redirect goes to the client.
#[cfg(feature = "oauth")]
pub(crate) const AUTHORIZATION_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// `router` with the page headers: the content security policy `csp` (unless a handler set its
/// own), `X-Frame-Options: DENY` (for browsers that do not read `frame-ancestors`), no MIME
/// sniffing, a referrer only to this server, and `Cache-Control: no-store` unless a handler
/// said otherwise (pages show secrets and personal data).
pub(crate) fn with_page_headers(router: Router, csp: &'static str) -> Router {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            REFERRER_POLICY,
            // Not `no-referrer`: under it a browser sends forms with `Origin: null`, which the
            // same-origin rule refuses.
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}
