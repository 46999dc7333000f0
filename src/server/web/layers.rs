//! What every router of pages is wrapped in: the forms' token check, the same-origin rule and
//! the page headers.

use ::axum::Router;

use super::form_check::{self, Binding};
use super::headers::with_page_headers;
use crate::server::csrf::SameOriginLayer;

/// `router`'s forms checked for their token ([`FormToken`](super::FormToken), binding the pre-session cookie
/// with `Secure` when `secure`), its posts from other sites refused, and the page headers with
/// `csp`: what every router of pages is wrapped in.
pub(crate) fn pages(router: Router, secure: bool, csp: &'static str) -> Router {
    let mut same_origin = SameOriginLayer::every_request().html();
    if secure {
        same_origin = same_origin.https(true);
    }
    with_page_headers(
        router
            .layer(::axum::middleware::from_fn(move |request, next| {
                form_check::check(Binding::SessionOrForm { secure }, request, next)
            }))
            .layer(same_origin),
        csp,
    )
}

/// `router`'s forms checked for their token ([`FormToken`](super::FormToken)), bound to the session only: for
/// routes of signed-in people outside [`Pages`](super::Pages) (connecting an agent to a provider).
#[cfg(feature = "callback")]
pub(crate) fn with_session_form_tokens<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
) -> Router<S> {
    router.layer(::axum::middleware::from_fn(|request, next| {
        form_check::check(Binding::Session, request, next)
    }))
}
