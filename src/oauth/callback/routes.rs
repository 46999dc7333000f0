//! The receiver's router: the start, each provider's callback, the JSON listings.

use ::axum::Router;
use ::axum::routing::get;

use super::receiver::CallbackReceiver;
use super::{api, receive, start};
use crate::server::SameOriginLayer;
use crate::store::Backend;

/// Where a connection starts: `POST /connect/{provider}`, with the form field `agent`. A
/// `GET` of it with `?agent=<slug>` is a page with the button that posts it (a link an
/// application can show; nothing is kept until the button is pressed).
pub const START: &str = "/connect/{provider}";

impl<B: Backend> CallbackReceiver<B> {
    /// Every route: `POST /connect/{provider}`, each provider's callback at its redirect
    /// URI's path, and the JSON listings under `/api`. The person is read from the request's
    /// [`Principal`](crate::Principal): merge it inside an
    /// [`AgentAuthLayer`](crate::AgentAuthLayer) with a session resolver. Cross-site posts and
    /// deletions carrying the session cookie are refused.
    pub fn router(&self) -> Router {
        let mut browser = Router::new().route(START, get(start::ask::<B>).post(start::start::<B>));
        for provider in &self.providers {
            browser = browser.route(provider.redirect_uri.path(), get(receive::receive::<B>));
        }
        // The connect form carries the pages' form token, bound to the session.
        let browser = crate::server::web::with_session_form_tokens(browser)
            .layer(SameOriginLayer::for_session_cookie().html());
        Router::new()
            .merge(browser)
            .merge(api::routes::<B>().layer(SameOriginLayer::for_session_cookie()))
            .with_state(self.clone())
    }
}
