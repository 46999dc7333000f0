//! The pages for people (feature `server`): server-rendered with [askama](https://docs.rs/askama)
//! templates (`templates/`, checked at compile time, escaping everything by default), one
//! layout, one stylesheet and one small script (`assets/`). Every page works without script.
//!
//! Every page is served with a strict `Content-Security-Policy` (scripts and styles only from
//! `/assets`, no inline script or style, never framed), `X-Frame-Options: DENY` and
//! `Cache-Control: no-store`. Every form carries a per-session CSRF token
//! ([`FormToken`]): a post without it, or with another session's, is refused with 403; the
//! same-origin rule ([`SameOriginLayer`](crate::server::SameOriginLayer)) applies too. The pages
//! act through [`Managed`](crate::store::Managed), so each enforces exactly the access rule of
//! the REST API, and what a person may not do is not shown.
//!
//! | route | page |
//! |---|---|
//! | `GET /` | home: my agents, their status and last use, pending approvals |
//! | `GET /approvals?page=N` | pending approvals (approve and deny for the agent's owner or admin), the history, paged |
//! | `GET /approvals/pending` | the pending list alone: what the script fetches to show new approvals without a reload |
//! | `POST /approvals/{id}/approve`, `/deny` | decide one, back to `/approvals` |
//! | `GET /audit?agent=…&action=…&outcome=…&since=…&until=…&page=N` | the trail of the agents whose trail the person may read, newest first, 50 a page |
//! | `POST /agents` | create an agent (the home page's form) |
//! | `GET /agents/{slug}` | an agent: its policy, tokens, activity chart, children and grants |
//! | `POST /agents/{slug}/tokens`, `…/tokens/rotate`, `…/tokens/revoke` | create (shown once), rotate, revoke a token |
//! | `POST /agents/{slug}/grants`, `…/grants/remove` | grant a role, withdraw it |
//! | `GET`, `POST /agents/{slug}/policy` | edit the policy |
//! | `GET`, `POST /agents/{slug}/disable`, `…/delete`; `POST …/enable` | confirm, then disable or delete; enable |
//! | `GET /assets/app.css`, `/assets/app.js` | the stylesheet and the script |
//! | `GET /apps`, `GET`/`POST /apps/disconnect` | connected apps: the OAuth clients I connected, and disconnecting one (feature `oauth`) |
//! | `GET /users`, `POST /users`, `/users/role`, `GET`/`POST /users/active` | users (site admins, with [`Pages::accounts`]): add, change a role, deactivate and activate |
//! | `GET /account`, `POST /account/password` | my account: who I am, my role, changing my password (with [`Pages::accounts`]) |

use std::sync::Arc;

use ::axum::Router;
use ::axum::response::{Html, IntoResponse, Response};
use askama::Template;
use http::StatusCode;

use crate::server::ManageState;
use crate::server::accounts::AccountAdmin;
use crate::server::csrf::SameOriginLayer;
use crate::store::{Backend, Store};

mod account;
mod agent;
mod agent_names;
mod approvals;
mod apps;
mod assets;
mod audit;
mod chart;
mod chrome;
mod form_token;
mod grants;
mod headers;
mod home;
mod lifecycle;
pub(crate) mod message;
mod new_agent;
mod policy;
mod target;
mod time;
mod tokens;
mod users;

pub use chrome::MANAGE_USERS;
pub(crate) use chrome::{Chrome, Viewer};
use form_token::Binding;
pub use form_token::{FORM_COOKIE, FORM_FIELD, FormToken};
#[cfg(feature = "oauth")]
pub(crate) use headers::AUTHORIZATION_CSP;
pub(crate) use headers::{CSP, with_page_headers};

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

/// `router`'s forms checked for their token ([`FormToken`], binding the pre-session cookie
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
                form_token::check(Binding::SessionOrForm { secure }, request, next)
            }))
            .layer(same_origin),
        csp,
    )
}

/// `router`'s forms checked for their token ([`FormToken`]), bound to the session only: for
/// routes of signed-in people outside [`Pages`] (connecting an agent to a provider).
pub(crate) fn with_session_form_tokens<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
) -> Router<S> {
    router.layer(::axum::middleware::from_fn(|request, next| {
        form_token::check(Binding::Session, request, next)
    }))
}

/// The pages for people, configured; mount [`Pages::router`] beside the REST API, inside the
/// same [`AgentAuthLayer`](crate::AgentAuthLayer) (optional, with a session resolver).
pub struct Pages<B: Backend> {
    state: ManageState<Store<B>>,
    secure: bool,
    accounts: Option<Arc<dyn AccountAdmin>>,
}

impl<B: Backend> std::fmt::Debug for Pages<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("secure", &self.secure)
            .field("accounts", &self.accounts.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Pages<B> {
    /// The pages over `state`'s store, recording changes through its audit writer.
    pub fn new(state: ManageState<Store<B>>) -> Self {
        Self {
            state,
            secure: false,
            accounts: None,
        }
    }

    /// Served over HTTPS: the pre-session cookie is `Secure`, and only `https://` origins may
    /// post.
    pub fn secure_cookies(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// The accounts of the people who sign in, kept by the application: with them the users
    /// page (site admins) and the password form of the account page are served.
    pub fn accounts(mut self, accounts: Arc<dyn AccountAdmin>) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// The routes.
    pub fn router(self) -> Router {
        let routes = Router::new()
            .merge(home::routes())
            .merge(approvals::routes())
            .merge(audit::routes())
            .merge(agent::routes())
            .merge(new_agent::routes())
            .merge(tokens::routes())
            .merge(grants::routes())
            .merge(policy::routes())
            .merge(lifecycle::routes())
            .merge(apps::routes())
            .with_state(self.state)
            .merge(account::routes(self.accounts.clone()))
            .merge(users::routes(self.accounts));
        pages(routes, self.secure, CSP).merge(with_page_headers(assets::routes(), CSP))
    }
}
