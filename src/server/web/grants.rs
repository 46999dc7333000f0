//! The agent page's grant forms: `POST /agents/{slug}/grants` gives a user a role on the
//! agent (or changes it), `POST /agents/{slug}/grants/remove` withdraws it. Owner and admin
//! only, as `PUT` and `DELETE /api/agents/{slug}/grants/{user}`. The user is a form field,
//! never part of the path: a user id may hold any character.

use ::axum::Router;
use ::axum::extract::{Form, Path, State};
use ::axum::response::{IntoResponse, Redirect, Response};
use ::axum::routing::post;
use http::StatusCode;
use serde::Deserialize;

use super::target::{Target, not_allowed, refused};
use super::{Viewer, message};
use crate::principal::UserId;
use crate::server::ManageState;
use crate::store::{AccessRole, Backend, Store};

pub(super) fn routes<B: Backend>() -> Router<ManageState<Store<B>>> {
    Router::new()
        .route("/agents/{slug}/grants", post(grant::<B>))
        .route("/agents/{slug}/grants/remove", post(withdraw::<B>))
}

/// Both forms: the user and, to grant, the role.
#[derive(Deserialize)]
struct GrantForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    role: String,
}

async fn grant<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Form(form): Form<GrantForm>,
) -> Response {
    change(state, viewer, slug, form, true).await
}

async fn withdraw<B: Backend>(
    State(state): State<ManageState<Store<B>>>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Form(form): Form<GrantForm>,
) -> Response {
    change(state, viewer, slug, form, false).await
}

/// Grants `form`'s role (`give`), or withdraws the user's role.
async fn change<B: Backend>(
    state: ManageState<Store<B>>,
    viewer: Viewer,
    slug: String,
    form: GrantForm,
    give: bool,
) -> Response {
    let target = match Target::load(&state, &viewer, &slug).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let chrome = viewer.chrome(target.agent.slug.to_string(), "agents");
    if !target.allowed.change_grants {
        return not_allowed(chrome);
    }
    let user = form.user.trim();
    if user.is_empty() {
        return message::for_viewer(
            chrome,
            StatusCode::UNPROCESSABLE_ENTITY,
            "User: the id of a user of this server.",
        );
    }
    let user = UserId::from(user);
    let (done, result) = if give {
        let Some(role) = AccessRole::parse(&form.role) else {
            return message::for_viewer(
                chrome,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Role: admin, operator or viewer.",
            );
        };
        let result = target.managed.grant(&target.agent.id, &user, role).await;
        ("granted", result.map(drop))
    } else {
        let result = target.managed.revoke_grant(&target.agent.id, &user).await;
        ("withdrawn", result)
    };
    match result {
        Ok(()) => {
            Redirect::to(&format!("/agents/{}?done={done}", target.agent.slug)).into_response()
        }
        Err(error) => refused(chrome, &error.into()),
    }
}
