//! `/users`: the accounts of the people who sign in, for site admins (their role allows
//! [`MANAGE_USERS`](super::MANAGE_USERS)): list, add, change a role, deactivate (confirmed on a
//! page of its own) and activate. Served only when the application lends its accounts
//! ([`Pages::accounts`](super::Pages::accounts)); anyone else is refused with 403 and sees no
//! link to it.

use std::sync::Arc;

use ::axum::extract::{Query, State};
use ::axum::response::{IntoResponse, Redirect, Response};
use ::axum::routing::{get, post};
use ::axum::{Form, Router};
use askama::Template;
use http::StatusCode;
use serde::Deserialize;

use super::{Chrome, Viewer, message, render};
use crate::ceiling::CapabilitySet;
use crate::error::StoreError;
use crate::server::accounts::{AccountAdmin, AccountSummary};

/// The shortest password a page accepts.
pub(super) const MIN_PASSWORD: usize = 8;

type Accounts = Arc<dyn AccountAdmin>;

pub(super) fn routes(accounts: Option<Accounts>) -> Router {
    let Some(accounts) = accounts else {
        return Router::new();
    };
    Router::new()
        .route("/users", get(list).post(add))
        .route("/users/role", post(set_role))
        .route("/users/active", get(confirm_active).post(set_active))
        .with_state(accounts)
}

/// `templates/users.html`.
#[derive(Template)]
#[template(path = "users.html")]
struct Users {
    chrome: Chrome,
    users: Vec<UserRow>,
    notice: &'static str,
}

/// One account as the page lists it.
struct UserRow {
    id: String,
    role: String,
    active: bool,
    has_password: bool,
    created: String,
    /// The row of the person looking (they cannot deactivate themselves).
    me: bool,
}

/// `templates/user_deactivate.html`.
#[derive(Template)]
#[template(path = "user_deactivate.html")]
struct ConfirmDeactivate {
    chrome: Chrome,
    id: String,
}

/// A role as the page writes it: `*` for the unrestricted role, else its capabilities.
pub(super) fn role_text(role: Option<&CapabilitySet>) -> String {
    match role {
        None => "*".to_owned(),
        Some(set) if set.is_empty() => "(nothing)".to_owned(),
        Some(set) => set.to_strings().join(" "),
    }
}

/// A role as typed: `*` (unrestricted), or capabilities separated by spaces or commas.
fn parse_role(text: &str) -> Result<Option<CapabilitySet>, String> {
    let text = text.trim();
    if text == "*" {
        return Ok(None);
    }
    let names: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        return Err(
            "Give the role: * for every capability, or capabilities like agents:read.".into(),
        );
    }
    CapabilitySet::parse(names)
        .map(Some)
        .map_err(|error| format!("That role is not valid: {error}."))
}

/// The notices a redirect back to the list may ask for (never text from the URL).
fn notice(done: Option<&str>) -> &'static str {
    match done {
        Some("added") => "The user was added.",
        Some("role") => "The role was changed.",
        Some("deactivated") => {
            "The user was deactivated: they are signed out and their agents are refused."
        }
        Some("activated") => "The user was activated.",
        _ => "",
    }
}

/// The 403 page, unless the person looking is a site admin.
fn not_admin(viewer: &Viewer) -> Option<Response> {
    (!viewer.site_admin()).then(|| {
        message::for_viewer(
            viewer.chrome("Users", "users"),
            StatusCode::FORBIDDEN,
            "Only a site administrator may manage users.",
        )
    })
}

/// A refused change as a page: the application's message for bad input, else a general one.
pub(super) fn refused(chrome: Chrome, error: &StoreError) -> Response {
    match error {
        StoreError::Input(input) => {
            message::for_viewer(chrome, StatusCode::UNPROCESSABLE_ENTITY, &input.to_string())
        }
        StoreError::NotFound(_) => {
            message::for_viewer(chrome, StatusCode::NOT_FOUND, "There is no such user.")
        }
        error => {
            tracing::warn!(%error, "users page: accounts unavailable");
            message::unavailable()
        }
    }
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn list(
    State(accounts): State<Accounts>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Response {
    if let Some(refusal) = not_admin(&viewer) {
        return refusal;
    }
    let chrome = viewer.chrome("Users", "users");
    let summaries = match accounts.list().await {
        Ok(summaries) => summaries,
        Err(error) => return refused(chrome, &error),
    };
    let me = viewer.user().as_str();
    let users = summaries
        .iter()
        .map(|account: &AccountSummary| UserRow {
            id: account.id.as_str().to_owned(),
            role: role_text(account.role.as_ref()),
            active: account.active,
            has_password: account.has_password,
            created: super::time::instant(account.created_at),
            me: account.id.as_str() == me,
        })
        .collect();
    let page = Users {
        chrome,
        users,
        notice: notice(done.done.as_deref()),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct NewUser {
    #[serde(default)]
    id: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn add(
    State(accounts): State<Accounts>,
    viewer: Viewer,
    Form(new): Form<NewUser>,
) -> Response {
    if let Some(refusal) = not_admin(&viewer) {
        return refusal;
    }
    let chrome = viewer.chrome("Users", "users");
    let role = match parse_role(&new.role) {
        Ok(role) => role,
        Err(why) => return message::for_viewer(chrome, StatusCode::UNPROCESSABLE_ENTITY, &why),
    };
    if new.password.chars().count() < MIN_PASSWORD {
        return message::for_viewer(
            chrome,
            StatusCode::UNPROCESSABLE_ENTITY,
            "The initial password must be at least 8 characters long.",
        );
    }
    match accounts
        .add(new.id.trim(), role.as_ref(), &new.password)
        .await
    {
        Ok(()) => Redirect::to("/users?done=added").into_response(),
        Err(error) => refused(chrome, &error),
    }
}

#[derive(Deserialize)]
struct RoleChange {
    #[serde(default)]
    id: String,
    #[serde(default)]
    role: String,
}

async fn set_role(
    State(accounts): State<Accounts>,
    viewer: Viewer,
    Form(change): Form<RoleChange>,
) -> Response {
    if let Some(refusal) = not_admin(&viewer) {
        return refusal;
    }
    let chrome = viewer.chrome("Users", "users");
    let role = match parse_role(&change.role) {
        Ok(role) => role,
        Err(why) => return message::for_viewer(chrome, StatusCode::UNPROCESSABLE_ENTITY, &why),
    };
    match accounts.set_role(&change.id, role.as_ref()).await {
        Ok(()) => Redirect::to("/users?done=role").into_response(),
        Err(error) => refused(chrome, &error),
    }
}

#[derive(Deserialize)]
struct ActiveChange {
    #[serde(default)]
    id: String,
    #[serde(default)]
    active: String,
}

/// `GET /users/active?id=…`: the page that asks before deactivating.
async fn confirm_active(viewer: Viewer, Query(change): Query<ActiveChange>) -> Response {
    if let Some(refusal) = not_admin(&viewer) {
        return refusal;
    }
    let chrome = viewer.chrome("Users", "users");
    let chrome = Chrome {
        title: "Deactivate a user".into(),
        ..chrome
    };
    render(
        StatusCode::OK,
        &ConfirmDeactivate {
            chrome,
            id: change.id,
        },
    )
}

async fn set_active(
    State(accounts): State<Accounts>,
    viewer: Viewer,
    Form(change): Form<ActiveChange>,
) -> Response {
    if let Some(refusal) = not_admin(&viewer) {
        return refusal;
    }
    let chrome = viewer.chrome("Users", "users");
    let active = match change.active.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return message::for_viewer(
                chrome,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Say whether to activate or deactivate.",
            );
        }
    };
    if !active && change.id == viewer.user().as_str() {
        return message::for_viewer(
            chrome,
            StatusCode::UNPROCESSABLE_ENTITY,
            "You cannot deactivate your own account: ask another administrator.",
        );
    }
    match accounts.set_active(&change.id, active).await {
        Ok(()) if active => Redirect::to("/users?done=activated").into_response(),
        Ok(()) => Redirect::to("/users?done=deactivated").into_response(),
        Err(error) => refused(chrome, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_as_typed() {
        assert_eq!(parse_role(" * "), Ok(None));
        let role = parse_role("agents:read, approvals:*").unwrap().unwrap();
        assert_eq!(
            role,
            CapabilitySet::parse(["approvals:*", "agents:read"]).unwrap()
        );
        assert_eq!(parse_role(&role_text(Some(&role))), Ok(Some(role)));
        assert!(parse_role("  ").is_err());
        assert!(parse_role("not a capability!").is_err());
        assert_eq!(role_text(None), "*");
    }
}
