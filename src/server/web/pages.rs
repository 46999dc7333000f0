//! [`Pages`]: the routes of every page, configured.

use std::sync::Arc;

use ::axum::Router;

use super::headers::{CSP, with_page_headers};
use super::layers::pages;
use super::{account, agent, approvals, apps, assets, audit, grants, home, lifecycle};
use super::{new_agent, policy, tokens, users};
use crate::server::ManageState;
use crate::server::accounts::AccountAdmin;
use crate::store::{Backend, Store};

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
