//! `/account`: who I am, my role, and changing my password (the current one, the new one
//! twice). A change ends every session signed in with the old password, this one too (the
//! account's credential stamp changes), so the person is asked to sign in again. Wrong current
//! passwords are limited as sign-ins are ([`LoginThrottle`], per account and address, default
//! limits): a stolen session cannot guess its way to the password.

use std::sync::Arc;

use std::net::SocketAddr;

use ::axum::extract::{ConnectInfo, State};
use ::axum::response::Response;
use ::axum::routing::{get, post};
use ::axum::{Form, Router};
use askama::Template;
use http::StatusCode;
use serde::Deserialize;

use super::users::{MIN_PASSWORD, refused, role_text};
use super::{Chrome, Viewer, message, render};
use crate::server::accounts::AccountAdmin;
use crate::server::{LoginLimits, LoginThrottle};

type Accounts = Option<Arc<dyn AccountAdmin>>;

#[derive(Clone)]
struct AccountState {
    accounts: Accounts,
    /// Wrong current passwords, counted as failed sign-ins.
    throttle: Arc<LoginThrottle>,
}

pub(super) fn routes(accounts: Accounts) -> Router {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .with_state(AccountState {
            accounts,
            throttle: Arc::new(LoginThrottle::new(LoginLimits::default())),
        })
}

/// `templates/account.html`.
#[derive(Template)]
#[template(path = "account.html")]
struct Account {
    chrome: Chrome,
    user: String,
    /// My role in words, if the application lends its accounts.
    role: Option<String>,
    /// Whether the password form is shown.
    password_form: bool,
    /// What went wrong with the last change (a fixed text), or nothing.
    problem: &'static str,
}

async fn show(State(state): State<AccountState>, viewer: Viewer) -> Response {
    page(state.accounts.as_deref(), &viewer, StatusCode::OK, "").await
}

async fn page(
    accounts: Option<&dyn AccountAdmin>,
    viewer: &Viewer,
    status: StatusCode,
    problem: &'static str,
) -> Response {
    let chrome = viewer.chrome("My account", "");
    let role = match accounts {
        Some(accounts) => match accounts.list().await {
            Ok(list) => list
                .iter()
                .find(|account| &account.id == viewer.user())
                .map(|account| role_text(account.role.as_ref())),
            Err(error) => return refused(chrome, &error),
        },
        None => None,
    };
    let page = Account {
        chrome,
        user: viewer.user().as_str().to_owned(),
        role,
        password_form: accounts.is_some(),
        problem,
    };
    render(status, &page)
}

#[derive(Deserialize)]
struct PasswordChange {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    again: String,
}

async fn change_password(
    State(state): State<AccountState>,
    viewer: Viewer,
    peer: Option<::axum::Extension<ConnectInfo<SocketAddr>>>,
    Form(change): Form<PasswordChange>,
) -> Response {
    let Some(accounts) = state.accounts else {
        return message::for_viewer(
            viewer.chrome("My account", ""),
            StatusCode::NOT_FOUND,
            "Passwords are not changed on this server's pages.",
        );
    };
    let problem = if change.new != change.again {
        "The new password and its repetition differ."
    } else if change.new.chars().count() < MIN_PASSWORD {
        "The new password must be at least 8 characters long."
    } else {
        ""
    };
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    if !problem.is_empty() {
        return page(Some(&*accounts), &viewer, unprocessable, problem).await;
    }
    let me = viewer.user();
    let address = peer.map(|peer| peer.0.0.ip());
    let attempt = match state.throttle.check(me.as_str(), address) {
        Ok(attempt) => attempt,
        Err(throttled) => {
            tracing::warn!(user = %me.as_str(), "account page: password guesses throttled");
            let seconds = throttled.retry_after.as_secs().max(1);
            let mut response = message::for_viewer(
                viewer.chrome("My account", ""),
                StatusCode::TOO_MANY_REQUESTS,
                "Too many wrong passwords. Wait a minute and try again.",
            );
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
            return response;
        }
    };
    match accounts.verify(me.as_str(), &change.current).await {
        Ok(Some(user)) if &user == me => attempt.succeeded(),
        Ok(_) => {
            attempt.failed();
            let problem = "The current password is not right.";
            return page(Some(&*accounts), &viewer, unprocessable, problem).await;
        }
        Err(error) => {
            attempt.unverified();
            tracing::warn!(%error, "account page: password check unavailable");
            return message::unavailable();
        }
    }
    if let Err(error) = accounts.set_password(me.as_str(), &change.new).await {
        return refused(viewer.chrome("My account", ""), &error);
    }
    tracing::info!(user = %me.as_str(), "password changed on the account page");
    message::with_link(
        StatusCode::OK,
        "Password changed",
        "Your password was changed, and every session signed in with the old one has ended, this one too. Sign in again with the new password.",
        Some(("/login?return=%2Faccount", "Sign in again")),
    )
}
